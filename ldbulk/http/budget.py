"""One budget of LaunchDarkly's (the account's, a route's or a token's) as a client models it.

Pure bookkeeping: every time is given in (event-loop seconds), nothing waits or sends, so the
model is tested with plain numbers. :class:`Budgets` keeps one per budget for the
:class:`~ldbulk.http.pacer.Pacer`, which does the waiting.

The budget belongs to the account, not to this client (https://launchdarkly.com/docs/api#rate-limiting:
"All service and personal access tokens on the account share this limit"). So:

- What is left is the server's word (the lowest ``Remaining`` it announced for the window, as
  counts only fall within a window) less our own requests it may not have counted yet (those
  still in flight). Where that word and our own count disagree, the word wins, either way.
- When the server's count falls faster than our own requests explain, someone else is spending
  the budget. From then on, and through the next window, the budget is *shared*: a new window
  does not hand us the whole limit; one request goes first and its answer tells what is really
  left, and that is spread over the rest of the window, our part of it only, rather than sent
  at once (which is how two runs that each assume the whole limit bounce half their requests).
- A budget nobody else touched for a whole window (nor before our first word in it) is ours
  again: a new window opens at the full limit and may be spent at once.
- Shared or alone, and our part, are decided at every window boundary from the window that
  ended, whether our clock passed the reset or an answer named the next window first: a run
  is not held to the part it had while others were there once they have gone.
- Our part of a shared window is spread only while more waits than it holds: a run's last
  requests go at once when they fit in what is left of the part the last window measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import attrs

from ldbulk.api.limits import WINDOW_S, RateLimitState
from ldbulk.http.clock import WindowEnd, window_end

# Two resets closer than this name the same window (a server may round its resets).
SAME_WINDOW_S: Final = 0.05
# A shared window's part is spread up to this long before the reset (half a second: the
# pacer's margin after the reset, and half a round trip of 800 ms), or this share of a window
# for short windows.
SPREAD_MARGIN_S: Final = 0.5
SPREAD_MARGIN_SHARE: Final = 0.05


@attrs.define
class Budget:
    """Requests left in one budget's current window, and when the next of ours may go.

    ``server_reset`` is the last reset the server announced, as it announced it (on its own
    clock: windows are told apart, and their length measured, in the server's own words, which
    do not move when our reading of its clock improves); ``reset`` is when we expect the
    current window to end (loop time), which runs ahead once we have rolled over to the next
    window on our own (``projected``) and before the server has confirmed it.
    ``generation`` numbers our windows, so an answer is matched to the window it was sent in.
    """

    server_left: int
    limit: int | None
    reset: float
    server_reset: float
    length: float = WINDOW_S
    projected: bool = False
    generation: int = 0
    # Ours sent in this generation and not answered yet: the server may not have counted them.
    in_flight: int = 0
    # Ours sent in the last generation and not answered yet: they may land in this window.
    carried: int = 0
    # Ours the server may have counted in the current window (for telling others' spending).
    ours: int = 0
    # The most requests others were seen to spend in the current window, beyond ``before``:
    # what was spent before our first word on it (by others, or by an earlier run of ours).
    others: int = 0
    before: int = 0
    # Others spent this budget in the current or the last window.
    shared: bool = False
    # Our part of what was spent in the last shared window (1: the budget was ours alone).
    share: float = 1.0
    last_sent: float = -math.inf

    @property
    def left(self) -> int:
        """Requests the server would still take in this window, as far as we can know."""
        return self.server_left - self.in_flight - self.carried

    def roll_over(self, now: float) -> None:
        """Our clock passed the reset: start the next window (the server has not spoken yet)."""
        assert self.limit is not None
        # Ours still unanswered were sent in the window that ended, but they may land in
        # this one: until their answers tell, they count against it (a request sent late in a
        # window arrives in the next, which would otherwise be overdrawn by every such one),
        # and they cannot show up as someone else's spending.
        # A request still unanswered a window later is not counted any longer.
        self._next_window(ours=self.in_flight)
        self.carried = self.in_flight
        self.in_flight = 0
        self.generation += 1
        self.server_left = self.limit
        self.reset += self.length * (1 + (now - self.reset) // self.length)
        self.projected = True

    def _next_window(self, *, ours: int) -> None:
        """A window ended, whether our clock or an answer's headers told: decide from that
        window alone whether the next is shared, and our part of it. Taken at every boundary,
        so a run that once met others is not held to that part after they have gone (nor to
        an old part when the others spend less), and ``ours`` of the new window are counted."""
        others = self.others + self.before
        self.shared = others > 0
        self.share = self.ours / (self.ours + others) if self.shared else 1.0
        self.ours = ours
        self.others = self.before = 0

    def sent(self, now: float) -> int:
        """Count one request of ours; the generation its answer must name."""
        self.in_flight += 1
        self.ours += 1
        self.last_sent = now
        return self.generation

    def answered(self, generation: int, *, counted: bool = True) -> None:
        """One request of ours, sent in ``generation``, got an answer (or never will).

        ``counted=False`` for a 429: the server did not count it, so it spent nothing.
        An answer to a request of an earlier window only stops it being in flight.
        """
        if generation == self.generation:
            self.in_flight = max(self.in_flight - 1, 0)
            if not counted:
                self.ours = max(self.ours - 1, 0)
        elif generation == self.generation - 1:
            self.carried = max(self.carried - 1, 0)

    def learn(
        self, remaining: int, limit: int | None, reset: float, said: float | None = None
    ) -> None:
        """Take in one response's word on this budget: the window ends at ``reset`` (loop
        time), which the server announced as ``said`` (its clock; by default ``reset``)."""
        said = reset if said is None else said
        if limit is not None:
            self.limit = limit
        if said < self.server_reset - SAME_WINDOW_S:
            return  # an answer from an earlier window, overtaken by newer ones
        if said > self.server_reset + SAME_WINDOW_S:
            # A later window. Its length is the step between resets (the smallest seen, as
            # idle windows make larger steps).
            self.length = min(self.length, said - self.server_reset)
            if not self.projected:
                # The server moved on before our clock did: whatever we sent may be counted
                # in this window (the answer just come, too), and what we saw of others
                # belongs to the last one.
                self._next_window(ours=self.in_flight + 1)
            self.server_reset = said
            self.server_left = remaining
            self.reset = reset
        elif self.projected:
            return  # a late answer from the window our clock has already left
        else:
            self.server_left = min(self.server_left, remaining)
            # One window has one end: every answer reads it against our latest reading of
            # the server's clock, which only improves, and an answer whose reset could not be
            # placed (no Date, and it reads as past) guesses its end late; never push it out.
            self.reset = min(self.reset, reset)
        self.projected = False
        if self.limit is not None:
            # What the server counted beyond every request of ours that it may have counted.
            others = self.limit - self.server_left - self.ours - self.before
            if others > self.others:
                self.others = others
                self.shared = True

    @property
    def spent(self) -> bool:
        """Nothing is left in this window: wait for its reset."""
        return self.left <= 0

    def first_word(self) -> None:
        """The budget was just learned. What was spent before our first word may be an earlier
        run of ours, or someone spending now: for the rest of this window, what is left is
        spread rather than sent at once, so two runs starting together read each other's
        spending before they overdraw; and the next window opens shared (one request first),
        as a run that started a round trip before us saw the window as its own and will open
        the next one at once (the two opening theirs at once drew a 429 for every create of
        that window)."""
        if self.limit is not None:
            self.before = max(self.limit - self.server_left - self.ours, 0)
            self.shared = self.shared or self.before > 0

    def next_turn(self, now: float, waiting: int = 1) -> float:
        """The earliest loop time a request of ours may go on this budget (``now``: at once),
        with ``waiting`` of ours (this one among them) queued for it.

        A spent budget waits for the reset. A shared one sends one request into a new window
        and waits for its answer before any other (the pacer is woken by every answer), then
        spaces what is left of our part evenly up to the reset; but what is waiting goes at
        once when all of it fits in our part, as spacing only holds a run's last requests back.
        """
        left = self.left
        if left <= 0:
            return self.reset
        if not self.shared:
            return now
        if self.projected:
            return now if self.in_flight == 0 else self.reset
        ours = left * self.claim
        if ours < 1:
            return self.reset
        if self.last_sent == -math.inf or waiting <= min(ours, self.unspent_part()):
            return now
        gap = max(self.spread_until - self.last_sent, 0.0) / (ours + 1)
        return max(now, self.last_sent + gap)

    @property
    def spread_until(self) -> float:
        """When the last of our part of a shared window goes: a little before the reset we
        expect (which is itself a little after the server's), so that it lands in this window
        at any usual latency, and what is left of the window is not lost to the next."""
        return self.reset - min(SPREAD_MARGIN_S, self.length * SPREAD_MARGIN_SHARE)

    @property
    def claim(self) -> float:
        """The part of what is left that a shared budget spreads as ours: the square root of
        the part the last window measured. That part alone would keep whatever split the
        runs happened to make (the first run to hear the server takes most of the first
        window, and each window's split is the last one's); the root draws the runs towards
        even parts window by window (97:3 becomes 85:15, then 70:30, then 61:39), and the server's
        count keeps the sum of the claims within the budget. While nobody else has spent any
        of this window, all that is left is ours to spread: the others may have gone (and if
        not, their first request shows it, and the claim falls back to the part)."""
        return math.sqrt(self.share) if self.others else 1.0

    def unspent_part(self) -> float:
        """What is left of our measured part of this window's budget: as much of it as the
        last window showed was ours, less what we sent in this one (none while no window has
        measured it). Sent at once it takes nothing from the others' parts."""
        if self.share >= 1 or self.limit is None:
            return 0.0
        return self.share * (self.limit - self.before) - self.ours


# What a request was counted against: each budget's key and the window (generation) it was
# sent in, so its answer settles it in the right window. Unknown budgets count as generation 0.
Ticket = tuple[tuple[str, int], ...]


class Budgets:
    """Every budget a client has learned (``global``, ``token``, and one per route), and the
    requests sent on a key before any budget was known for it."""

    def __init__(self) -> None:
        self.windows: dict[str, Budget] = {}
        # Requests sent on a key while no budget was known for it: in all, and unanswered.
        self._blind: dict[str, int] = {}
        self._unaccounted: dict[str, int] = {}
        # Keys some answer has spoken for (with a budget or without one): past slow start.
        self.heard: set[str] = set()

    def per_s(self, route: str) -> float | None:
        """Requests per second the known budgets allow on ``route`` over a window (the least
        of the account's, the token's and the route's limits, each over its window's length
        as the resets showed it), or None while none is known."""
        rates = [
            budget.limit / budget.length
            for key in ("global", "token", route)
            if (budget := self.windows.get(key)) is not None and budget.limit
        ]
        return min(rates) if rates else None

    def in_flight_bound(
        self, routes: Sequence[str], round_trip_s: float | None, ceiling: int
    ) -> int:
        """How many requests are worth having in flight at once on any of ``routes``, at most
        ``ceiling``, at a round trip of ``round_trip_s``: the most any of them is worth.

        Enough to send a whole window's budget (the least the known budgets allow over a
        window) within one round trip when the window opens, which is all a window takes;
        where a round trip outlasts a window, the budgets of every window it spans. More
        would only wait in the pacer. The ceiling while no budget or round trip is known
        (slow start sends one request and learns both from its answer).
        """
        if round_trip_s is None or not self.windows:
            return ceiling
        bounds = []
        for route in routes:
            per_s, window = self.per_s(route), self.window_s(("global", "token", route))
            if per_s is not None and window is not None:
                windows = max(1.0, round_trip_s / window)
                bounds.append(max(1, min(ceiling, math.ceil(per_s * window * windows))))
        return max(bounds, default=ceiling)

    def turn(self, keys: tuple[str, ...], now: float, waiting: int = 1) -> tuple[float, float]:
        """Until when requests on ``keys`` are held by a spent budget (0 if none is), and the
        earliest time this one may go besides (slow start, spreading a shared budget), with
        ``waiting`` requests (this one among them) queued for the same budgets."""
        held = 0.0
        turn = now
        for key in keys:
            budget = self.windows.get(key)
            if budget is None:
                if self._unaccounted.get(key) and key not in self.heard:
                    # Slow start: nothing is known of this budget, and a request whose
                    # answer will tell is on its way. Wait for that answer (every answer
                    # grants what may go) rather than send a burst blind into a window that
                    # may be spent.
                    turn = max(turn, now + WINDOW_S)
                continue
            if now >= budget.reset:
                # A new window: its budget is the limit, when the server told us one.
                # A limit of 0 would admit no request in any window, forever: a broken
                # header, so forget the window rather than park every request on it.
                if not budget.limit:
                    del self.windows[key]
                    continue
                budget.roll_over(now)
            if budget.spent:
                held = max(held, budget.reset)
            turn = max(turn, budget.next_turn(now, waiting))
        return held, turn

    def count(self, keys: tuple[str, ...], now: float) -> Ticket:
        """Count a request about to go against each budget (or as sent blind); its ticket."""
        ticket: list[tuple[str, int]] = []
        for key in keys:
            budget = self.windows.get(key)
            if budget is not None:
                ticket.append((key, budget.sent(now)))
            else:
                self._blind[key] = self._blind.get(key, 0) + 1
                self._unaccounted[key] = self._unaccounted.get(key, 0) + 1
                ticket.append((key, 0))
        return tuple(ticket)

    def window_s(self, keys: tuple[str, ...]) -> float | None:
        """The window length the resets of these budgets showed; None while none is known."""
        return min((b.length for key in keys if (b := self.windows.get(key))), default=None)

    def settle(self, ticket: Ticket, *, counted: bool) -> None:
        """A request of ``ticket`` was answered (``counted``: by the server) or not sent."""
        for key, generation in ticket:
            budget = self.windows.get(key)
            if budget is not None:
                budget.answered(generation, counted=counted)
            elif self._unaccounted.get(key):
                self._unaccounted[key] -= 1

    def hear(
        self, route: str, state: RateLimitState, server_now: float, loop_now: float, *, known: bool
    ) -> None:
        """Take in what one answer on ``route`` says of its budgets (``known``: one whose
        ticket was given), its resets read when the server's clock showed ``server_now`` and
        the loop's ``loop_now``. A budget the answer names no count of is left as it was."""
        if route not in self.heard:
            self.heard.update(("global", "token", route))
        date = state.date
        if state.global_remaining is not None or state.route_remaining is not None:
            window = self.window_s(("global", route))
            end = window_end(state.reset_ms, date, server_now, loop_now, window=window)
            self.learn("global", state.global_remaining, state.global_limit, end, known)
            self.learn(route, state.route_remaining, state.route_limit, end, known)
        if state.token_remaining is not None:
            window = self.window_s(("token",))
            end = window_end(state.token_reset_ms, date, server_now, loop_now, window=window)
            self.learn("token", state.token_remaining, state.token_limit, end, known)

    def learn(
        self,
        key: str,
        remaining: int | None,
        limit: int | None,
        end: WindowEnd,
        known: bool,
    ) -> None:
        """Learn a budget from an answer (``known``: one whose ticket was given)."""
        if remaining is None:
            return
        reset, said = end
        budget = self.windows.get(key)
        if budget is None:
            # Requests sent before any budget was known are still in flight, and the server
            # may not have counted them yet: count them now, or the first window overdraws.
            # An answer without a ticket is taken for one of them.
            in_flight = self._unaccounted.pop(key, 0) - (0 if known else 1)
            budget = self.windows[key] = Budget(
                server_left=remaining,
                limit=limit,
                reset=reset,
                server_reset=said,
                in_flight=max(in_flight, 0),
                ours=self._blind.pop(key, 0),
            )
            budget.first_word()
        budget.learn(remaining, limit, reset, said)
