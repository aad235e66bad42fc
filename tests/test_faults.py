"""The fault campaign: whole engine runs through a fault-injecting proxy in front of the sandbox.

Each scenario provisions a few hundred targets with the real client and engine, the proxy
(tests/faultproxy.py) breaking the exchange in one way, and then checks the sandbox's final
state (exactly one integration per target, each committed once) and the report (every target
exactly once, in order, with outcomes and stats that match what the proxy did). Every run is
bounded by ``asyncio.timeout``: a hang fails the test instead of hanging CI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest
from conftest import DYNAMO, REDIS, SandboxFactory
from faultproxy import (
    Fault,
    FaultProxy,
    Kind,
    Script,
    Seeded,
    first_of,
    reset_after,
    reset_before,
    server_error,
    slow,
    throttle,
)

from ldbulk.api import limits, sansio
from ldbulk.api.models import Target
from ldbulk.engine.provision import provision
from ldbulk.engine.report import Outcome, Report
from ldbulk.http.client import Client, Timeouts
from ldbulk.http.retry import RetryPolicy
from ldbulk.sandbox import Sandbox

PROJECTS, ENVIRONMENTS = 10, 30  # 300 targets per scenario
# Short backoff keeps the runs short; the retry logic is the default's.
FAST = RetryPolicy(backoff_base_s=0.01, backoff_cap_s=0.1)
# A hang must fail the test, not CI: no scenario needs anywhere near this long.
RUN_LIMIT_S = 30.0


def every_target(projects: int = PROJECTS, environments: int = ENVIRONMENTS) -> Iterator[Target]:
    for p in range(1, projects + 1):
        for e in range(1, environments + 1):
            yield Target(
                project=f"proj-{p:03d}",
                environment=f"env-{e:03d}",
                config=REDIS if e % 2 else DYNAMO,
                on=True,
            )


async def start(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox(projects=PROJECTS, environments=ENVIRONMENTS)


async def run(
    sandbox: Sandbox,
    proxy: FaultProxy,
    targets: Sequence[Target],
    *,
    retry: RetryPolicy = FAST,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen
) -> Report:
    async with asyncio.timeout(RUN_LIMIT_S):
        async with Client(
            sandbox.token, base_url=proxy.url, retry=retry, timeouts=timeouts
        ) as client:
            # The faults here are the creates': what exists is left unread.
            return await provision(client, targets, concurrency=8, create_only=True)


def commits(sandbox: Sandbox) -> int:
    """Creates the server applied (201s, whether or not the answer reached the client)."""
    return sandbox.stats.count(sansio.ROUTE_CREATE, 201)


def assert_every_target_provisioned_once(
    report: Report, sandbox: Sandbox, targets: Sequence[Target]
) -> None:
    """Each target reported once, in order, created; one integration each, committed once."""
    assert [r.key for r in report.results] == [t.key for t in targets]
    assert report.counts["failed"] == 0
    assert report.counts["created"] == len(targets)
    stored = sandbox.integrations
    assert set(stored) == {t.key for t in targets}
    # The report names the integration that is actually there.
    assert all(r.integration_id == stored[r.key].id for r in report.results)
    # The server applied exactly one create per target: nothing was created twice.
    assert commits(sandbox) == len(targets)


async def test_connections_reset_before_forwarding_are_retried_into_one_create_each(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target())
    sandbox = await start(make_sandbox)
    async with FaultProxy(sandbox.url, Seeded(11, [(0.1, reset_before())], skip_first=1)) as proxy:
        report = await run(sandbox, proxy, targets)

    assert_every_target_provisioned_once(report, sandbox, targets)
    resets = proxy.count(Kind.RESET_BEFORE, method="POST")
    assert resets > 0
    # A cut create never reached the server: no create conflicted, and each cut cost the
    # target exactly one more attempt, which then got its 201.
    assert sandbox.stats.count(sansio.ROUTE_CREATE, 409) == 0
    assert sum(r.attempts - 1 for r in report.results) == resets
    assert {r.status for r in report.results} == {201}
    assert report.stats.retries >= resets


async def test_answers_lost_after_the_commit_are_sent_again_and_never_applied_twice(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target())
    sandbox = await start(make_sandbox)
    plan = Seeded(12, [(0.15, reset_after())], methods={"POST"})
    async with FaultProxy(sandbox.url, plan) as proxy:
        report = await run(sandbox, proxy, targets)

    assert_every_target_provisioned_once(report, sandbox, targets)
    dropped = proxy.count(Kind.RESET_AFTER, method="POST")
    assert dropped > 0
    # Never applied twice. A lost create was sent again and answered 409 (a 409 only answers
    # a create sent again after a lost answer), or, with no try or retry budget left for it,
    # settled by the listing alone; either way the listing found it, and it counts as this
    # run's.
    assert sandbox.stats.count(sansio.ROUTE_CREATE, 201) == len(targets)
    assert 0 < sandbox.stats.count(sansio.ROUTE_CREATE, 409) <= dropped
    assert report.counts["created"] == len(targets)
    assert 0 < sum(r.attempts > 1 for r in report.results) <= dropped  # some lost twice


async def test_answers_slower_than_the_timeout_end_in_one_integration_per_target(
    make_sandbox: SandboxFactory,
) -> None:
    """Slow answers (the request was applied) and slow requests (it never arrived), on every
    route, the first listing included."""
    targets = list(every_target())
    sandbox = await start(make_sandbox)
    # The first listing is slow for sure; the rest by seeded chance.
    plan = first_of(
        Script({0: slow(2.0)}, methods={"GET"}),
        Seeded(13, [(0.05, slow(2.0)), (0.05, slow(2.0, before=True))]),
    )
    async with FaultProxy(sandbox.url, plan) as proxy:
        report = await run(sandbox, proxy, targets, timeouts=Timeouts(connect=1.0, total=0.3))

    assert_every_target_provisioned_once(report, sandbox, targets)
    slow_creates = proxy.count(Kind.SLOW, method="POST")
    assert slow_creates > 0 and proxy.count(Kind.SLOW, method="GET") > 0
    assert report.stats.retries > 0
    # Each create that timed out was either not the target's last attempt (it was tried
    # again), or its last, and then found by a listing (so not reported with a 201).
    extra_attempts = sum(r.attempts - 1 for r in report.results)
    unclear_last = sum(1 for r in report.results if r.status != 201)
    assert extra_attempts + unclear_last >= slow_creates


async def test_bursts_of_5xx_html_pages_are_retried_on_every_route(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target())
    sandbox = await start(make_sandbox)

    def status(i: int) -> Fault:
        return server_error(502 if i % 2 == 0 else 503)

    # Bursts shorter than max_attempts (5), so even a listing caught in one gets through.
    plan = Script.bursts([1, 40, 120, 200, 280], 4, status)
    async with FaultProxy(sandbox.url, plan) as proxy:
        report = await run(sandbox, proxy, targets)

    assert_every_target_provisioned_once(report, sandbox, targets)
    injected = proxy.count(Kind.SERVER_ERROR)
    assert injected == plan.planned
    posts = proxy.count(Kind.SERVER_ERROR, method="POST")
    assert posts > 0
    # A 5xx on a create is unclear: the engine looked, found nothing, created again.
    assert sum(r.attempts - 1 for r in report.results) == posts
    # Every 5xx cost exactly one retry from the budget, listing or create.
    assert report.stats.retries == injected


THROTTLES = {
    "retry-after": throttle(retry_after="1"),
    "reset-epoch-ms": throttle(reset_in_s=0.3),
    "no-headers": throttle(),
}


@pytest.mark.parametrize("headers", list(THROTTLES))
async def test_a_429_storm_pauses_the_run_and_every_throttled_request_is_sent_again(
    make_sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch, headers: str
) -> None:
    # A bare 429 pauses one default window (10 s): shortened here, the logic is the same.
    monkeypatch.setattr(limits, "WINDOW_S", 0.5)
    targets = list(every_target())
    sandbox = await start(make_sandbox)
    plan = Script.bursts([5, 150], 10, lambda i: THROTTLES[headers])
    async with FaultProxy(sandbox.url, plan) as proxy:
        report = await run(sandbox, proxy, targets)

    assert_every_target_provisioned_once(report, sandbox, targets)
    assert proxy.count(Kind.THROTTLE) == plan.planned
    # Each 429 was seen and waited out by the pacer, and resent by the client itself: no
    # create needed a second attempt, and no retry budget was spent.
    assert report.stats.throttled == plan.planned
    assert report.stats.paused_s > 0
    assert report.stats.retries == 0
    assert all(r.attempts == 1 and r.status == 201 for r in report.results)
    assert sandbox.stats.throttled == 0


async def test_creates_throttled_past_the_deadline_end_rate_limited_and_a_rerun_creates_them(
    make_sandbox: SandboxFactory,
) -> None:
    """Two environments whose creates are always answered 429: the rest of the run proceeds."""
    targets = list(every_target())
    stuck = {t.key for t in targets[:2]}
    always = throttle(reset_in_s=0.1)
    plan = first_of(
        *(
            Seeded(0, [(1.0, always)], methods={"POST"}, paths=sansio.integration_path(*key))
            for key in stuck
        )
    )
    retry = RetryPolicy(backoff_base_s=0.01, backoff_cap_s=0.1, throttle_deadline_s=1.0)
    sandbox = await start(make_sandbox)
    async with FaultProxy(sandbox.url, plan) as proxy:
        first = await run(sandbox, proxy, targets, retry=retry)
    async with FaultProxy(sandbox.url) as proxy:
        second = await run(sandbox, proxy, targets)

    assert [r.key for r in first.results] == [t.key for t in targets]
    limited = {r.key for r in first.results if r.outcome is Outcome.RATE_LIMITED}
    assert limited == stuck
    assert all(
        r.status == 429 and r.error is not None and r.error.code == "rate_limited"
        for r in first.results
        if r.key in stuck
    )
    assert first.counts["created"] == len(targets) - len(stuck)
    assert first.stats.throttled > 0 and first.exit_code == 1
    # The rerun creates exactly the two that were throttled.
    assert {r.key for r in second.results if r.outcome is Outcome.CREATED} == stuck
    assert second.counts["exists"] == len(targets) - len(stuck)
    assert set(sandbox.integrations) == {t.key for t in targets}
    assert commits(sandbox) == len(targets)


async def test_a_mix_of_every_fault_still_provisions_each_target_exactly_once(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target())
    sandbox = await start(make_sandbox)
    faults = [
        (0.03, reset_before()),
        (0.03, reset_after()),
        (0.02, slow(1.0)),
        (0.02, slow(1.0, before=True)),
        (0.03, server_error(503)),
        (0.01, throttle(reset_in_s=0.2)),
    ]
    async with FaultProxy(sandbox.url, Seeded(21, faults, skip_first=1)) as proxy:
        report = await run(sandbox, proxy, targets, timeouts=Timeouts(connect=1.0, total=0.3))

    assert_every_target_provisioned_once(report, sandbox, targets)
    assert {record.fault for record in proxy.log} >= {
        Kind.RESET_BEFORE,
        Kind.RESET_AFTER,
        Kind.SLOW,
        Kind.SERVER_ERROR,
        Kind.THROTTLE,
    }
    assert report.exit_code == 0


# A retry policy patient enough to outlast a half-second outage by a wide margin: each
# listing alone retries for about 20 x 0.1 s on average.
PATIENT = RetryPolicy(max_attempts=20, backoff_base_s=0.05, backoff_cap_s=0.2, budget=10_000)


async def test_a_proxy_outage_mid_run_is_ridden_out_and_nothing_is_created_twice(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target())
    sandbox = await start(make_sandbox)
    async with FaultProxy(sandbox.url) as proxy:
        proxy.down_after(100, seconds=0.5)
        report = await run(sandbox, proxy, targets, retry=PATIENT)
        assert proxy.outages == 1

    assert_every_target_provisioned_once(report, sandbox, targets)
    # Creates in flight when the connections were reset, and creates refused while down, were
    # all recovered: by finding them in the next listing or by creating them again.
    assert report.stats.retries > 0
    assert any(r.attempts > 1 or r.status is None for r in report.results)


# Too impatient for any outage: three tries, a few milliseconds apart.
IMPATIENT = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_cap_s=0.02)


async def test_an_outage_longer_than_the_retries_fails_the_rest_cleanly_and_a_rerun_completes(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target())
    keys = [t.key for t in targets]
    sandbox = await start(make_sandbox)
    async with FaultProxy(sandbox.url) as proxy:
        proxy.down_after(100, seconds=None)
        first = await run(sandbox, proxy, targets, retry=IMPATIENT)
        # The run ended while the proxy was still down.
        assert proxy.outages == 1 and not proxy.back.is_set()
        stored_between = set(sandbox.integrations)
        await proxy.come_back()
        second = await run(sandbox, proxy, targets, retry=IMPATIENT)

    # First run: every target reported once, in order; the ones cut off failed with a
    # transport error, the others were created; nothing stored that was not a target.
    assert [r.key for r in first.results] == keys
    failed = [r for r in first.results if r.outcome is Outcome.FAILED]
    assert failed
    assert first.counts["created"] + len(failed) == len(targets)
    assert all(r.error is not None for r in failed)
    assert {r.error.code for r in failed if r.error} <= {"TransportError", "RequestTimeout"}
    assert all(r.status is None for r in failed)
    created_first = {r.key for r in first.results if r.outcome is Outcome.CREATED}
    assert created_first <= stored_between <= set(keys)
    assert first.exit_code == 1

    # The rerun: the failed ones are created now, or exist (a create cut by the outage had
    # been applied), the rest exist; one integration per target, each committed once.
    assert [r.key for r in second.results] == keys
    assert second.exit_code == 0
    for result in second.results:
        expected = Outcome.EXISTS if result.key in stored_between else Outcome.CREATED
        assert result.outcome is expected, result
    assert set(sandbox.integrations) == set(keys)
    assert commits(sandbox) == len(targets)
