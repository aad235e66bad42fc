"""Whole runs of the engine: the real client against the real sandbox on a loopback port."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

from conftest import DYNAMO, REDIS, SandboxFactory

from ldbulk.api.models import Target
from ldbulk.engine.provision import Provisioner, provision
from ldbulk.engine.report import Outcome, Report, TargetResult
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.sandbox import Sandbox

# Fast retries keep the test short; the policy's logic is the same as the default's.
FAST = RetryPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


def every_target(projects: int, environments: int) -> Iterator[Target]:
    for p in range(1, projects + 1):
        for e in range(1, environments + 1):
            config = REDIS if e % 2 else DYNAMO
            yield Target(
                project=f"proj-{p:03d}", environment=f"env-{e:03d}", config=config, on=True
            )


def client_for(sandbox: Sandbox) -> Client:
    return Client(sandbox.token, base_url=sandbox.url, retry=FAST)


async def test_faults_and_rate_limits_leave_exactly_one_integration_per_target(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target(10, 32))
    sandbox = await make_sandbox(projects=10, environments=32, route_limit=100, window_s=1.0,
                                 fault_rate=0.10, drop_after_commit=0.05, seed=7)
    async with client_for(sandbox) as client:
        report = await provision(client, targets, concurrency=8)
        stored = sandbox.integrations
        stats = sandbox.stats

    assert len(targets) >= 300
    assert [r.key for r in report.results] == [t.key for t in targets]
    assert report.counts["failed"] == 0
    assert report.counts["created"] == len(targets)
    assert set(stored) == {t.key for t in targets}
    # The faults really happened, and the answers lost with them were recovered.
    assert stats.faults > 0 and stats.dropped > 0
    assert report.stats.retries > 0
    recovered = [r for r in report.results if r.attempts > 1 or r.status != 201]
    assert recovered


async def test_a_create_only_rerun_sends_one_list_request_and_writes_nothing(
    make_sandbox: SandboxFactory,
) -> None:
    targets = list(every_target(3, 10))
    sandbox = await make_sandbox(projects=3, environments=10)
    async with client_for(sandbox) as client:
        first = await provision(client, targets)
    async with client_for(sandbox) as client:
        second = await provision(client, targets, create_only=True)
    assert len(sandbox.integrations) == len(targets)

    assert first.counts["created"] == len(targets)
    assert second.counts["exists"] == len(targets)
    assert second.stats.requests == 1
    ids = {r.key: r.integration_id for r in first.results}
    assert all(ids[r.key] == r.integration_id for r in second.results)


async def test_rate_limits_learned_from_headers_avoid_429s(make_sandbox: SandboxFactory) -> None:
    targets = list(every_target(5, 50))
    options = dict(projects=5, environments=50, route_limit=60, window_s=0.5)
    sandbox = await make_sandbox(**options)
    async with client_for(sandbox) as client:
        report = await provision(client, targets, concurrency=16)
        throttled = sandbox.stats.throttled

    assert report.counts["created"] == len(targets)
    # Only the first window, before any response has told the limit, may see a 429.
    assert throttled <= 16
    assert report.stats.throttled == throttled


async def test_two_runs_sharing_a_tiny_global_limit_provision_everything(
    make_sandbox: SandboxFactory,
) -> None:
    """Two runs share the account's global limit (10 per 0.2 s window): each reads the other's
    spending and spreads its own, so they rarely collide; every 429 there is, is counted in
    the run that drew it. (429 storms proper, with and without headers: test_faults.py.)"""
    options = dict(projects=2, environments=60, global_limit=10, window_s=0.2, retry_after=True)
    halves = [list(every_target(2, 60))[0::2], list(every_target(2, 60))[1::2]]
    sandbox = await make_sandbox(**options)

    async def run(targets: list[Target]) -> Report:
        async with client_for(sandbox) as client:
            return await provision(client, targets, concurrency=32)

    reports = await asyncio.gather(*(run(half) for half in halves))
    assert len(sandbox.integrations) == 120
    throttled = sandbox.stats.throttled
    assert sum(r.stats.throttled for r in reports) == throttled
    assert all(r.counts["created"] == 60 for r in reports)


async def test_missing_environments_are_not_found_and_the_rest_proceed(
    make_sandbox: SandboxFactory,
) -> None:
    targets = [
        Target(project="proj-001", environment="env-001", config=REDIS),
        Target(project="proj-001", environment="no-such-env", config=REDIS),
        Target(project="no-such-project", environment="env-001", config=DYNAMO),
    ]
    sandbox = await make_sandbox(projects=1, environments=1)
    async with client_for(sandbox) as client:
        report = await provision(client, targets)
    assert [r.outcome for r in report.results] == [
        Outcome.CREATED,
        Outcome.NOT_FOUND,
        Outcome.NOT_FOUND,
    ]
    assert report.results[1].status == 404
    assert report.results[1].error is not None and report.results[1].error.code
    assert report.exit_code == 1


async def test_a_wrong_token_stops_the_run_before_any_write(make_sandbox: SandboxFactory) -> None:
    targets = list(every_target(1, 5))
    sandbox = await make_sandbox(projects=1, environments=5)
    async with Client("api-wrong", base_url=sandbox.url) as client:
        report = await provision(client, targets)
    assert sandbox.integrations == {}
    assert {r.outcome for r in report.results} == {Outcome.UNAUTHORIZED}


async def test_workers_stay_bounded_however_many_targets_stream_in(
    make_sandbox: SandboxFactory,
) -> None:
    """No task or coroutine per target up front: pending tasks stay near the worker count."""
    peak = 0

    def count_tasks(_: TargetResult) -> None:
        nonlocal peak
        peak = max(peak, len(asyncio.all_tasks()))

    sandbox = await make_sandbox(projects=20, environments=100)
    async with client_for(sandbox) as client:
        provisioner = Provisioner(client, concurrency=8)
        report = await provisioner.run(every_target(20, 100), on_result=count_tasks)
    assert report.counts["created"] == 2000
    # 8 workers, the producer, the test, and the in-process server's handlers and connections:
    # a constant, far below one per target.
    assert peak <= 40


async def test_results_stream_as_targets_settle(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox(projects=2, environments=10)
    async with (
        client_for(sandbox) as client,
        Provisioner(client).stream(every_target(2, 10)) as results,
    ):
        outcomes = Counter([r.outcome async for r in results])
    assert outcomes == {Outcome.CREATED: 20}
