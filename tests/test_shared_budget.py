"""Runs that share an account's budget: with each other, and with other clients' load.

Everything runs on a fake clock (looptime): the sandbox's windows, its latency and the client's
pacer all read the event loop's time, so the counts of 429s and windows are exact, whatever the
machine's speed, and a minute of windows takes well under a second.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import pytest

from ldbulk.api.models import RedisConfig, Target
from ldbulk.engine.provision import provision
from ldbulk.engine.report import Report
from ldbulk.http.client import Client
from ldbulk.http.pacer import Pacer
from ldbulk.http.retry import RetryPolicy
from ldbulk.sandbox import Sandbox

pytestmark = pytest.mark.looptime

SandboxFactory = Callable[..., Awaitable[Sandbox]]

EPOCH = 1_800_000_000.0  # wall-clock seconds at loop time 0: the start of a window
WINDOW_S = 10.0
CONFIG = RedisConfig(host="redis.internal")


def epoch_clock() -> Callable[[], float]:
    loop = asyncio.get_running_loop()
    return lambda: EPOCH + loop.time()


def targets(project: str, count: int) -> list[Target]:
    return [
        Target(project=project, environment=f"env-{e:03d}", config=CONFIG)
        for e in range(1, count + 1)
    ]


async def run(sandbox: Sandbox, batch: list[Target]) -> tuple[Report, float]:
    """One run, with a client of its own (as a process of its own would have)."""
    pacer = Pacer(wall_clock=epoch_clock())
    async with Client(sandbox.token, base_url=sandbox.url, pacer=pacer, retry=RetryPolicy()) as c:
        report = await provision(c, batch)
    return report, asyncio.get_running_loop().time()


async def measure(
    sandbox: Sandbox, batches: list[list[Target]], stagger_s: float = 0.0
) -> tuple[float, int, int]:
    """Share of 429s among all requests, 429s after the first window, and windows used; each
    run started ``stagger_s`` after the one before it."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    first_window_end = (math.floor(start / WINDOW_S) + 1) * WINDOW_S

    async def throttled_in_first_window() -> int:
        await asyncio.sleep(first_window_end - loop.time())
        return sandbox.stats.throttled

    first = asyncio.ensure_future(throttled_in_first_window())

    async def started(index: int, batch: list[Target]) -> tuple[Report, float]:
        await asyncio.sleep(index * stagger_s)
        return await run(sandbox, batch)

    outcomes = await asyncio.gather(*(started(i, batch) for i, batch in enumerate(batches)))
    for report, _ in outcomes:
        assert report.counts["created"] == len(report.results)
    stats = sandbox.stats
    end = max(finished for _, finished in outcomes)
    windows = math.floor(end / WINDOW_S) - math.floor(start / WINDOW_S) + 1
    return stats.throttled / stats.total, stats.throttled - await first, windows


async def test_two_clients_on_one_token_share_the_route_budget(
    make_sandbox: SandboxFactory,
) -> None:
    """Two runs at once, each with a Client of its own in this one process (as two processes
    would have): 30 + 30 creates, route limit 10, so 6 windows at best."""
    sandbox = await make_sandbox(
        projects=2, environments=30, route_limit=10, latency_ms=20, clock=epoch_clock()
    )
    share, later, windows = await measure(
        sandbox, [targets("proj-001", 30), targets("proj-002", 30)]
    )
    # Each run's first create goes alone (slow start); its answer shows the other's spending,
    # so each spreads what is left instead of sending it at once.
    assert later == 0
    assert share <= 0.10
    assert windows <= 60 // 10 + 1


async def test_a_run_started_a_round_trip_after_another_does_not_storm_the_next_window(
    make_sandbox: SandboxFactory,
) -> None:
    """The first run hears the server before the second's first create lands: it sees the
    window as its own and sends it in full; the second's first create meets a spent window.
    Neither may open the next window at once (which drew a 429 for every create of a window)."""
    sandbox = await make_sandbox(
        projects=2, environments=30, route_limit=10, latency_ms=20, clock=epoch_clock()
    )
    share, _, windows = await measure(
        sandbox, [targets("proj-001", 30), targets("proj-002", 30)], stagger_s=0.1
    )
    assert share <= 0.10
    assert windows <= 60 // 10 + 1


async def test_four_runs_on_one_account_finish_close_to_the_bound(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(
        projects=4, environments=15, route_limit=10, latency_ms=20, clock=epoch_clock()
    )
    share, later, windows = await measure(
        sandbox, [targets(f"proj-00{i}", 15) for i in range(1, 5)]
    )
    # Four first creates meet a budget of 10; after that, no storm (a few collisions of four
    # runs reading one count: 11-12% in all, where each assuming the whole limit drew 27%), and
    # at most two windows beyond the bound.
    assert share <= 0.2
    assert later <= 8
    assert windows <= 60 // 10 + 2


async def test_a_run_against_other_clients_load_keeps_clear_of_429s(
    make_sandbox: SandboxFactory,
) -> None:
    """Other clients spend half the route's budget, spread over every window."""
    sandbox = await make_sandbox(
        projects=1,
        environments=30,
        route_limit=10,
        background_rate=5,
        latency_ms=20,
        clock=epoch_clock(),
    )
    share, _, windows = await measure(sandbox, [targets("proj-001", 30)])
    assert share <= 0.05
    # 30 creates at the 5 per window the others leave: 6 windows.
    assert windows <= 30 // 5 + 1
