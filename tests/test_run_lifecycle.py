"""A run's life: reuse, leaving a stream early, stop, surprises in one target, per-run stats.

The engine must give every target one honest outcome and leave nothing running behind it,
whatever the caller does with the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from rich.console import Console

from ldbulk.api.models import RedisConfig, Target
from ldbulk.cli.render import to_junit, to_markdown, to_table
from ldbulk.engine.journal import Journal
from ldbulk.engine.provision import Provisioner, provision
from ldbulk.engine.report import Outcome
from ldbulk.engine.status import wait_for_stores
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]

REDIS = RedisConfig(host="redis.internal", password="redis-secret-value")
FAST = RetryPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


def targets(count: int, project: str = "proj-001") -> Iterator[Target]:
    for e in range(1, count + 1):
        yield Target(project=project, environment=f"env-{e:03d}", config=REDIS)


def client_for(sandbox: Sandbox) -> Client:
    return Client(sandbox.token, base_url=sandbox.url, retry=FAST)


def creates(sandbox: Sandbox) -> int:
    """Creates the sandbox applied."""
    return len(sandbox.integrations)


async def test_a_provisioner_runs_twice_and_the_second_run_sees_what_the_first_made(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=4)
    async with client_for(sandbox) as client:
        provisioner = Provisioner(client, list_first=True)
        first = await provisioner.run(list(targets(4)))
        second = await provisioner.run(list(targets(4)))
    assert first.counts["created"] == 4
    # The second run reads each back, finds it as wanted, and writes nothing.
    assert second.counts["unchanged"] == 4, second.counts
    assert second.stats.requests == 1 + 4


async def test_two_runs_on_one_client_each_report_their_own_stats(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=2, environments=5)
    async with client_for(sandbox) as client:
        one, two = await asyncio.gather(
            provision(client, list(targets(5, "proj-001")), list_first=True),
            provision(client, list(targets(5, "proj-002")), list_first=True),
        )
        total = client.stats
    # One listing and five creates each; the client's total holds both.
    assert one.stats.requests == two.stats.requests == 6
    assert total.requests == 12
    for report in (one, two):
        assert report.stats.paused_s <= report.stats.elapsed_s


async def test_leaving_a_stream_early_cancels_the_run_and_leaves_no_task(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=60)
    async with client_for(sandbox) as client:
        await client.list_integrations()  # the connection pool's tasks exist before we look
        before = asyncio.all_tasks()
        provisioner = Provisioner(client, concurrency=1)
        got = []
        # A guard, not a measurement: leaving the stream used to wait forever on a full queue.
        async with asyncio.timeout(30):
            async with provisioner.stream(targets(60)) as results:
                async for result in results:
                    got.append(result)
                    await asyncio.sleep(0.05)  # a slow consumer: the run's queue fills up
                    if len(got) == 2:
                        break
        left = {task for task in asyncio.all_tasks() - before if not task.done()}
    assert len(got) == 2
    assert left == set(), left
    assert creates(sandbox) < 60


async def test_after_stop_no_create_waiting_on_the_pacer_is_sent(
    make_sandbox: SandboxFactory,
) -> None:
    # 5 creates per 3-second window: after the first window's creates, the rest wait on the
    # pacer for the next window. Stopping then must send none of them.
    sandbox = await make_sandbox(projects=1, environments=20, route_limit=5, window_s=3.0)
    async with client_for(sandbox) as client:
        provisioner = Provisioner(client, concurrency=8)
        outcomes: list[Outcome] = []
        stop = asyncio.Event()

        def on_result(result: Any) -> None:
            outcomes.append(result.outcome)
            if len(outcomes) == 1:
                stop.set()

        report = await provisioner.run(list(targets(20)), on_result=on_result, stop=stop)
    created = report.counts["created"]
    assert creates(sandbox) == created
    assert created <= 5
    assert report.counts["skipped"] == 20 - created
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert all(r.error and "stopped" in r.error.message for r in skipped)


class _Broken(RedisConfig):
    """A config whose body cannot be built: an error the engine did not foresee."""

    def to_api(self) -> dict[str, Any]:
        raise RuntimeError("cannot build this body")


async def test_an_error_in_one_target_is_that_targets_failure_not_the_runs_end(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=4)
    broken = attrs.evolve(next(targets(1)), config=_Broken(host="h"))
    async with client_for(sandbox) as client:
        report = await provision(client, [broken, *list(targets(4))[1:]])
    first, *rest = report.results
    assert first.outcome is Outcome.FAILED
    assert first.error is not None and first.error.code == "internal_error"
    assert "cannot build this body" in first.error.message
    assert [r.outcome for r in rest] == [Outcome.CREATED] * 3


async def test_a_401_on_a_create_names_itself_in_every_skipped_target() -> None:
    listing = "/api/v2/integration-capabilities/big-segment-store"
    body = {"code": "unauthorized", "message": "Invalid access token", "id": "r1"}
    mocked = MemoryTransport()
    mocked.add("GET", listing, json={"items": [], "_links": {}})
    mocked.add("POST", f"{listing}/proj-001/env-001/redis", 401, json=body)
    async with Client("api-wrong", transport=mocked) as client:
        report = await Provisioner(client, concurrency=1).run(list(targets(3)))
    refused, *skipped = report.results
    assert refused.outcome is Outcome.UNAUTHORIZED
    assert refused.error is not None and refused.error.message == "Invalid access token"
    for result in skipped:
        assert result.outcome is Outcome.SKIPPED
        assert result.error is not None
        assert "401" in result.error.message and "Invalid access token" in result.error.message


async def test_a_server_quoting_a_referenced_value_shows_the_reference_in_every_output(
    tmp_path: Path,
) -> None:
    host = "redis-from-env-7f2a.internal"
    config = RedisConfig(
        host=host, password="pw-b81c", references={"host": "${REDIS_HOST}", "password": "${PW}"}
    )
    listing = "/api/v2/integration-capabilities/big-segment-store"
    said = {"code": "invalid", "message": f"cannot reach {host} with password pw-b81c", "id": "r"}
    mocked = MemoryTransport()
    mocked.add("GET", listing, json={"items": [], "_links": {}})
    mocked.add("POST", f"{listing}/proj-001/env-001/redis", 400, json=said)
    async with Client("api-any", transport=mocked) as client:
        report = await provision(
            client, [Target(project="proj-001", environment="env-001", config=config)]
        )
    (result,) = report.results
    assert result.outcome is Outcome.INVALID
    assert result.error is not None and "${REDIS_HOST}" in result.error.message
    with Journal(tmp_path / "j") as journal:
        journal.record(result)
    console = Console(record=True, width=200)
    console.print(to_table(report))
    everything = "".join(
        [report.dumps(), to_junit(report), to_markdown(report), console.export_text(),
         (tmp_path / "j").read_text(), repr(report), repr(config)]
    )
    assert host not in everything and "pw-b81c" not in everything


async def test_status_is_one_listing_per_poll_however_many_targets(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=12)
    polls: list[int] = []
    async with client_for(sandbox) as client:
        await provision(client, list(targets(12)))
        before = client.stats.requests
        states = await wait_for_stores(
            client, list(targets(12)), wait_s=0.3, interval_s=0.1,
            on_poll=lambda states, left: polls.append(len(states)),
        )
        sent = client.stats.requests - before
    assert len(states) == 12 and all(state.integration is not None for state in states)
    assert polls and all(count == 12 for count in polls)
    assert sent == len(polls)


@pytest.mark.parametrize(
    "message",
    [
        "x" * 480 + " password Tr0ub4dor-and-3-horse",  # across the report's length limit
        "bad password Tr0ub4dor-and-3-horse\x7f",  # next to a character outputs escape
    ],
)
async def test_a_secret_is_redacted_before_a_message_is_cut_or_escaped(message: str) -> None:
    secret = "Tr0ub4dor-and-3-horse"
    config = RedisConfig(host="h", password=secret)
    listing = "/api/v2/integration-capabilities/big-segment-store"
    mocked = MemoryTransport()
    mocked.add("GET", listing, json={"items": [], "_links": {}})
    said = {"code": "invalid", "message": message, "id": "r"}
    mocked.add("POST", f"{listing}/proj-001/env-001/redis", 400, json=said)
    async with Client("api-any", transport=mocked) as client:
        report = await provision(
            client, [Target(project="proj-001", environment="env-001", config=config)]
        )
    text = report.dumps()
    for part in (secret[:8], secret[-8:]):
        assert part not in text
