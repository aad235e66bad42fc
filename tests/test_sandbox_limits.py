"""The sandbox's rate limits: fixed windows, route and global budgets, headers and 429s."""

from __future__ import annotations

from typing import Any

import aiohttp

from ldbulk import Client, RetryPolicy
from ldbulk.sandbox import Sandbox
from ldbulk.sandbox.limits import FixedWindowLimiter

BSS = "/api/v2/integration-capabilities/big-segment-store"
LIST = f"GET {BSS}"
CREATE = f"POST {BSS}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}"


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def get(
    sandbox: Sandbox, path: str, *, token: str | None = None, method: str = "GET", body: Any = None
) -> tuple[int, Any, Any]:
    headers = {"Authorization": sandbox.token if token is None else token, "LD-API-Version": "beta"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, sandbox.url + path, headers=headers, json=body) as response,
    ):
        content = await response.json() if response.status != 204 else None
        return response.status, response.headers, content


def test_limiter_windows_are_fixed_and_aligned_to_epoch_multiples() -> None:
    clock = FakeClock(1_000.25)
    limiter = FixedWindowLimiter(global_limit=None, route_limit=2, window_s=10.0, clock=clock)
    first = limiter.admit("r")
    assert first.headers == {
        "X-Ratelimit-Reset": "1010000",
        "X-Ratelimit-Route-Limit": "2",
        "X-Ratelimit-Route-Remaining": "1",
    }
    assert limiter.admit("r").allowed
    refused = limiter.admit("r")
    assert not refused.allowed and refused.headers["X-Ratelimit-Route-Remaining"] == "0"
    assert refused.retry_after_s == 10
    clock.now = 1_010.0
    fresh = limiter.admit("r")
    assert fresh.allowed and fresh.headers["X-Ratelimit-Reset"] == "1020000"


def test_limiter_does_not_count_refused_requests_against_other_budgets() -> None:
    limiter = FixedWindowLimiter(global_limit=3, route_limit=1, clock=FakeClock(5.0))
    assert limiter.admit("a").allowed
    assert not limiter.admit("a").allowed
    decision = limiter.admit("b")
    assert decision.allowed
    assert decision.headers["X-Ratelimit-Global-Remaining"] == "1"


async def test_every_response_of_a_limited_route_carries_the_headers(make_sandbox: Any) -> None:
    clock = FakeClock(1_000.25)
    sandbox = await make_sandbox(route_limit=3, global_limit=5, clock=clock)
    seen = []
    for _ in range(4):
        status, headers, body = await get(sandbox, BSS)
        seen.append(
            (
                status,
                headers["X-Ratelimit-Route-Remaining"],
                headers["X-Ratelimit-Global-Remaining"],
            )
        )
        assert headers["X-Ratelimit-Route-Limit"] == "3"
        assert headers["X-Ratelimit-Global-Limit"] == "5"
        assert headers["X-Ratelimit-Reset"] == "1010000"
        assert "Retry-After" not in headers
    assert seen == [(200, "2", "4"), (200, "1", "3"), (200, "0", "2"), (429, "0", "2")]
    assert body["code"] == "rate_limited"
    # Another route has its own budget, but shares the global one.
    assert (await get(sandbox, "/api/v2/projects"))[0] == 200
    status, headers, _ = await get(sandbox, "/api/v2/projects")
    assert (status, headers["X-Ratelimit-Global-Remaining"]) == (200, "0")
    status, headers, body = await get(sandbox, "/api/v2/projects")
    assert (status, body["code"], headers["X-Ratelimit-Route-Remaining"]) == (
        429,
        "rate_limited",
        "1",
    )
    assert sandbox.stats.throttled == 2
    # A new window: the budgets are back.
    clock.now = 1_010.0
    status, headers, _ = await get(sandbox, BSS)
    assert (status, headers["X-Ratelimit-Reset"]) == (200, "1020000")


async def test_errors_of_a_limited_route_carry_the_headers_too(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(route_limit=10, clock=FakeClock(0.0))
    status, headers, _ = await get(sandbox, f"{BSS}/nope/env-001/redis/abc")
    assert status == 404 and headers["X-Ratelimit-Route-Remaining"] == "9"


async def test_retry_after_is_sent_on_429_when_asked(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(global_limit=1, retry_after=True, clock=FakeClock(1_003.5))
    assert "Retry-After" not in (await get(sandbox, BSS))[1]
    status, headers, _ = await get(sandbox, BSS)
    assert (status, headers["Retry-After"]) == (429, "7")


async def test_a_throttled_request_is_not_applied(make_sandbox: Any) -> None:
    clock = FakeClock(50.0)
    sandbox = await make_sandbox(route_limit=1, clock=clock)
    body = {"config": {"host": "h"}}
    assert (await get(sandbox, f"{BSS}/proj-001/env-001/redis", method="POST", body=body))[0] == 201
    path = f"{BSS}/proj-001/env-002/redis"
    assert (await get(sandbox, path, method="POST", body=body))[0] == 429
    assert sandbox.integration("proj-001", "env-002", "redis") is None
    clock.now += 10
    assert (await get(sandbox, path, method="POST", body=body))[0] == 201
    assert sandbox.stats.count(CREATE, 429) == 1 and sandbox.stats.count(CREATE, 201) == 2


async def test_no_limit_means_no_rate_limit_headers(sandbox: Sandbox) -> None:
    _, headers, _ = await get(sandbox, BSS)
    assert not [name for name in headers if name.lower().startswith("x-ratelimit")]


async def test_unauthenticated_requests_do_not_spend_the_budget(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(route_limit=1, global_limit=1, clock=FakeClock(0.0))
    for _ in range(3):
        status, headers, _ = await get(sandbox, BSS, token="api-wrong")
        assert status == 401 and "X-Ratelimit-Reset" not in headers
    assert (await get(sandbox, BSS))[0] == 200


async def test_sandbox_routes_are_not_limited(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(global_limit=1, clock=FakeClock(0.0))
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{sandbox.url}/_sandbox/stats") as response:
                assert response.status == 200
                assert "X-Ratelimit-Reset" not in response.headers


async def test_the_client_paces_itself_through_short_windows(make_sandbox: Any) -> None:
    # A real clock and a 1 s window: the client must wait for the next window (the pacer
    # assumes LaunchDarkly's 10 s windows after the first, so stay within two windows).
    sandbox = await make_sandbox(route_limit=3, global_limit=5, window_s=1.0, retry_after=True)
    async with Client(sandbox.token, base_url=sandbox.url, retry=RetryPolicy()) as client:
        for _ in range(5):
            assert await client.list_integrations() == []
    assert sandbox.stats.count(LIST, 200) == 5
    assert sandbox.stats.total == 5 + sandbox.stats.throttled


async def test_reset_header_is_a_window_boundary_in_epoch_milliseconds(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(route_limit=100, window_s=2.5)
    _, headers, _ = await get(sandbox, BSS)
    assert int(headers["X-Ratelimit-Reset"]) % 2500 == 0


def test_limiter_keeps_a_window_per_token_with_its_own_reset_header() -> None:
    limiter = FixedWindowLimiter(
        global_limit=None, route_limit=None, token_limit=2, clock=FakeClock(7.0)
    )
    first = limiter.admit("a", "api-one")
    assert first.headers == {
        "X-Ratelimit-Auth-Token-Limit": "2",
        "X-Ratelimit-Auth-Token-Remaining": "1",
        "X-Ratelimit-Auth-Token-Reset": "10000",
    }
    # Any route spends the same token's budget; another token has its own.
    assert limiter.admit("b", "api-one").allowed
    assert not limiter.admit("a", "api-one").allowed
    assert limiter.admit("a", "api-two").headers["X-Ratelimit-Auth-Token-Remaining"] == "1"


def test_limiter_refuses_when_the_token_budget_is_spent_without_spending_the_others() -> None:
    limiter = FixedWindowLimiter(global_limit=5, route_limit=5, token_limit=1, clock=FakeClock(0.0))
    assert limiter.admit("a", "t").allowed
    refused = limiter.admit("a", "t")
    assert not refused.allowed
    assert refused.headers["X-Ratelimit-Auth-Token-Remaining"] == "0"
    assert refused.headers["X-Ratelimit-Global-Remaining"] == "4"
    assert refused.headers["X-Ratelimit-Route-Remaining"] == "4"
    assert refused.headers["X-Ratelimit-Reset"] == refused.headers["X-Ratelimit-Auth-Token-Reset"]


async def test_a_token_limit_throttles_alongside_route_and_global_ones(make_sandbox: Any) -> None:
    clock = FakeClock(2_000.0)
    sandbox = await make_sandbox(route_limit=10, global_limit=10, token_limit=2, clock=clock)
    assert (await get(sandbox, BSS))[0] == 200
    status, headers, _ = await get(sandbox, "/api/v2/projects")
    assert (status, headers["X-Ratelimit-Auth-Token-Remaining"]) == (200, "0")
    assert headers["X-Ratelimit-Route-Remaining"] == "9"
    status, headers, body = await get(sandbox, BSS)
    assert (status, body["code"]) == (429, "rate_limited")
    assert headers["X-Ratelimit-Auth-Token-Reset"] == "2010000"
    assert sandbox.stats.throttled == 1
    clock.now = 2_010.0
    assert (await get(sandbox, BSS))[0] == 200


async def test_the_client_waits_out_a_spent_token_budget(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(token_limit=2, window_s=1.0, retry_after=True)
    async with Client(sandbox.token, base_url=sandbox.url, retry=RetryPolicy()) as client:
        for _ in range(3):
            assert await client.list_integrations() == []
    assert sandbox.stats.count(LIST, 200) == 3


def test_background_load_spends_its_share_spread_over_each_window() -> None:
    clock = FakeClock(100.0)  # a window's start (windows of 10 s)
    limiter = FixedWindowLimiter(global_limit=20, route_limit=10, clock=clock, background=5)
    # Other clients spend one request every 2 s, the first at the window's start.
    first = limiter.admit("r")
    assert first.headers["X-Ratelimit-Route-Remaining"] == "8"  # 1 theirs, then ours
    assert first.headers["X-Ratelimit-Global-Remaining"] == "18"
    clock.now = 105.0  # two more of theirs are due (at 102 and 104)
    assert limiter.admit("r").headers["X-Ratelimit-Route-Remaining"] == "5"
    clock.now = 109.9  # the last two (106, 108)
    assert limiter.admit("r").headers["X-Ratelimit-Route-Remaining"] == "2"
    # Another route meets the same load on its own budget; the account's counts them once.
    other = limiter.admit("s")
    assert other.headers["X-Ratelimit-Route-Remaining"] == "4"
    assert other.headers["X-Ratelimit-Global-Remaining"] == "11"
    clock.now = 110.0
    assert limiter.admit("r").headers["X-Ratelimit-Route-Remaining"] == "8"


def test_background_load_loses_what_finds_the_budget_spent_and_spares_the_token() -> None:
    clock = FakeClock(0.0)
    limiter = FixedWindowLimiter(
        global_limit=None, route_limit=3, token_limit=5, clock=clock, background=4
    )
    decisions = [limiter.admit("r", "t") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[0].headers["X-Ratelimit-Auth-Token-Remaining"] == "4"
    clock.now = 7.5  # three more of theirs due, none with room: lost, not owed
    refused = limiter.admit("r", "t")
    assert not refused.allowed
    assert refused.headers["X-Ratelimit-Route-Remaining"] == "0"
    clock.now = 10.0
    assert limiter.admit("r", "t").headers["X-Ratelimit-Route-Remaining"] == "1"


async def test_a_sandbox_with_background_load_reports_it_in_its_headers(
    make_sandbox: Any,
) -> None:
    clock = FakeClock(1_000.0)
    sandbox = await make_sandbox(route_limit=10, background_rate=4, clock=clock)
    _, headers, _ = await get(sandbox, BSS)
    assert headers["X-Ratelimit-Route-Remaining"] == "8"
    assert sandbox.stats.total == 1 and sandbox.stats.throttled == 0


async def test_a_skewed_sandbox_dates_its_answers_and_resets_on_its_own_clock(
    make_sandbox: Any,
) -> None:
    clock = FakeClock(1_800_000_003.5)
    sandbox = await make_sandbox(route_limit=5, clock=clock, clock_offset_s=-30.0)
    _, headers, _ = await get(sandbox, BSS)
    assert headers["Date"] == "Fri, 15 Jan 2027 07:59:33 GMT"  # 1_799_999_973: 30 s behind
    assert headers["X-Ratelimit-Reset"] == "1799999980000"
    _, unskewed, _ = await get(await make_sandbox(route_limit=5, clock=clock), BSS)
    assert unskewed["Date"] == "Fri, 15 Jan 2027 08:00:03 GMT"
    assert unskewed["X-Ratelimit-Reset"] == "1800000010000"
