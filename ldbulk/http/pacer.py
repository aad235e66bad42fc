"""The pacer: every request of a client waits here for its turn under LaunchDarkly's limits.

It learns the global, route and token budgets from every response's headers
(:mod:`ldbulk.api.limits`) and holds new requests back once a window is spent, so a steady run
gets no 429 after the first response; when a 429 comes anyway, every request waits behind one
gate.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Final

import attrs
from aiolimiter import AsyncLimiter

from ldbulk.api.limits import MAX_WAIT_S, RESET_MARGIN_S, WINDOW_S, RateLimitState
from ldbulk.errors import Stopped


async def _first_of(news: asyncio.Event, stop: asyncio.Event | None, *, seconds: float) -> None:
    """Wait until a budget changes, the run is stopped, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (news, stop) if event is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        # Reap them, so no waiter of a finished request lingers as a pending task.
        await asyncio.gather(*waiters, return_exceptions=True)


async def _bucket_turn(bucket: AsyncLimiter, stop: asyncio.Event | None) -> None:
    """Take a turn from the user's ceiling, unless the run is stopped while waiting for it: a
    low ``--max-rate`` spaces requests seconds apart, and a stop must not wait that out."""
    if stop is None or bucket.has_capacity():
        await bucket.acquire()
        return
    turn = asyncio.ensure_future(bucket.acquire())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (turn, stopped):
            waiter.cancel()
        await asyncio.gather(turn, stopped, return_exceptions=True)
    if turn.cancelled():
        raise Stopped("not sent: the run was stopped")


# Two resets closer than this name the same window (the conversion to loop time jitters).
_SAME_WINDOW_S: Final = 0.05


@attrs.define
class _Window:
    """A budget learned from headers: requests left in the current window.

    ``server_reset`` is the last reset the server announced; ``reset`` is when we expect the
    current window to end, which runs ahead of ``server_reset`` once we have rolled over to
    the next window on our own (``projected``) and before the server has confirmed it.
    """

    remaining: int
    limit: int | None
    reset: float
    server_reset: float
    length: float = WINDOW_S
    projected: bool = False

    def roll_over(self, now: float) -> None:
        """Our clock passed the reset: start the next window with the full limit."""
        assert self.limit is not None
        self.remaining = self.limit
        self.reset += self.length * (1 + (now - self.reset) // self.length)
        self.projected = True

    def learn(self, remaining: int, limit: int | None, reset: float) -> None:
        """Take in one response's word on this window."""
        if limit is not None:
            self.limit = limit
        if reset < self.server_reset - _SAME_WINDOW_S:
            return  # an answer from an earlier window, overtaken by newer ones
        if reset > self.server_reset + _SAME_WINDOW_S:
            # A later window. Its length is the step between resets (the smallest seen, as
            # idle windows make larger steps).
            self.length = min(self.length, reset - self.server_reset)
            if not self.projected:
                self.remaining = remaining
            self.server_reset = reset
        # Within one window the server's count includes other clients of the account, ours
        # includes requests still in flight: trust whichever is lower.
        self.remaining = min(self.remaining, remaining)
        self.reset = reset
        self.projected = False


@attrs.define
class PacerStats:
    """What the pacer saw over its life."""

    requests: int = 0
    throttled: int = 0
    paused_s: float = 0.0


class Pacer:
    """Paces every request of one client: a token bucket, learned budgets, and a shared gate.

    - ``max_per_window``: an optional user ceiling, requests per 10 s, spread evenly over the
      window (aiolimiter's bucket, one request deep).
    - Every response's headers update the budgets of the global, route and token windows; a
      request that would overdraw a known budget waits for that window's reset.
    - A 429 closes the gate for every request until the server's stated time, plus jitter.

    Times are event-loop times (``loop.time()``), so tests can fast-forward them; epoch times
    from headers are converted with ``wall_clock``.
    """

    def __init__(
        self,
        *,
        max_per_window: float | None = None,
        wall_clock: Callable[[], float] = time.time,
        jitter_s: float = 0.25,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if max_per_window is not None and max_per_window <= 0:
            raise ValueError("max_per_window must be positive")
        # One request every WINDOW_S / max_per_window seconds: a bucket that holds a single
        # request. aiolimiter's AsyncLimiter(N, 10) starts empty and admits N at once, then
        # leaks N more over the next 10 s, so up to 2N land in the first window. Capacity 1
        # means no burst at all, and any 10-second span (half-open, like LaunchDarkly's
        # windows) holds at most N requests.
        self._bucket = AsyncLimiter(1, WINDOW_S / max_per_window) if max_per_window else None
        self._wall_clock = wall_clock
        self._jitter_s = jitter_s
        self._rand = rand
        self._windows: dict[str, _Window] = {}
        # Requests sent on a key while no budget was known for it.
        self._unaccounted: dict[str, int] = {}
        self._gate_until = 0.0
        # Until when requests are being held, for any reason: a 429 or a spent budget.
        self._held_until = 0.0
        # Set (and replaced) whenever a response changes a budget, so waiting requests
        # recompute their wait instead of sleeping on an estimate that is out of date.
        self._news: asyncio.Event | None = None
        self.stats = PacerStats()
        # Replaced, never changed in place, so a listener may unsubscribe while being told.
        self._pause_listeners: tuple[Callable[[float], None], ...] = ()

    def on_pause(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener`` whenever requests start being held longer (a 429, a spent budget)
        with the epoch time until which they are held; returns the function that unsubscribes
        it. Any number may listen (a progress bar, a log, the caller's own)."""
        self._pause_listeners += (listener,)

        def unsubscribe() -> None:
            listeners = list(self._pause_listeners)
            if listener in listeners:
                listeners.remove(listener)
                self._pause_listeners = tuple(listeners)

        return unsubscribe

    @property
    def paused_until_epoch(self) -> float | None:
        """Epoch seconds until which requests are held (429 or spent budget), or None."""
        now = asyncio.get_running_loop().time()
        if self._held_until <= now:
            return None
        return self._wall_clock() + (self._held_until - now)

    async def acquire(self, route: str, *, stop: asyncio.Event | None = None) -> None:
        """Wait until a request on ``route`` may be sent, and count it against the budgets.

        When ``stop`` is set before the request's turn comes, raise :class:`Stopped` at once:
        a run that was told to stop must not send what is still waiting, however long the
        wait would have been.
        """
        loop = asyncio.get_running_loop()
        while True:
            if stop is not None and stop.is_set():
                raise Stopped("not sent: the run was stopped")
            now = loop.time()
            wait = self._gate_until - now
            for key in ("global", "token", route):
                window = self._windows.get(key)
                if window is None:
                    continue
                if now >= window.reset:
                    # A new window: its budget is the limit, when the server told us one.
                    # A limit of 0 would admit no request in any window, forever: a broken
                    # header, so forget the window rather than park every request on it.
                    if not window.limit:
                        del self._windows[key]
                        continue
                    window.roll_over(now)
                if window.remaining <= 0:
                    wait = max(wait, window.reset - now)
            if wait <= 0:
                break
            self._hold(now + wait, now)
            if self._news is None:
                self._news = asyncio.Event()
            await _first_of(self._news, stop, seconds=wait)
        if self._bucket is not None:
            await _bucket_turn(self._bucket, stop)
        if stop is not None and stop.is_set():
            raise Stopped("not sent: the run was stopped")
        for key in ("global", "token", route):
            window = self._windows.get(key)
            if window is not None:
                window.remaining -= 1
            else:
                self._unaccounted[key] = self._unaccounted.get(key, 0) + 1
        self.stats.requests += 1

    def observe(self, route: str, status: int, state: RateLimitState) -> None:
        """Learn from one response: its budgets, and on a 429, close the gate."""
        loop_now = asyncio.get_running_loop().time()
        wall_now = self._wall_clock()

        def to_loop(epoch_ms: int | None) -> float:
            if epoch_ms is None:
                return loop_now + WINDOW_S
            ahead = min(max(epoch_ms / 1000 - wall_now, 0.0), MAX_WAIT_S)
            return loop_now + ahead + RESET_MARGIN_S

        self._learn("global", state.global_remaining, state.global_limit, to_loop(state.reset_ms))
        self._learn(route, state.route_remaining, state.route_limit, to_loop(state.reset_ms))
        self._learn(
            "token", state.token_remaining, state.token_limit, to_loop(state.token_reset_ms)
        )
        if self._news is not None:
            self._news.set()
            self._news = None
        if status == 429:
            self.stats.throttled += 1
            resume = loop_now + (state.resume_at(wall_now) - wall_now)
            self._close_gate(resume + self._jitter_s * self._rand(), loop_now)

    def _learn(self, key: str, remaining: int | None, limit: int | None, reset: float) -> None:
        if remaining is None:
            return
        window = self._windows.get(key)
        if window is None:
            # Requests sent before any budget was known are still in flight, and the server
            # may not have counted them yet: count them now, or the first window overdraws.
            in_flight = max(self._unaccounted.pop(key, 0) - 1, 0)
            self._windows[key] = _Window(
                remaining=remaining - in_flight, limit=limit, reset=reset, server_reset=reset
            )
        else:
            window.learn(remaining, limit, reset)

    def _close_gate(self, until: float, now: float) -> None:
        if until > self._gate_until:
            self._gate_until = until
            self._hold(until, now)

    def _hold(self, until: float, now: float) -> None:
        """Requests wait until ``until``: count the pause once, and tell the listeners."""
        if until <= self._held_until:
            return
        self.stats.paused_s += until - max(self._held_until, now)
        self._held_until = until
        if self._pause_listeners:
            epoch = self._wall_clock() + (until - now)
            for listener in self._pause_listeners:
                listener(epoch)
