"""The engine's decisions per target, with canned responses (in memory).

Whole runs against a real server, with faults and rate limits, are in test_provision_sandbox.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import MEMORY_BASE, listing, target
from conftest import integration as canned_integration

from ldbulk.api.models import Target
from ldbulk.api.sansio import RawResponse
from ldbulk.engine.provision import Provisioner, provision
from ldbulk.engine.report import Outcome
from ldbulk.errors import TransportError
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport, SentRequest, canned

LIST = "/api/v2/integration-capabilities/big-segment-store"
CREATE = re.compile(rf"{re.escape(LIST)}/([^/]+)/([^/]+)/redis$")


def integration(environment: str, project: str = "web", id: str = "") -> dict[str, Any]:
    return canned_integration(environment, project, id=id or f"id-{project}-{environment}")


def error(code: str) -> dict[str, str]:
    return {"code": code, "message": f"{code} happened", "id": "req-1"}


def posts(mocked: MemoryTransport) -> int:
    return sum(1 for request in mocked.requests if request.method == "POST")


async def test_existing_integrations_are_settled_without_a_write_when_create_only(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing(integration("prod")))
    mocked.add("POST", CREATE, status=201, json=integration("dev"))
    async with client:
        report = await provision(
            client, [target("prod"), target("dev")], create_only=True, list_first=True
        )
    assert posts(mocked) == 1
    by_env = {r.environment: r for r in report.results}
    assert by_env["prod"].outcome is Outcome.EXISTS
    assert by_env["prod"].integration_id == "id-web-prod"
    assert by_env["dev"].outcome is Outcome.CREATED
    assert by_env["dev"].status == 201
    assert report.exit_code == 0
    assert report.stats.requests == 2


async def test_conflict_is_answered_by_the_list_endpoint(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=409, json=error("conflict"))
    mocked.add("GET", LIST, json=listing(integration("prod", id="made-elsewhere")))
    async with client:
        report = await provision(client, [target("prod")], create_only=True, list_first=True)
    (result,) = report.results
    assert result.outcome is Outcome.EXISTS
    assert result.integration_id == "made-elsewhere"


async def test_create_lost_in_a_5xx_but_applied_counts_as_created(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=502, body=b"<html>bad gateway</html>")
    # Sent again: LaunchDarkly answers 409, never a duplicate; the listing says it is ours.
    mocked.add("POST", CREATE, status=409, json=error("conflict"))
    mocked.add("GET", LIST, json=listing(integration("prod", id="ours")))
    async with client:
        report = await provision(client, [target("prod")], list_first=True)
    assert posts(mocked) == 2
    (result,) = report.results
    assert result.outcome is Outcome.CREATED
    assert result.integration_id == "ours"
    assert result.attempts == 2


async def test_create_lost_in_transit_and_not_applied_is_sent_again(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, error=TransportError)
    mocked.add("POST", CREATE, status=201, json=integration("prod"))
    async with client:
        report = await provision(client, [target("prod")], list_first=True)
    (result,) = report.results
    assert result.outcome is Outcome.CREATED
    assert result.attempts == 2
    assert report.stats.retries == 1
    assert report.stats.requests == 1 + 2  # no listing between: a 409 would have said it


async def test_a_stop_while_backing_off_before_another_create_fails_the_target_unsent() -> None:
    looks = 0

    def answer(request: SentRequest) -> RawResponse:
        nonlocal looks
        if request.method == "POST":
            stop.set()  # while the unclear create's retry backs off
            return canned(503, json=error("unavailable"))
        looks += 1  # the first listing, then the one that settles the unclear create
        return canned(json=listing())

    # A backoff no test could sit out: only the stop ends it.
    policy = RetryPolicy(backoff_base_s=3600.0, backoff_cap_s=3600.0, max_attempts=3)
    transport = MemoryTransport(answer)
    client = Client(token="api-unit-test-token", base_url=MEMORY_BASE, retry=policy,
                    transport=transport)
    stop = asyncio.Event()
    async with asyncio.timeout(30), client:
        report = await Provisioner(client, list_first=True, concurrency=1).run(
            [target("prod")], stop=stop
        )
    assert sum(1 for request in transport.requests if request.method == "POST") == 1
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.attempts == 1
    assert result.error is not None and result.error.code == "unavailable"
    assert result.error.message.endswith("(not retried: the run was stopped)")
    assert report.stats.retries == 1
    assert looks == 2  # a stopped run still asks whether its unclear create was applied


async def test_unclear_creates_stop_after_the_retry_limit(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing(), repeat=True)
    mocked.add("POST", CREATE, status=503, json=error("unavailable"), repeat=True)
    async with client:
        report = await provision(client, [target("prod")])
    assert posts(mocked) == 3
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.status == 503
    assert result.error is not None and result.error.code == "unavailable"
    assert report.exit_code == 1


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(400, Outcome.INVALID), (403, Outcome.FORBIDDEN), (404, Outcome.NOT_FOUND)],
)
async def test_definite_refusals_are_never_retried(
    client: Client, mocked: MemoryTransport, status: int, outcome: Outcome
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=status, json=error("refused"))
    async with client:
        report = await provision(client, [target("prod")])
    assert posts(mocked) == 1
    (result,) = report.results
    assert result.outcome is outcome
    assert result.status == status
    assert result.error is not None and result.error.id == "req-1"


async def test_unauthorized_aborts_the_run_and_skips_the_rest(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=401, json=error("unauthorized"))
    async with client:
        report = await Provisioner(client, concurrency=1).run(
            [target(f"env-{i}") for i in range(5)]
        )
    assert posts(mocked) == 1
    outcomes = [r.outcome for r in report.results]
    assert outcomes == [Outcome.UNAUTHORIZED] + [Outcome.SKIPPED] * 4


async def test_unauthorized_listing_is_every_targets_401(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, status=401, json=error("unauthorized"))
    async with client:
        report = await provision(client, [target("a"), target("b")], list_first=True)
    assert posts(mocked) == 0
    assert [r.outcome for r in report.results] == [Outcome.UNAUTHORIZED] * 2
    assert report.counts["unauthorized"] == 2
    for result in report.results:
        assert result.status == 401
        assert result.error is not None and result.error.code == "unauthorized"


async def test_failed_listing_fails_every_target_without_writing(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, status=500, json=error("internal"), repeat=True)
    async with client:
        report = await provision(client, [target("a"), target("b")], list_first=True)
    assert posts(mocked) == 0
    assert {r.outcome for r in report.results} == {Outcome.FAILED}
    assert all(r.error and r.error.code == "listing_failed" for r in report.results)


async def test_a_duplicate_target_is_reported_once_as_skipped(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=201, json=integration("prod"))
    async with client:
        report = await provision(client, [target("prod"), target("prod")])
    assert posts(mocked) == 1
    assert [r.outcome for r in report.results] == [Outcome.CREATED, Outcome.SKIPPED]


async def test_stop_skips_targets_not_yet_started(client: Client, mocked: MemoryTransport) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=201, json=integration("x"), repeat=True)
    async with client:
        provisioner = Provisioner(client, concurrency=1)
        seen = []
        stop = asyncio.Event()
        async with provisioner.stream((target(f"e{i}") for i in range(10)), stop=stop) as results:
            async for result in results:
                seen.append(result.outcome)
                if len(seen) == 3:
                    stop.set()
    assert len(seen) == 10
    # Results already in flight or buffered settle normally; everything after is skipped.
    first_skipped = seen.index(Outcome.SKIPPED)
    assert first_skipped >= 3
    assert set(seen[:first_skipped]) == {Outcome.CREATED}
    assert set(seen[first_skipped:]) == {Outcome.SKIPPED}


async def test_targets_may_come_from_an_async_iterable(
    client: Client, mocked: MemoryTransport
) -> None:
    async def stream() -> AsyncIterator[Target]:
        for i in range(4):
            await asyncio.sleep(0)
            yield target(f"e{i}")

    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=201, json=integration("x"), repeat=True)
    async with client:
        report = await provision(client, stream())
    assert [r.environment for r in report.results] == ["e0", "e1", "e2", "e3"]
    assert report.counts["created"] == 4


async def test_no_secret_reaches_the_report(client: Client, mocked: MemoryTransport) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=400, json=error("invalid"))
    async with client:
        report = await provision(client, [target("prod")])
    text = report.dumps() + repr(report)
    assert "s3cret-password" not in text
    assert "api-unit-test-token" not in text


def test_concurrency_must_be_positive(client: Client) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Provisioner(client, concurrency=0)


async def test_an_unclear_last_try_stays_unsettled_when_the_listing_that_would_settle_it_fails(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=502, json=error("bad_gateway"), repeat=True)
    mocked.add("GET", LIST, status=503, json=error("unavailable"), repeat=True)
    async with client:
        report = await provision(client, [target("prod")], list_first=True)
    (result,) = report.results
    assert posts(mocked) == 3  # every try unclear; the last one's settling listing failed
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "not retried" in result.error.message


async def test_creates_failing_together_share_one_settling_listing(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    for _ in range(8):  # each create applied, its answer lost; sent again, each answers 409
        mocked.add("POST", CREATE, status=502, json=error("bad_gateway"))
    mocked.add("POST", CREATE, status=409, json=error("conflict"), repeat=True)
    found = [integration(f"e{i}") for i in range(8)]
    mocked.add("GET", LIST, json=listing(*found), repeat=True)
    async with client:
        report = await Provisioner(client, list_first=True, concurrency=8).run(
            [target(f"e{i}") for i in range(8)]
        )
    gets = sum(1 for request in mocked.requests if request.method == "GET")
    assert posts(mocked) == 16
    assert gets == 2  # the first listing, and one shared by all eight
    assert report.counts["created"] == 8


async def test_a_run_stopped_before_it_starts_sends_nothing(
    client: Client, mocked: MemoryTransport
) -> None:
    stop = asyncio.Event()
    stop.set()
    async with client:
        report = await Provisioner(client).run(
            [target("a"), target("b")], stop=stop
        )
    assert mocked.requests == []
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED] * 2
