"""The real client against sandboxes whose clock is 30 s off the client's, either way.

LaunchDarkly's resets are epoch times on its own clock: the client reads them against the
``Date`` of the same answers, so a skewed server costs no 429 and no more than one window.
Everything runs on a fake clock (looptime), the sandbox's windows and the client's pacer both
reading the event loop's time, so the counts of 429s and windows are exact.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
from collections.abc import Awaitable, Callable

import pytest

from ldbulk.api.models import RedisConfig, Target
from ldbulk.api.sansio import RawResponse
from ldbulk.engine.provision import provision
from ldbulk.errors import RateLimited
from ldbulk.http.client import Client
from ldbulk.http.pacer import Pacer
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport, SentRequest, canned
from ldbulk.sandbox import Sandbox

pytestmark = pytest.mark.looptime

SandboxFactory = Callable[..., Awaitable[Sandbox]]

EPOCH = 1_800_000_000.0  # the client's wall-clock seconds at loop time 0
WINDOW_S = 10.0


def epoch_clock() -> Callable[[], float]:
    loop = asyncio.get_running_loop()
    return lambda: EPOCH + loop.time()


async def creates(make_sandbox: SandboxFactory, skew: float) -> tuple[int, int]:
    """120 creates at a route limit of 20 through a server ``skew`` s ahead of the client:
    the 429s it answered, and the windows (on its clock) the run took."""
    sandbox = await make_sandbox(
        projects=1,
        environments=120,
        route_limit=20,
        latency_ms=30,
        clock=epoch_clock(),
        clock_offset_s=skew,
    )
    targets = [
        Target(project="proj-001", environment=f"env-{e:03d}", config=RedisConfig(host="r"))
        for e in range(1, 121)
    ]
    loop = asyncio.get_running_loop()
    start = loop.time()
    pacer = Pacer(wall_clock=epoch_clock())
    async with Client(sandbox.token, base_url=sandbox.url, pacer=pacer, retry=RetryPolicy()) as c:
        report = await provision(c, targets)
    assert report.counts["created"] == 120
    first, last = (math.floor((EPOCH + skew + t) / WINDOW_S) for t in (start, loop.time()))
    return sandbox.stats.throttled, last - first + 1


@pytest.mark.parametrize("skew", [-30.4, 30.4])
async def test_a_server_clock_30_s_off_costs_no_429_and_at_most_one_more_window(
    make_sandbox: SandboxFactory, skew: float
) -> None:
    level_throttled, level_windows = await creates(make_sandbox, 0.0)
    await asyncio.sleep(2 * WINDOW_S)
    throttled, windows = await creates(make_sandbox, skew)
    assert level_throttled == 0 and throttled == 0
    assert windows <= level_windows + 1


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
async def test_429s_whose_reset_is_always_past_are_retried_once_a_window(dated: bool) -> None:
    """A server whose 429s name a reset 30 s past, by its own Date or by ours: measured
    before, ldbulk retried every 0.1 s (385 requests in 40 s)."""
    loop = asyncio.get_running_loop()

    def refuse(request: SentRequest) -> RawResponse:
        if len(transport.requests) > 50:  # a retry storm: end it (the test has failed)
            return canned(200, json={"items": []})
        now = EPOCH + loop.time()
        headers = {"X-Ratelimit-Reset": str(int((now - 30) * 1000))}
        if dated:
            headers["Date"] = email.utils.formatdate(now, usegmt=True)
        return canned(429, json={"code": "rate_limited", "message": "slow down", "id": "x"},
                      headers=headers)

    transport = MemoryTransport(refuse)
    policy = RetryPolicy(throttle_deadline_s=40.0)
    pacer = Pacer(wall_clock=epoch_clock())
    async with Client("api-x", pacer=pacer, retry=policy, transport=transport) as client:
        with pytest.raises(RateLimited):
            await client.list_integrations()
    assert len(transport.requests) <= 40 // WINDOW_S + 1
