"""A run sharing its budget with other clients, on a fake clock (looptime): how the pacer
gives the budget back once the others have gone, and sends a run's last requests at once."""

from __future__ import annotations

import asyncio
import math

import pytest
from test_pacer import ROUTE, WindowedServer, now, wall

from ldbulk.http.pacer import Pacer

pytestmark = pytest.mark.looptime

LATENCY_S = 0.08
SKEW_S = 0.3


async def run(server: WindowedServer, requests: int, workers: int) -> list[tuple[float, int]]:
    """``requests`` round trips by ``workers`` at once: when each went, and its status."""
    work = list(range(requests))
    sent: list[tuple[float, int]] = []

    async def worker() -> None:
        while work:
            work.pop()
            ticket = await server.pacer.acquire(ROUTE)
            went = now()
            await asyncio.sleep(LATENCY_S / 2)
            status, state = server.arrive()
            await asyncio.sleep(LATENCY_S / 2)
            server.pacer.observe(ROUTE, status, state, ticket)
            sent.append((went, status))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return sent


async def others_spend(server: WindowedServer, at: float, count: int) -> None:
    """Another client of the account spends ``count`` requests at loop time ``at``."""
    await asyncio.sleep(at - now())
    for _ in range(count):
        server.arrive()


async def test_a_window_after_the_others_have_gone_is_used_in_full_at_once() -> None:
    """Others spend before our first word and while we spread window 0, then stop. Window 1
    is shared (they spent window 0), window 2 is ours again: all of it goes at its start.
    The server's clock runs ahead of ours unseen (no ``Date``), so the answers to our last
    requests of a window tell of the next one before our clock reaches its reset."""
    pacer = Pacer(wall_clock=wall())
    start = now()
    server = WindowedServer(pacer, limit=100, start=start, skew=SKEW_S)
    for _ in range(40):
        server.arrive()
    spending = asyncio.ensure_future(others_spend(server, start + 1.0, 30))
    sent = await run(server, 300, workers=64)
    await spending
    # The window's budget was all ours (none refused), sent within a round trip of its start.
    assert server.counted[2] == 100
    assert [status for _, status in sent].count(429) == 0
    window_2 = [went - start for went, _ in sent if 20.0 - LATENCY_S <= went - start < 30.0]
    assert max(window_2) < 20.0 + SKEW_S + 0.5


async def test_a_runs_last_requests_go_at_once_when_they_fit_in_its_part() -> None:
    """Others spend half of every window, five requests a second. Once a window has measured
    our part, the requests still to send that fit in it go together, not spaced to the reset."""
    pacer = Pacer(wall_clock=wall())
    start = now()
    server = WindowedServer(pacer, limit=100, start=start)
    steady = [asyncio.ensure_future(others_spend(server, start + at, 5)) for at in range(60)]
    sent = await run(server, 140, workers=64)
    for each in steady:
        each.cancel()
    # The last window's requests: more than a few, all within a round trip of its start,
    # and none refused (they fit in what the others left).
    last_window = max(went - start for went, _ in sent) // 10
    last = [(went - start, status) for went, status in sent if (went - start) // 10 == last_window]
    assert len(last) > 20
    assert max(went for went, _ in last) < last_window * 10 + 0.5
    assert all(status == 201 for _, status in last)


async def test_in_flight_is_bounded_by_a_windows_budget_at_the_round_trip_seen() -> None:
    """Enough requests in flight to send a window's budget within a round trip, no more; the
    user's concurrency stays the ceiling; before any answer, the ceiling."""
    pacer = Pacer(wall_clock=wall())
    assert pacer.in_flight_bound((ROUTE,), 512) == 512
    server = WindowedServer(pacer, limit=100, start=now())
    await run(server, 3, workers=1)  # round trips of 80 ms
    assert pacer.in_flight_bound((ROUTE,), 512) == 100
    assert pacer.in_flight_bound((ROUTE,), 32) == 32


async def test_a_round_trip_longer_than_a_window_keeps_more_in_flight() -> None:
    """Round trips of 25 s span two and a half windows of 10 s: as many windows' budgets."""
    pacer = Pacer(wall_clock=wall())
    server = WindowedServer(pacer, limit=10, start=now())
    for _ in range(8):
        ticket = await pacer.acquire(ROUTE)
        await asyncio.sleep(25)
        server.answer(ticket)
    assert pacer.in_flight_bound((ROUTE,), 512) == 25


async def test_the_round_trip_is_smoothed_over_several_answers() -> None:
    pacer = Pacer(wall_clock=wall())
    server = WindowedServer(pacer, limit=100, start=now())
    for latency in (0.1, 0.1, 0.1, 60.0):
        ticket = await pacer.acquire(ROUTE)
        await asyncio.sleep(latency)
        server.answer(ticket)
    # One answer a minute late: the round trip it shows weighs a fifth (12 s, not 60 s).
    assert pacer.in_flight_bound((ROUTE,), 512) == math.ceil(100 * (0.1 + 0.2 * 59.9) / 10)
