"""A stopped run ends within the stop's grace, whatever the network does: a request that gets
no answer is abandoned, and stays honest about what it may have done. Under looptime: the
loop's clock is fast-forwarded, nothing sleeps for real."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import pytest
from conftest import integration

from ldbulk.api.models import RedisConfig, Target
from ldbulk.api.sansio import RawResponse
from ldbulk.engine.provision import Provisioner
from ldbulk.engine.report import Outcome, Report
from ldbulk.engine.resolve import resolve
from ldbulk.errors import TransportError
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.scope import STOP_GRACE_S
from ldbulk.http.transport import MemoryTransport, SentRequest, canned
from ldbulk.manifest import loads_manifest

pytestmark = pytest.mark.looptime

LIST = "/api/v2/integration-capabilities/big-segment-store"
CREATE = re.compile(rf"{re.escape(LIST)}/web/([^/]+)/redis$")
STOP_AT = 5.0
# Far beyond any bound asserted here: a run that hangs fails on it instead of hanging the suite.
HANG_S = 3600.0


def _listing(*environments: str) -> RawResponse:
    return canned(json={"items": [integration(e) for e in environments], "_links": {}})


async def _silence() -> RawResponse:
    """A link that accepted the request and never answers."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _targets(count: int) -> list[Target]:
    config = RedisConfig(host="redis.internal")
    return [Target(project="web", environment=f"e{i}", config=config) for i in range(count)]


async def _run_stopped_at(
    handler: Callable[[SentRequest], Awaitable[RawResponse]],
    targets: list[Target],
    *,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
) -> tuple[Report, float, MemoryTransport]:
    """Run the targets, stop the run at :data:`STOP_AT`; the report and when the run ended."""
    transport = MemoryTransport(handler)
    client = Client(token="t", base_url="http://127.0.0.1:9", retry=policy, transport=transport)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + STOP_AT, stop.set)
    started = loop.time()
    async with asyncio.timeout(HANG_S), client:
        # Listing first, as every run did when these were written: some stop the listing.
        report = await Provisioner(client, concurrency=8, list_first=True).run(
            targets, stop=stop
        )
    return report, loop.time() - started, transport


async def test_creates_that_get_no_answer_are_abandoned_within_the_grace_of_a_stop() -> None:
    async def handler(request: SentRequest) -> RawResponse:
        if request.method == "GET":
            return _listing()
        return await _silence()

    report, ended, _ = await _run_stopped_at(handler, _targets(20))
    assert ended <= STOP_AT + STOP_GRACE_S + 0.1
    outcomes = [r.outcome for r in report.results]
    # One create went out (the pacer's slow start holds the rest for its answer): it may have
    # been applied, so it says so rather than claiming it was never tried. The rest were never
    # sent.
    assert outcomes.count(Outcome.FAILED) == 1
    assert outcomes.count(Outcome.SKIPPED) == 19
    for result in report.results:
        if result.outcome is Outcome.FAILED:
            assert result.error is not None
            assert "abandoned at the stop" in result.error.message
            assert "unknown" in result.error.message


async def test_a_first_listing_that_never_answers_ends_within_the_grace_of_a_stop() -> None:
    async def handler(request: SentRequest) -> RawResponse:
        return await _silence()

    report, ended, transport = await _run_stopped_at(handler, _targets(5))
    assert ended <= STOP_AT + STOP_GRACE_S + 0.1
    assert {r.outcome for r in report.results} == {Outcome.SKIPPED}
    assert [r.method for r in transport.requests] == ["GET"]


class LostCreate:
    """The first create is applied and its answer lost; the listing that would settle it is
    answered after ``listing_s``, or never."""

    def __init__(self, listing_s: float | None) -> None:
        self.listing_s = listing_s
        self.created: list[str] = []
        self.listings: list[float] = []

    async def __call__(self, request: SentRequest) -> RawResponse:
        loop = asyncio.get_running_loop()
        if request.method == "GET":
            self.listings.append(loop.time())
            if len(self.listings) > 1:
                if self.listing_s is None:
                    return await _silence()
                await asyncio.sleep(self.listing_s)
            return _listing(*self.created)
        match = CREATE.fullmatch(request.path)
        assert match is not None
        await asyncio.sleep(1.0)
        self.created.append(match[1])
        raise TransportError("connection reset (in memory)", method="POST", path=request.path)


# A long backoff: the stop comes while the lost create waits to be sent again.
BACKING_OFF = RetryPolicy(backoff_base_s=60.0, backoff_cap_s=60.0)


async def test_a_stopped_run_settles_a_lost_create_with_a_listing_sent_within_the_grace() -> None:
    account = LostCreate(listing_s=0.5)
    report, ended, _ = await _run_stopped_at(account, _targets(1), policy=BACKING_OFF)
    assert [r.outcome for r in report.results] == [Outcome.CREATED]
    assert ended <= STOP_AT + STOP_GRACE_S + 0.1


async def test_a_settling_listing_that_never_answers_is_abandoned_with_the_grace() -> None:
    account = LostCreate(listing_s=None)
    report, ended, _ = await _run_stopped_at(account, _targets(1), policy=BACKING_OFF)
    assert ended <= STOP_AT + STOP_GRACE_S + 0.1
    (result,) = report.results
    # Applied, and nobody could tell: failed, saying it is unknown, so a resume settles it.
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "unknown" in result.error.message


async def test_a_selector_whose_listing_is_abandoned_at_a_stop_is_skipped_not_failed() -> None:
    manifest = loads_manifest(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n"
        "  - {project: web, environments: '*', store: r}\n",
        file="m.yaml",
    )

    async def handler(request: SentRequest) -> RawResponse:
        return await _silence()

    client = Client(token="t", base_url="http://127.0.0.1:9", transport=MemoryTransport(handler))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + STOP_AT, stop.set)
    async with asyncio.timeout(HANG_S), client:
        resolution = await resolve(manifest, client, stop=stop)
    assert loop.time() <= STOP_AT + STOP_GRACE_S + 0.1
    (line,) = resolution.unresolved
    assert line.result().outcome is Outcome.SKIPPED


async def test_a_stop_while_the_run_waits_out_a_rate_limit_ends_within_the_grace() -> None:
    """Every create is refused with a 429 that asks for a minute: the stop comes during that
    pause, and ends it rather than waiting it out; what was refused is not sent again."""

    async def handler(request: SentRequest) -> RawResponse:
        if request.method == "GET":
            return _listing()
        refusal = {"code": "rate_limited", "message": "slow down", "id": "x"}
        return canned(429, json=refusal, headers={"Retry-After": "60"})

    report, ended, transport = await _run_stopped_at(handler, _targets(3))
    assert ended <= STOP_AT + STOP_GRACE_S + 0.1
    assert [r.method for r in transport.requests] == ["GET", "POST"]
    assert {r.outcome for r in report.results} == {Outcome.SKIPPED}
