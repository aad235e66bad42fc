"""How many targets a run has in the works: what the pacer finds worth having in flight, not
the concurrency ceiling (the rest would only wait in the pacer, costing CPU there)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ldbulk.api.models import RedisConfig, Target
from ldbulk.engine.provision import Provisioner
from ldbulk.engine.run import Admission
from ldbulk.http.client import Client
from ldbulk.http.pacer import Ticket
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]


async def test_workers_above_the_bound_park_until_it_grows_or_the_work_is_over() -> None:
    bound = 2
    admission = Admission(lambda: bound)
    turns = {n: asyncio.ensure_future(admission.turn(n)) for n in range(5)}
    await asyncio.sleep(0)
    assert [n for n, turn in turns.items() if turn.done()] == [0, 1]
    admission.settled()  # the bound did not move: nobody is woken
    await asyncio.sleep(0)
    assert [n for n, turn in turns.items() if turn.done()] == [0, 1]
    bound = 4
    admission.settled()
    await asyncio.sleep(0)
    assert [n for n, turn in turns.items() if turn.done()] == [0, 1, 2, 3]
    admission.over()
    await asyncio.sleep(0)
    assert all(turn.done() for turn in turns.values())


async def test_past_the_first_window_no_more_targets_wait_in_the_pacer_than_a_window_takes(
    make_sandbox: SandboxFactory,
) -> None:
    # 50 creates a half-second window, 300 targets, a ceiling of 150: once the first answers
    # name the budget, a worker that settles its target parks above 50 instead of queueing
    # in the pacer for windows to come.
    sandbox = await make_sandbox(projects=1, environments=300, route_limit=50, window_s=0.5)
    client = Client(sandbox.token, base_url=sandbox.url)
    waiting = granted = 0
    most_waiting_later = 0
    acquire = client.pacer.acquire

    async def counted(route: str, **options: object) -> Ticket:
        nonlocal waiting, granted, most_waiting_later
        waiting += 1
        if granted >= 100:
            most_waiting_later = max(most_waiting_later, waiting)
        try:
            return await acquire(route, **options)  # type: ignore[arg-type]
        finally:
            waiting -= 1
            granted += 1

    client.pacer.acquire = counted  # type: ignore[method-assign]
    config = RedisConfig(host="redis.internal")
    wanted = [Target(project="proj-001", environment=f"env-{e:03d}", config=config)
              for e in range(1, 301)]
    async with client:
        report = await Provisioner(client, concurrency=150).run(wanted)
    assert report.counts["created"] == 300
    assert 0 < most_waiting_later <= 50
