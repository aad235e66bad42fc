"""The server's clock as seen from ours, learned from the ``Date`` of its answers.

LaunchDarkly's ``X-Ratelimit-Reset`` is an epoch time on the server's clock
(https://launchdarkly.com/docs/api#rate-limiting). Read with our own clock, a server 30 s
behind ours seems to announce resets that have already passed (a burst of 429s), and one 30 s
ahead seems to hold every window for 40 s. So the pacer reads resets against the server's
clock, and this module keeps the estimate of how far it is from ours.

Each answer's ``Date`` (whole seconds, RFC 9110, 6.6.1) was written while the request was at
the server, so before we received it: ``date - received`` is a *lower bound* of the offset
(server minus ours), short of it by the fraction of a second ``Date`` drops plus the answer's
way back. Answers made at every fraction of a second tighten it, so the estimate is the
highest recent bound, which approaches the offset from below: a server clock read slightly
early makes a reset look slightly later, and the pacer waits a little longer, never shorter.
A bound counts only when another answer's confirms it (lies within a second and a half below
it), so one answer with a broken ``Date`` moves nothing (once a second answer has come); old
ones age out, so a clock that was stepped is followed within a few dozen answers. With no
``Date`` yet, the offset is 0: our own clock.

:func:`window_end` then places one answer's reset in the pacer's (event-loop) time. Pure
bookkeeping on given numbers, tested without a loop.
"""

from __future__ import annotations

import collections
import itertools
from typing import Final, NamedTuple

import attrs

from ldbulk.api.limits import DATE_RESOLUTION_S, RESET_MARGIN_S, WINDOW_S, reset_in

# How many recent answers the estimate rests on: at LaunchDarkly's pace a few seconds' worth,
# so a stepped clock is followed soon, while enough to cover every fraction of a second.
SAMPLES: Final = 32

# Two bounds this close read the same clock: the spread of sound ones is the second Date drops,
# plus the answers' way back. A bound no other comes this close to is a broken Date's.
AGREEMENT_S: Final = DATE_RESOLUTION_S + 0.5


@attrs.define
class ServerClock:
    """How far the server's clock is ahead of ours (negative: behind), from answers' ``Date``."""

    _bounds: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=SAMPLES), init=False
    )

    def observe(self, date: float | None, received: float) -> None:
        """Take in one answer: its ``Date`` (epoch seconds, or None) and our epoch time when
        it came."""
        if date is not None:
            self._bounds.append(date - received)

    @property
    def offset(self) -> float:
        """Seconds to add to our clock to read the server's (0 while no answer had a Date)."""
        if not self._bounds:
            return 0.0
        ordered = sorted(self._bounds, reverse=True)
        # The highest bound another answer confirms (the next one lies close below it). A late
        # answer's bound is merely loose, and low: it never holds the estimate back.
        for high, lower in itertools.pairwise(ordered):
            if high - lower <= AGREEMENT_S:
                return high
        return ordered[0]

    def now(self, ours: float) -> float:
        """The server's epoch time when ours is ``ours``."""
        return ours + self.offset


class WindowEnd(NamedTuple):
    """When a budget's window ends: ``at`` in loop time, and ``said``, the reset as the server
    named it (epoch seconds on its clock), by which windows are told apart."""

    at: float
    said: float


def window_end(
    reset_ms: int | None,
    date: float | None,
    server_now: float,
    loop_now: float,
    *,
    window: float | None = None,
) -> WindowEnd:
    """When the window an answer names ends, for an answer with ``reset_ms`` and ``date``
    taken in when the server's clock read ``server_now`` and the loop's ``loop_now``.

    A reset that cannot be right (:func:`~ldbulk.api.limits.reset_in`) means one window from
    now (``window``, the length the resets showed, else 10 s); no reset at all, too. A reset
    read as already past ends now (a late answer's: ``said`` tells the budget it names an
    earlier window), and a future one is waited for a little beyond, as our reading of the
    server's clock may still be a little off. ``said`` is the server's reset whenever there is
    one, right or not: its windows keep their names however we read its clock.
    """
    length = WINDOW_S if window is None else window
    if reset_ms is None:
        return WindowEnd(loop_now + length, server_now + length)
    said = reset_ms / 1000
    ahead = reset_in(reset_ms, now=server_now, date=date, window=window)
    if ahead is None:
        return WindowEnd(loop_now + length, said)
    return WindowEnd(loop_now + max(ahead, 0.0) + RESET_MARGIN_S, said)
