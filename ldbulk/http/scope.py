"""What a group of requests (one run) shares apart from the client: a stop signal and counts.

A :class:`~ldbulk.http.client.Client` is meant to be shared, so its own counters mix every run that
uses it. A run passes a :class:`RequestScope` with each request instead; the client counts the
request there too, and a request still waiting for its turn when the scope is stopped is never
sent (:class:`~ldbulk.errors.Stopped`).
"""

from __future__ import annotations

import asyncio

import attrs


@attrs.frozen(kw_only=True)
class RunStats:
    """What a run cost: requests sent, 429s received, retries, wall and paused seconds."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    paused_s: float = 0.0


@attrs.define
class Meter:
    """Requests, 429s, retries, and seconds during which some request waited on the pacer.

    Paused time is the union of the waits, not their sum: eight requests held for the same
    five seconds are five seconds paused, so it can never exceed the wall time it covers.
    """

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    paused_s: float = 0.0
    _waiting: int = 0
    _waiting_since: float = 0.0

    def wait_begins(self, now: float) -> None:
        """A request starts waiting for the pacer."""
        if self._waiting == 0:
            self._waiting_since = now
        self._waiting += 1

    def wait_ends(self, now: float) -> None:
        """A request stops waiting (sent, or given up)."""
        self._waiting -= 1
        if self._waiting == 0:
            self.paused_s += now - self._waiting_since

    def run_stats(self, *, elapsed_s: float) -> RunStats:
        """These counts as a report's stats."""
        return RunStats(
            requests=self.requests,
            throttled=self.throttled,
            retries=self.retries,
            elapsed_s=elapsed_s,
            paused_s=min(self.paused_s, elapsed_s),
        )


@attrs.define
class RequestScope:
    """The requests of one run: their own counts, and the signal that stops them."""

    stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    meter: Meter = attrs.field(factory=Meter)

    @property
    def stopped(self) -> bool:
        """Whether the run was told to stop."""
        return self.stop.is_set()
