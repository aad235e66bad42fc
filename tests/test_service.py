"""The library as an async service uses it: callbacks sync or async, ``.ok``, counts by
outcome, the two ways to stop, and a quiet logger."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from conftest import SandboxFactory, integration
from conftest import target as conftest_target

import ldbulk
from ldbulk import Client, Outcome, RedisConfig, Report, Target, TargetResult, provision
from ldbulk.testing import MemoryTransport

MANIFEST = """
version: 1
stores:
  cache:
    integration: redis
    config: {host: redis.internal}
targets:
  - project: proj-001
    environments: [env-001, env-002]
    store: cache
"""


def target(environment: str) -> Target:
    return Target(project="proj-001", environment=environment,
                  config=RedisConfig(host="redis.internal"))


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("ldbulk").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_a_result_and_a_report_say_whether_they_are_ok() -> None:
    good = TargetResult(project="p", environment="e", integration="redis",
                        outcome=Outcome.CREATED)
    bad = TargetResult(project="p", environment="f", integration="redis",
                       outcome=Outcome.FAILED)
    assert good.ok and not bad.ok
    report = Report(results=(good, bad))
    assert not report.ok and report.total == 2
    assert report.counts[Outcome.CREATED] == 1 and report.counts["failed"] == 1
    assert Outcome.CREATED in list(report.counts)


def test_an_outcome_is_ok_when_the_target_is_as_asked_and_only_then() -> None:
    # README's rule: created, updated, unchanged, exists, deleted; every other outcome is not.
    ok = {outcome.value for outcome in Outcome if outcome.ok}
    assert ok == {"created", "updated", "unchanged", "exists", "deleted"}
    assert not Outcome.SKIPPED.ok and not Outcome.NOT_FOUND.ok and not Outcome.CONFLICT.ok


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_apply_takes_sync_or_async_callbacks(
    make_sandbox: SandboxFactory, asynchronous: bool
) -> None:
    sandbox = await make_sandbox()
    seen: list[str] = []
    started: list[int] = []

    def on_result(result: TargetResult) -> None:
        seen.append(result.environment)

    async def on_result_async(result: TargetResult) -> None:
        await asyncio.sleep(0)
        seen.append(result.environment)

    def on_start(started_with: ldbulk.ApplyStarted) -> None:
        started.append(started_with.todo)

    async def on_start_async(started_with: ldbulk.ApplyStarted) -> None:
        await asyncio.sleep(0)
        started.append(started_with.todo)

    manifests = ldbulk.loads_manifest(MANIFEST)
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report = await ldbulk.apply(
            client,
            manifests,
            on_start=on_start_async if asynchronous else on_start,
            on_result=on_result_async if asynchronous else on_result,
        )
    assert report.ok
    assert sorted(seen) == ["env-001", "env-002"] and started == [2]


async def test_a_stop_event_drains_and_reports_the_rest_skipped(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(environments=6, latency_ms=200)
    stop = asyncio.Event()
    targets = [target(f"env-00{n}") for n in range(1, 7)]

    def first_settled(result: TargetResult) -> None:
        stop.set()

    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report = await provision(client, targets, concurrency=1, stop=stop,
                                 on_result=first_settled)
    outcomes = [result.outcome for result in report.results]
    # The first settled; one more may have been in flight at the stop, and was answered.
    created = outcomes.count(Outcome.CREATED)
    assert outcomes[0] is Outcome.CREATED and created <= 2
    assert outcomes[created:] == [Outcome.SKIPPED] * (6 - created)
    assert sandbox.stats.integrations == created


async def test_cancelling_the_task_sends_nothing_after_and_leaves_no_task(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(environments=6, latency_ms=200)
    targets = [target(f"env-00{n}") for n in range(1, 7)]
    settled: list[TargetResult] = []
    before = asyncio.all_tasks()

    first = asyncio.Event()

    async def on_result(result: TargetResult) -> None:
        settled.append(result)
        first.set()

    async with Client(sandbox.token, base_url=sandbox.url) as client:
        task = asyncio.create_task(
            provision(client, targets, concurrency=1, on_result=on_result)
        )
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _ldbulk_tasks(asyncio.all_tasks() - before) == []
        sent = sandbox.stats.total
        await asyncio.sleep(0.5)
        assert sandbox.stats.total == sent <= 2
    assert [result.outcome for result in settled] == [Outcome.CREATED]


def _ldbulk_tasks(tasks: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    """The client's tasks among ``tasks`` (the sandbox's own server tasks run in this loop
    too, finishing the answers it was giving)."""
    files = {
        task: getattr(getattr(task.get_coro(), "cr_code", None), "co_filename", "")
        for task in tasks
    }
    return [task for task, file in files.items()
            if "/ldbulk/" in file and "/ldbulk/sandbox/" not in file]


def test_the_default_concurrency_follows_the_open_files_limit_when_used() -> None:
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    client = Client("api-unit-test-token", base_url="http://127.0.0.1:9")
    lowered = 200 if hard == resource.RLIM_INFINITY else min(200, hard)
    # Lowered after ldbulk was imported: the default is what the limit allows now.
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert ldbulk.Provisioner(client).concurrency == max(8, (lowered - 64) // 2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_run_whose_stop_is_set_before_it_starts_sends_nothing(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox()
    stop = asyncio.Event()
    stop.set()
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report = await ldbulk.Provisioner(client).run([target("env-001")], stop=stop)
    assert [result.outcome for result in report.results] == [Outcome.SKIPPED]
    assert sandbox.stats.total == 0


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_carrying_out_a_saved_plan_takes_sync_or_async_callbacks(
    client: Client, mocked: MemoryTransport, asynchronous: bool
) -> None:
    new = conftest_target("prod")
    mocked.add("POST", re.compile(r".*/redis$"), status=201, json=integration("prod"))
    saved = ldbulk.SavedPlan(
        base_url=client.base_url, manifests=(), digest="", ownership_tags=(),
        rotate_secrets=False, created_at="2026-01-01T00:00:00Z",
        actions=(ldbulk.SavedAction(key=new.key, action=ldbulk.Action.CREATE),),
    )
    seen: list[Outcome] = []

    def on_result(result: TargetResult) -> None:
        seen.append(result.outcome)

    async def on_result_async(result: TargetResult) -> None:
        await asyncio.sleep(0)
        seen.append(result.outcome)

    async with client:
        report = await ldbulk.carry_out(
            client, saved, {new.key: new},
            on_result=on_result_async if asynchronous else on_result,
        )
    assert report.ok and seen == [Outcome.CREATED]
