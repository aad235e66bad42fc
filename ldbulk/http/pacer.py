"""The pacer: every request of a client waits here for its turn under LaunchDarkly's limits.

It learns the global, route and token budgets from every response's headers
(:mod:`ldbulk.api.limits`) and holds new requests back once a window is spent, so a steady run
gets no 429 after the first response; when a 429 comes anyway, every request waits behind one
gate. Until a first answer has spoken for a budget (a new route, a resumed run in a window
someone already spent), one request goes alone and the rest wait for its answer: a round trip,
not a burst of 429s.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
from aiolimiter import AsyncLimiter

from ldbulk.api.limits import WINDOW_S, RateLimitState
from ldbulk.errors import Stopped
from ldbulk.http.budget import Budgets, Ticket
from ldbulk.http.clock import ServerClock
from ldbulk.http.meter import ClientStats, Meter

__all__ = ["Pacer", "Ticket", "WaitTally", "tallying_waits"]

# How much each answer moves the smoothed round trip.
ROUND_TRIP_WEIGHT: Final = 0.2


@attrs.define
class WaitTally:
    """Seconds the requests of one piece of work (a target) waited for their turn; as a
    context manager, the tally of the requests made within the block, in this task."""

    seconds: float = 0.0
    _token: contextvars.Token[WaitTally | None] | None = attrs.field(
        default=None, init=False, repr=False
    )

    # By hand, not with contextlib: one is entered for every target of a run.
    def __enter__(self) -> WaitTally:
        self._token = _tally.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _tally.reset(self._token)
            self._token = None


_tally: contextvars.ContextVar[WaitTally | None] = contextvars.ContextVar(
    "ldbulk_pacer_tally", default=None
)


def tallying_waits() -> WaitTally:
    """Add up how long every request made within the block (in this task) waited for the
    pacer, so a target's time can be told apart from its time in the queue."""
    return WaitTally()


async def _done_unless_stopped(waited: asyncio.Future[Any], stop: asyncio.Event) -> bool:
    """Wait for ``waited`` (left as it is to the caller) or the stop, whichever comes first;
    whether ``waited`` is done."""
    async with asyncio.TaskGroup() as group:
        stopped = group.create_task(stop.wait())
        try:
            await asyncio.wait({waited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
    return waited.done()


async def _unless_stopped(waited: asyncio.Future[Any], stop: asyncio.Event) -> None:
    """Wait for ``waited`` (left as it is to the caller); raise :class:`Stopped` if the run
    stops first."""
    if not await _done_unless_stopped(waited, stop):
        raise Stopped("not sent: the run was stopped")


async def _bucket_turn(bucket: AsyncLimiter, stop: asyncio.Event | None) -> None:
    """Take a turn from the user's ceiling, unless the run is stopped while waiting for it: a
    low ``--max-rate`` spaces requests seconds apart, and a stop must not wait that out."""
    if stop is None or bucket.has_capacity():
        await bucket.acquire()
        return
    async with asyncio.TaskGroup() as group:
        turn = group.create_task(bucket.acquire())
        try:
            taken = await _done_unless_stopped(turn, stop)
        finally:
            turn.cancel()  # no turn taken after the stop (nor after a cancel)
    if not taken:
        raise Stopped("not sent: the run was stopped")


class _Pauses:
    """When the pacer holds requests, for any reason (a 429, a spent budget): each stretch
    counted once, and told to whoever listens."""

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        self._wall_clock = wall_clock
        self._until = 0.0  # loop time
        # Replaced, never changed in place, so a listener may unsubscribe while being told.
        self._listeners: tuple[Callable[[float], None], ...] = ()

    def listen(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Tell ``listener`` the epoch time of every longer hold; returns its unsubscribe."""
        self._listeners += (listener,)

        def unsubscribe() -> None:
            listeners = list(self._listeners)
            if listener in listeners:
                listeners.remove(listener)
                self._listeners = tuple(listeners)

        return unsubscribe

    def until_epoch(self, now: float) -> float | None:
        """Epoch seconds until which requests are held, or None."""
        if self._until <= now:
            return None
        return self._wall_clock() + (self._until - now)

    def hold(self, until: float, now: float) -> float:
        """Requests wait until ``until``: tell the listeners if that is longer than before;
        the seconds of pause this adds."""
        if until <= self._until:
            return 0.0
        added = until - max(self._until, now)
        self._until = until
        epoch = self._wall_clock() + (until - now)
        for listener in self._listeners:
            listener(epoch)
        return added


class _RoundTrips:
    """The round trip of a client's requests, as their answers show it: smoothed over the
    last several, so one slow answer does not move it much."""

    def __init__(self) -> None:
        # When each request in flight went, by its ticket's identity (every grant makes a
        # ticket of its own, held by the caller until the answer).
        self._sent_at: dict[int, float] = {}
        self.seconds: float | None = None

    def sent(self, ticket: Ticket, now: float) -> None:
        """The request ``ticket`` was given for goes ``now``."""
        self._sent_at[id(ticket)] = now

    def lost(self, ticket: Ticket) -> None:
        """It got no answer: it tells nothing of the round trip."""
        self._sent_at.pop(id(ticket), None)

    def answered(self, ticket: Ticket, now: float) -> None:
        """It was answered ``now``: one more round trip to take in."""
        sent = self._sent_at.pop(id(ticket), None)
        if sent is None:
            return
        took, last = now - sent, self.seconds
        self.seconds = took if last is None else last + ROUND_TRIP_WEIGHT * (took - last)


def _ceiling(max_per_window: float | None) -> AsyncLimiter | None:
    """The bucket of a user's ceiling of ``max_per_window`` requests per window, if any."""
    if max_per_window is not None and max_per_window <= 0:
        raise ValueError("max_per_window must be positive")
    # One request every WINDOW_S / max_per_window seconds: a bucket that holds a single
    # request. aiolimiter's AsyncLimiter(N, 10) starts empty and admits N at once, then
    # leaks N more over the next 10 s, so up to 2N land in the first window. Capacity 1
    # means no burst at all, and any 10-second span (half-open, like LaunchDarkly's
    # windows) holds at most N requests.
    return AsyncLimiter(1, WINDOW_S / max_per_window) if max_per_window else None


@functools.cache
def _budget_keys(route: str) -> tuple[str, str, str]:
    """The budgets a request on ``route`` counts against: made once for each route, as every
    request names them."""
    return ("global", "token", route)


class Pacer:
    """Paces every request of one client: a token bucket, learned budgets, and a shared gate.

    - ``max_per_window``: an optional user ceiling, requests per 10 s, spread evenly over the
      window (aiolimiter's bucket, one request deep).
    - Every response's headers update the budgets of the global, route and token windows; a
      request that would overdraw a known budget waits for that window's reset.
    - A 429 closes the gate for every request until the server's stated time, plus jitter.

    Times are event-loop times (``loop.time()``), so tests can fast-forward them; epoch times
    from headers are on the server's clock, read with ``wall_clock`` and the offset the
    answers' ``Date`` showed (:class:`~ldbulk.http.clock.ServerClock`).
    """

    def __init__(
        self,
        *,
        max_per_window: float | None = None,
        wall_clock: Callable[[], float] = time.time,
        jitter_s: float = 0.25,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._bucket = _ceiling(max_per_window)
        self._wall_clock = wall_clock
        self._server_clock = ServerClock()
        self._jitter_s = jitter_s
        self._rand = rand
        self._budgets = Budgets()
        self._gate_until = 0.0
        self._pauses = _Pauses(wall_clock)
        # Requests waiting for their turn, by the budgets they need, each in the order it
        # came; and the timer that grants the next one when its turn is due.
        self._waiting: dict[tuple[str, ...], collections.deque[asyncio.Future[Ticket]]] = {}
        self._wakeup: asyncio.TimerHandle | None = None
        # Its own counts: requests granted, 429s seen, seconds it held requests back.
        self._meter = Meter()
        self._round_trips = _RoundTrips()

    @property
    def stats(self) -> ClientStats:
        """What the pacer saw over its life: requests it let go, 429s, seconds it held
        requests back (a client's own counts, retries too, are in its ``stats``)."""
        return self._meter.snapshot()

    def on_pause(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener`` whenever requests start being held longer (a 429, a spent budget)
        with the epoch time until which they are held; returns the function that unsubscribes
        it. Any number may listen (a progress bar, a log, the caller's own)."""
        return self._pauses.listen(listener)

    @property
    def paused_until_epoch(self) -> float | None:
        """Epoch seconds until which requests are held (429 or spent budget), or None."""
        return self._pauses.until_epoch(asyncio.get_running_loop().time())

    def budget_per_s(self, route: str) -> float | None:
        """See :meth:`~ldbulk.http.budget.Budgets.per_s`."""
        return self._budgets.per_s(route)

    async def acquire(
        self, route: str, *, stop: asyncio.Event | None = None, meters: Sequence[Meter] = ()
    ) -> Ticket:
        """Wait until a request on ``route`` may be sent, and count it against the budgets.

        Returns the request's :data:`Ticket`: hand it to :meth:`observe` with the answer, or
        to :meth:`forget` when none came, so the budgets know what is still in flight.
        A ``stop`` set before its turn raises :class:`Stopped` at once, however long the wait
        would have been. The request and its wait count in :attr:`stats` and ``meters``.
        """
        if stop is not None and stop.is_set():
            raise Stopped("not sent: the run was stopped")
        loop = asyncio.get_running_loop()
        keys = _budget_keys(route)
        now = loop.time()
        # The common case, without a wait (nor the coroutines a wait takes): nobody queued on
        # these budgets, they let it go now, and no user ceiling spaces it. A wait of none
        # adds nothing to any meter or tally.
        ticket = self._granted_now(keys, now)
        if ticket is None or self._bucket is not None:
            ticket = await self._waited_for(keys, ticket, stop, loop, meters)
            now = loop.time()
        for meter in (self._meter, *meters):
            meter.requests += 1
        self._round_trips.sent(ticket, now)
        return ticket

    async def _waited_for(
        self,
        keys: tuple[str, ...],
        granted: Ticket | None,
        stop: asyncio.Event | None,
        loop: asyncio.AbstractEventLoop,
        meters: Sequence[Meter],
    ) -> Ticket:
        """:meth:`acquire`'s turn when it has to wait (for the budgets, unless ``granted``
        already, then for the user's ceiling), the wait counted in ``meters`` and in the task's
        tally."""
        tally = _tally.get()
        started = loop.time()
        for meter in meters:
            meter.wait_begins(started)
        try:
            ticket = granted if granted is not None else await self._queued(keys, stop, loop)
            try:
                if self._bucket is not None:
                    # After the grant, not before: requests that took their turns from the
                    # bucket while a 429 or a spent budget held them would go out together
                    # when it ends.
                    await _bucket_turn(self._bucket, stop)
                if stop is not None and stop.is_set():
                    raise Stopped("not sent: the run was stopped")
            except BaseException:
                self._ungrant(ticket)
                raise
            return ticket
        finally:
            now = loop.time()
            for meter in meters:
                meter.wait_ends(now)
            if tally is not None:
                tally.seconds += now - started

    def _granted_now(self, keys: tuple[str, ...], now: float) -> Ticket | None:
        """This request's turn if it is now: nobody waits on its budgets and they allow it."""
        if keys in self._waiting:
            return None
        held, turn = self._turn(keys, now)
        return self._budgets.count(keys, now) if max(held, turn) <= now else None

    async def _queued(
        self, keys: tuple[str, ...], stop: asyncio.Event | None, loop: asyncio.AbstractEventLoop
    ) -> Ticket:
        """This request's turn when it is not now: in the queue on its budgets, granted by the
        pump."""
        waiter: asyncio.Future[Ticket] = loop.create_future()
        self._waiting.setdefault(keys, collections.deque()).append(waiter)
        self._pump()
        try:
            await (waiter if stop is None else _unless_stopped(waiter, stop))
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._ungrant(waiter.result())
            waiter.cancel()
            raise
        return waiter.result()

    def _ungrant(self, ticket: Ticket) -> None:
        """A request was granted its turn but will not be sent (stopped, cancelled)."""
        self._budgets.settle(ticket, counted=False)
        self._pump()

    def _pump(self, due: float = -math.inf) -> None:
        """Grant every waiting request whose turn has come, in the order they came on each set
        of budgets, and wake again when the next one's turn is due.

        The waiting requests are granted here, not each woken to look for itself: with
        hundreds waiting on one budget, every answer would otherwise wake all of them.
        """
        if not self._waiting and self._wakeup is None:
            return  # nothing waits, and no timer is set: the common case after every answer
        loop = asyncio.get_running_loop()
        # Woken by its timer, it is at least the time the timer was set for: an event loop
        # runs a timer up to its clock's resolution early (a fast-forwarded test clock may not
        # move at all while a timer is ready), and a pump that found its turn still ahead
        # would set the same timer again, and again.
        now = max(loop.time(), due)
        wake = math.inf
        for keys, queue in list(self._waiting.items()):
            while queue:
                waiter = queue[0]
                if waiter.done():  # stopped or cancelled while waiting
                    queue.popleft()
                    continue
                held, turn = self._turn(keys, now, len(queue))
                if max(held, turn) > now:
                    if held > now:
                        # Only a closed gate or a spent budget is a pause; spacing is not.
                        self._hold(held, now)
                    wake = min(wake, max(held, turn))
                    break
                queue.popleft()
                waiter.set_result(self._budgets.count(keys, now))
            if not queue:
                del self._waiting[keys]
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        if wake < math.inf:
            self._wakeup = loop.call_at(wake, self._pump, wake)

    def _turn(self, keys: tuple[str, ...], now: float, waiting: int = 1) -> tuple[float, float]:
        """Until when requests on ``keys`` are held (a closed gate, a spent budget), and the
        earliest time this one may go besides (slow start, spreading a shared budget), with
        ``waiting`` requests (this one among them) queued for the same budgets."""
        held, turn = self._budgets.turn(keys, now, waiting)
        return max(held, self._gate_until), turn

    def forget(self, ticket: Ticket) -> None:
        """A request got no answer (a transport failure): stop counting it as in flight."""
        self._round_trips.lost(ticket)
        self._budgets.settle(ticket, counted=True)
        self._pump()

    def observe(
        self,
        route: str,
        status: int,
        state: RateLimitState,
        ticket: Ticket | None = None,
        *,
        meters: Sequence[Meter] = (),
    ) -> None:
        """Learn from one response: its budgets, and on a 429, close the gate (the 429
        counted in :attr:`stats` and in each of ``meters``).

        ``ticket`` is what :meth:`acquire` returned for the request; without it the answer is
        taken for one of the requests sent before any budget was known.
        """
        loop_now = asyncio.get_running_loop().time()
        keys = _budget_keys(route)
        budgets = self._budgets
        if ticket is not None:
            budgets.settle(ticket, counted=status != 429)
            self._round_trips.answered(ticket, loop_now)
        # The resets are on the server's clock: read them against it, not ours.
        wall_now = self._wall_clock()
        self._server_clock.observe(state.date, wall_now)
        server_now = self._server_clock.now(wall_now)
        budgets.hear(route, state, server_now, loop_now, known=ticket is not None)
        if status == 429:
            for meter in (self._meter, *meters):
                meter.throttled += 1
            window = budgets.window_s(keys)
            resume = loop_now + (state.resume_at(server_now, window=window) - server_now)
            self._close_gate(resume + self._jitter_s * self._rand(), loop_now)
        self._pump()

    def in_flight_bound(self, routes: Sequence[str], ceiling: int) -> int:
        """Requests worth having in flight at once on any of ``routes``, at most ``ceiling``
        (the user's ``--concurrency``), at the round trip the answers showed (smoothed over
        the last several): see :meth:`~ldbulk.http.budget.Budgets.in_flight_bound`."""
        return self._budgets.in_flight_bound(routes, self._round_trips.seconds, ceiling)

    def _close_gate(self, until: float, now: float) -> None:
        if until > self._gate_until:
            self._gate_until = until
            self._hold(until, now)

    def _hold(self, until: float, now: float) -> None:
        self._meter.paused_s += self._pauses.hold(until, now)
