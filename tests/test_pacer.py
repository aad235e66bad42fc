"""The pacer against a fake clock: looptime fast-forwards the loop, nothing sleeps for real."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest

from ldbulk.api.limits import MAX_WAIT_S, RESET_MARGIN_S, RateLimitState
from ldbulk.errors import Stopped
from ldbulk.http.pacer import Pacer, Ticket

Limits = RateLimitState

pytestmark = pytest.mark.looptime

EPOCH = 1_800_000_000.0  # wall-clock seconds at loop time 0
ROUTE = "POST /route"


def wall() -> Callable[[], float]:
    loop = asyncio.get_running_loop()
    return lambda: EPOCH + loop.time()


def now() -> float:
    return asyncio.get_running_loop().time()


def reset_in(seconds: float) -> int:
    return int((EPOCH + now() + seconds) * 1000)


def heard(pacer: Pacer, route: str = ROUTE) -> Pacer:
    """As after a first answer that named no budget: past slow start, nothing known."""
    pacer.observe(route, 200, Limits())
    return pacer


class WindowedServer:
    """Answers as LaunchDarkly would on one route: fixed 10-s windows from ``start``, each
    with ``limit`` requests, every answer naming what is left and when the window resets.

    Its clock is ``skew`` seconds ahead of ours (negative: behind): its resets are epoch times
    on that clock, and with ``dated`` every answer carries its ``Date`` (whole seconds)."""

    def __init__(
        self, pacer: Pacer, *, limit: int, start: float, skew: float = 0.0, dated: bool = False
    ) -> None:
        self.pacer, self.limit, self.start = pacer, limit, start
        self.skew, self.dated = skew, dated
        self.counted: dict[int, int] = {}

    def arrive(self) -> tuple[int, RateLimitState]:
        """A request arrives now: counted in this window, or refused with 429."""
        window = int((now() - self.start) // 10)
        spent = self.counted[window] = self.counted.get(window, 0) + 1
        status = 201 if spent <= self.limit else 429
        reset_at = self.start + (window + 1) * 10 - now()
        state = Limits(
            route_limit=self.limit,
            route_remaining=max(self.limit - spent, 0),
            reset_ms=reset_in(reset_at + self.skew),
            date=float(math.floor(EPOCH + now() + self.skew)) if self.dated else None,
        )
        return status, state

    def answer(self, ticket: Ticket, route: str = ROUTE) -> int:
        """A request arrives and is answered at once."""
        status, state = self.arrive()
        self.pacer.observe(route, status, state, ticket)
        return status

    async def round_trip(self, latency: float) -> int:
        """One request through the pacer, counted halfway and answered after ``latency``."""
        ticket = await self.pacer.acquire(ROUTE)
        await asyncio.sleep(latency / 2)
        status, state = self.arrive()
        await asyncio.sleep(latency / 2)
        self.pacer.observe(ROUTE, status, state, ticket)
        return status


async def acquire_times(
    pacer: Pacer, count: int, route: str = ROUTE, *, answered: bool = False
) -> list[float]:
    """When each of ``count`` requests got its turn; with ``answered``, each is answered at
    once (with no word on the budgets), else all stay in flight."""
    times = []
    for _ in range(count):
        ticket = await pacer.acquire(route)
        times.append(now())
        if answered:
            pacer.observe(route, 201, Limits(), ticket)
    return times


async def test_slow_start_sends_one_request_and_waits_for_its_answer() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    first = await pacer.acquire(ROUTE)
    waiting = [asyncio.ensure_future(pacer.acquire(ROUTE)) for _ in range(49)]
    await asyncio.sleep(30)  # however long: nothing more goes before the answer
    assert not any(task.done() for task in waiting) and pacer.stats.requests == 1
    pacer.observe(ROUTE, 201, Limits(), first)  # an answer that names no budget
    await asyncio.gather(*waiting)
    assert now() == start + 30 and pacer.stats.requests == 50


async def test_requests_pass_immediately_when_an_answer_named_no_limit() -> None:
    pacer = heard(Pacer(wall_clock=wall()))
    start = now()
    times = await acquire_times(pacer, 50)
    assert times[-1] == start
    assert pacer.stats.requests == 50


async def test_spent_route_budget_holds_requests_until_the_reset() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(
        ROUTE, 201, RateLimitState(route_limit=10, route_remaining=2, reset_ms=reset_in(4))
    )
    times = await acquire_times(pacer, 3)
    # Someone spent eight before our first word: the two left are spread over this window.
    assert times[0] == start and start < times[1] < start + 4
    assert times[2] >= start + 4
    assert times[2] <= start + 4 + RESET_MARGIN_S + 0.01


async def test_budget_refills_to_the_known_limit_in_each_new_window() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(
        ROUTE, 201, RateLimitState(route_limit=5, route_remaining=0, reset_ms=reset_in(10))
    )
    server = WindowedServer(pacer, limit=5, start=start)
    times = []
    for _ in range(12):
        server.answer(await pacer.acquire(ROUTE))
        times.append(now())
    windows = [int((t - start) // 10) for t in times]
    # Five per window after the first, which was already spent.
    assert windows == [1] * 5 + [2] * 5 + [3] * 2


async def test_routes_have_separate_budgets() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(
        ROUTE, 201, RateLimitState(route_limit=1, route_remaining=0, reset_ms=reset_in(10))
    )
    await pacer.acquire("GET /other")
    assert now() == start


async def test_global_budget_applies_to_every_route() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(
        ROUTE, 201, RateLimitState(global_limit=3, global_remaining=0, reset_ms=reset_in(6))
    )
    await pacer.acquire("GET /other")
    assert now() >= start + 6


async def test_token_budget_waits_for_its_own_reset() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    state = RateLimitState(
        token_limit=2, token_remaining=0, token_reset_ms=reset_in(3), reset_ms=reset_in(9)
    )
    pacer.observe(ROUTE, 200, state)
    await pacer.acquire(ROUTE)
    assert start + 3 <= now() < start + 9


async def test_lower_server_count_wins_within_a_window() -> None:
    """Other clients of the account spend the same budget: the server's count is the truth."""
    pacer = Pacer(wall_clock=wall())
    start = now()
    reset = reset_in(10)
    pacer.observe(ROUTE, 201, Limits(route_limit=100, route_remaining=50, reset_ms=reset))
    pacer.observe(ROUTE, 201, Limits(route_limit=100, route_remaining=1, reset_ms=reset))
    times = await acquire_times(pacer, 2)
    assert times[0] == start
    assert times[1] >= start + 10


async def test_a_429_pauses_every_waiting_request_behind_one_gate() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.5, rand=lambda: 1.0)
    start = now()
    pacer.observe(ROUTE, 429, RateLimitState(reset_ms=reset_in(7)))
    times = await asyncio.gather(*(acquire_times(pacer, 1, route) for route in ("a", "b", "c")))
    expected = start + 7 + RESET_MARGIN_S + 0.5
    assert all(abs(t[0] - expected) < 0.01 for t in times)
    assert pacer.stats.throttled == 1
    assert pacer.stats.paused_s == pytest.approx(7 + RESET_MARGIN_S + 0.5, abs=0.01)


async def test_retry_after_wins_when_later_than_the_reset() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    start = now()
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=20, reset_ms=reset_in(5)))
    await pacer.acquire(ROUTE)
    assert now() == pytest.approx(start + 20, abs=0.01)


async def test_reset_wins_when_later_than_retry_after() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    start = now()
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=1, reset_ms=reset_in(5)))
    await pacer.acquire(ROUTE)
    assert now() == pytest.approx(start + 5 + RESET_MARGIN_S, abs=0.01)


async def test_429_without_headers_waits_one_window() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    start = now()
    pacer.observe(ROUTE, 429, RateLimitState())
    await pacer.acquire(ROUTE)
    assert now() == pytest.approx(start + 10, abs=0.01)


async def test_overlapping_429s_count_paused_time_once() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=5))
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=8))
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=3))
    assert pacer.stats.throttled == 3
    assert pacer.stats.paused_s == pytest.approx(8)


async def test_absurd_reset_is_capped() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    start = now()
    pacer.observe(ROUTE, 429, RateLimitState(reset_ms=reset_in(10**9)))
    await pacer.acquire(ROUTE)
    assert now() <= start + MAX_WAIT_S + RESET_MARGIN_S + 0.01


async def test_a_reset_long_past_means_one_window_from_now() -> None:
    """No window an answer speaks for ended 30 s ago: the reset is broken (or on a clock far
    behind ours, with no Date to tell), and the spent budget waits one window, no more."""
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(ROUTE, 201, Limits(route_remaining=0, reset_ms=reset_in(-30)))
    await pacer.acquire(ROUTE)
    assert now() == pytest.approx(start + 10)


async def test_a_429_with_a_reset_in_the_past_waits_one_window_not_a_retry_storm() -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    start = now()
    pacer.observe(ROUTE, 429, RateLimitState(reset_ms=reset_in(-3)))
    await pacer.acquire(ROUTE)
    assert now() == pytest.approx(start + 10)


async def test_a_reset_more_than_a_window_ahead_means_one_window_from_now() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(ROUTE, 201, Limits(route_remaining=0, reset_ms=reset_in(45)))
    await pacer.acquire(ROUTE)
    assert now() == pytest.approx(start + 10)


def dated(seconds_ahead_of_ours: float) -> float:
    """The ``Date`` of an answer made now by a server whose clock is that far ahead."""
    return float(math.floor(EPOCH + now() + seconds_ahead_of_ours))


@pytest.mark.parametrize("skew", [-30.4, 30.4])
async def test_a_spent_budget_waits_for_the_reset_on_the_servers_clock(skew: float) -> None:
    pacer = Pacer(wall_clock=wall())
    await asyncio.sleep(0.7)  # an answer made within a second, not on it
    start = now()
    state = Limits(route_remaining=0, reset_ms=reset_in(skew + 4), date=dated(skew))
    pacer.observe(ROUTE, 201, state)
    await pacer.acquire(ROUTE)
    # Four seconds, as the server counts them; ``Date`` drops the fraction of a second the
    # answer was made in, so one answer alone may make it up to a second later, never sooner.
    assert start + 4 + RESET_MARGIN_S <= now() <= start + 5 + RESET_MARGIN_S


@pytest.mark.parametrize("skew", [-30.4, 30.4])
async def test_a_429_waits_for_the_reset_on_the_servers_clock(skew: float) -> None:
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    start = now()
    state = Limits(reset_ms=reset_in(skew + 6), date=dated(skew))
    pacer.observe(ROUTE, 429, state)
    await pacer.acquire(ROUTE)
    assert start + 6 + RESET_MARGIN_S <= now() <= start + 7 + RESET_MARGIN_S


async def test_a_late_answer_with_its_date_is_taken_for_the_window_it_came_from() -> None:
    """Its reset is past by our reading of the server's clock, but right by its own Date:
    an earlier window's word, which says nothing of this one."""
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(
        ROUTE, 201, Limits(route_limit=5, route_remaining=5, reset_ms=reset_in(10), date=dated(0))
    )
    late = Limits(route_limit=5, route_remaining=0, reset_ms=reset_in(-2), date=dated(-8))
    pacer.observe(ROUTE, 201, late)
    await pacer.acquire(ROUTE)
    assert now() == start


async def run_against(server: WindowedServer, requests: int) -> tuple[int, float]:
    """``requests`` round trips of 200 ms through 64 workers: the 429s and the time taken."""
    start = now()
    work = list(range(requests))

    async def worker() -> list[int]:
        statuses = []
        while work:
            work.pop()
            statuses.append(await server.round_trip(0.2))
        return statuses

    statuses = [s for each in await asyncio.gather(*(worker() for _ in range(64))) for s in each]
    return statuses.count(429), now() - start


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
@pytest.mark.parametrize("skew", [-30.4, 30.4])
async def test_a_server_clock_30_s_off_costs_no_429_and_at_most_one_window(
    skew: float, dated: bool
) -> None:
    """Measured before: 30 s behind drew hundreds of 429s, 30 s ahead took 4.7x as long.
    Undated, every reset is more than a window off our clock: each means one window."""
    level = WindowedServer(Pacer(wall_clock=wall()), limit=50, start=now() - 0.3, dated=dated)
    throttled, took = await run_against(level, 300)
    await asyncio.sleep(20)
    skewed = WindowedServer(
        Pacer(wall_clock=wall()), limit=50, start=now() - 0.3, skew=skew, dated=dated
    )
    skewed_throttled, skewed_took = await run_against(skewed, 300)
    assert throttled == 0 and skewed_throttled == 0
    assert skewed_took <= took + 10


def most_in_any_window(times: list[float], length: float = 10.0) -> int:
    """The most requests any half-open span ``[t, t + length)`` holds (LaunchDarkly's windows
    are half-open; the busiest span starts at some request)."""
    return max(sum(1 for u in times if t <= u < t + length) for t in times)


# aiolimiter keeps its level as a float. A fake clock moves only when the loop sleeps, so a
# rounding residue of 1e-16 in that level would leave its wake-up timer due "now" forever
# (a real clock moves on by itself). Ticks of a binary fraction of a second keep the
# bucket's arithmetic exact.
EXACT_TICKS = pytest.mark.looptime(resolution=2**-20)


@EXACT_TICKS
async def test_user_ceiling_holds_in_every_sliding_window_from_the_start() -> None:
    pacer = heard(Pacer(max_per_window=50, wall_clock=wall()))
    start = now()
    sent: list[float] = []

    async def worker() -> None:
        while now() < start + 30:
            await pacer.acquire(ROUTE)
            sent.append(now() - start)

    # Many concurrent workers, as in a run: the ceiling is the pacer's, not the caller's.
    await asyncio.gather(*(worker() for _ in range(20)))
    assert most_in_any_window(sent) <= 50
    assert sum(1 for t in sent if t < 1) <= 6  # spread out: no burst of 50 at the start
    assert len([t for t in sent if t < 30]) >= 145  # and still close to the ceiling


@EXACT_TICKS
async def test_user_ceiling_spaces_requests_evenly() -> None:
    pacer = heard(Pacer(max_per_window=5, wall_clock=wall()))
    start = now()
    times = await acquire_times(pacer, 6)
    assert [round(t - start, 6) for t in times] == [0, 2, 4, 6, 8, 10]


async def test_pause_listener_hears_when_the_gate_reopens() -> None:
    heard: list[float] = []
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    pacer.on_pause(heard.append)
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=4))
    assert heard == [pytest.approx(EPOCH + now() + 4)]
    assert pacer.paused_until_epoch == pytest.approx(EPOCH + now() + 4)


async def test_every_pause_listener_hears_until_it_unsubscribes() -> None:
    first: list[float] = []
    second: list[float] = []
    pacer = Pacer(wall_clock=wall(), jitter_s=0.0)
    unsubscribe_first = pacer.on_pause(first.append)
    pacer.on_pause(second.append)
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=4))
    unsubscribe_first()
    unsubscribe_first()  # a second time is harmless
    pacer.observe(ROUTE, 429, RateLimitState(retry_after_s=8))
    assert first == [pytest.approx(EPOCH + now() + 4)]
    assert second == [pytest.approx(EPOCH + now() + 4), pytest.approx(EPOCH + now() + 8)]


def test_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_per_window"):
        Pacer(max_per_window=0)


async def test_window_length_is_learned_from_successive_resets() -> None:
    """Windows shorter than LaunchDarkly's 10 s (a sandbox's) are followed, not waited out."""
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(ROUTE, 201, Limits(route_limit=3, route_remaining=0, reset_ms=reset_in(2)))
    first = await acquire_times(pacer, 3, answered=True)
    assert all(start + 2 <= t < start + 2.5 for t in first)
    pacer.observe(ROUTE, 201, Limits(route_limit=3, route_remaining=0, reset_ms=reset_in(2)))
    (fourth,) = await acquire_times(pacer, 1)
    assert start + 4 <= fourth < start + 5


async def test_the_budget_per_second_follows_the_learned_window_length() -> None:
    """What the progress bar's ETA reads: limit over the window's length, 10 s until the
    resets show another (a sandbox's 2-s windows make 3 per window 1.5 a second, not 0.3)."""
    pacer = Pacer(wall_clock=wall())
    assert pacer.budget_per_s(ROUTE) is None
    pacer.observe(ROUTE, 201, Limits(route_limit=3, route_remaining=2, reset_ms=reset_in(2)))
    assert pacer.budget_per_s(ROUTE) == pytest.approx(0.3)
    await asyncio.sleep(2.1)
    pacer.observe(ROUTE, 201, Limits(route_limit=3, route_remaining=2, reset_ms=reset_in(1.9)))
    assert pacer.budget_per_s(ROUTE) == pytest.approx(1.5)
    # The tightest of the known budgets: an account-wide limit of 2 per 10 s.
    pacer.observe(ROUTE, 201, Limits(global_limit=2, global_remaining=1, reset_ms=reset_in(1.9)))
    assert pacer.budget_per_s(ROUTE) == pytest.approx(0.2)


async def test_a_late_answer_from_an_earlier_window_is_ignored() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(ROUTE, 201, Limits(route_limit=5, route_remaining=5, reset_ms=reset_in(10)))
    pacer.observe(ROUTE, 201, Limits(route_limit=5, route_remaining=0, reset_ms=reset_in(-1)))
    await pacer.acquire(ROUTE)
    assert now() == start


async def test_the_request_sent_before_the_first_answer_counts_against_the_first_window() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    first = await pacer.acquire(ROUTE)  # slow start: alone in flight, nothing known
    # Its answer: the server counted it, nine left in this window.
    pacer.observe(
        ROUTE, 201, Limits(route_limit=10, route_remaining=9, reset_ms=reset_in(10)), first
    )
    times = await acquire_times(pacer, 10)
    assert times[:9] == [start] * 9
    assert times[9] >= start + 10


async def test_waiting_for_a_spent_budget_is_a_pause_too() -> None:
    heard: list[float] = []
    pacer = Pacer(wall_clock=wall())
    pacer.on_pause(heard.append)
    pacer.observe(ROUTE, 201, Limits(route_limit=5, route_remaining=0, reset_ms=reset_in(4)))
    await pacer.acquire(ROUTE)
    assert heard == [pytest.approx(EPOCH + 4 + RESET_MARGIN_S, abs=0.01)]
    assert pacer.stats.paused_s == pytest.approx(4 + RESET_MARGIN_S, abs=0.01)
    assert pacer.stats.throttled == 0


@EXACT_TICKS
async def test_a_stop_ends_the_wait_for_the_users_ceiling_at_once() -> None:
    pacer = Pacer(max_per_window=4, wall_clock=wall())  # one request every 2.5 s
    stop = asyncio.Event()
    start = now()

    async def one() -> str:
        try:
            await pacer.acquire(ROUTE, stop=stop)
        except Stopped:
            return "stopped"
        return "sent"

    waiting = [asyncio.ensure_future(one()) for _ in range(4)]
    await asyncio.sleep(0.3)
    stop.set()
    outcomes = await asyncio.gather(*waiting)
    assert outcomes == ["sent", "stopped", "stopped", "stopped"]
    assert now() - start < 1.0  # fake clock: the stop did not wait for the next turn


async def test_an_answer_settles_its_own_request_and_a_lost_one_is_forgotten() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(ROUTE, 201, Limits(route_limit=3, route_remaining=3, reset_ms=reset_in(10)))
    first, second, _third = [await pacer.acquire(ROUTE) for _ in range(3)]
    # The server counted all three; one answer comes back and one is lost on the way.
    pacer.observe(
        ROUTE, 201, Limits(route_limit=3, route_remaining=1, reset_ms=reset_in(10)), first
    )
    pacer.forget(second)
    times = await acquire_times(pacer, 1)
    assert times[0] >= start + 10  # one still in flight, and the server's word says one left


async def test_a_run_shares_the_window_once_someone_else_spends_it() -> None:
    pacer = Pacer(wall_clock=wall())
    start = now()
    pacer.observe(ROUTE, 201, Limits(route_limit=10, route_remaining=10, reset_ms=reset_in(10)))
    ticket = await pacer.acquire(ROUTE)
    # One of ours, and five of someone else's.
    pacer.observe(
        ROUTE, 201, Limits(route_limit=10, route_remaining=4, reset_ms=reset_in(10)), ticket
    )
    times = await acquire_times(pacer, 2)
    # The four left spread evenly up to half a second before the reset (with the pacer's
    # margin after it), not sent at once: a fifth of that time apart.
    gap = (10 + RESET_MARGIN_S - 0.5) / 5
    assert times == [pytest.approx(start + gap, abs=0.05), pytest.approx(start + 2 * gap, abs=0.1)]


async def test_requests_that_land_in_the_next_window_leave_it_no_429() -> None:
    """Started 9.7 s into a window, at 400 ms: the first answer comes after the reset, and
    what it allows is sent at once but lands in the next window. Counted only against the
    window they were sent in, they left the next one open to a second burst (14 429s)."""
    pacer = Pacer(wall_clock=wall())
    server = WindowedServer(pacer, limit=50, start=now() - 9.7)
    work = list(range(200))

    async def worker() -> list[int]:
        statuses = []
        while work:
            work.pop()
            statuses.append(await server.round_trip(0.4))
        return statuses

    statuses = [s for each in await asyncio.gather(*(worker() for _ in range(64))) for s in each]
    assert len(statuses) == 200 and statuses.count(429) == 0


async def test_a_turn_granted_as_the_run_stops_is_not_taken() -> None:
    pacer = Pacer(wall_clock=wall())
    stop = asyncio.Event()
    probe = await pacer.acquire(ROUTE)  # slow start: the next one waits for its answer
    waiting = asyncio.ensure_future(pacer.acquire(ROUTE, stop=stop))
    await asyncio.sleep(1)
    pacer.observe(ROUTE, 201, Limits(), probe)  # grants the waiting one...
    stop.set()  # ...as the run is told to stop, before it could go
    with pytest.raises(Stopped):
        await waiting
    assert pacer.stats.requests == 1
