"""What requests cost, counted once: one :class:`Meter` type for the pacer, a client and a run,
each read as a frozen snapshot (:class:`ClientStats`, or a run's :class:`RunStats`).

A request is counted where it happens, in every meter it belongs to at once: the pacer counts
its turn and its 429 into its own meter and the request's (the client's, the run's), and a
retry is counted by the retry loop, so no two counters of the same fact can drift apart.
"""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class _Counts:
    """The counts every snapshot of a meter holds."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0


@attrs.frozen(kw_only=True)
class ClientStats(_Counts):
    """Counts of a meter at one moment: requests sent, 429s, retries, seconds paused."""

    paused_s: float = 0.0


@attrs.frozen(kw_only=True)
class RunStats(_Counts):
    """What a run cost: requests sent, 429s received, retries, wall and paused seconds."""

    # In this order: a report's JSON lists them so.
    elapsed_s: float = 0.0
    paused_s: float = 0.0


@attrs.define
class Meter:
    """Requests, 429s, retries, and seconds paused.

    For a client or a run, paused time is the union of its requests' waits for the pacer, not
    their sum: eight requests held for the same five seconds are five seconds paused, so it
    can never exceed the wall time it covers. The pacer's own meter counts instead the seconds
    it held requests back (a 429's gate, a spent budget), whoever waited.
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

    def snapshot(self) -> ClientStats:
        """These counts, frozen."""
        return ClientStats(
            requests=self.requests,
            throttled=self.throttled,
            retries=self.retries,
            paused_s=self.paused_s,
        )

    def run_stats(self, *, elapsed_s: float) -> RunStats:
        """These counts as a report's stats."""
        return RunStats(
            requests=self.requests,
            throttled=self.throttled,
            retries=self.retries,
            elapsed_s=elapsed_s,
            paused_s=min(self.paused_s, elapsed_s),
        )

