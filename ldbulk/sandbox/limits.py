"""Fixed-window rate limits, the way LaunchDarkly documents them.

Windows are fixed, not sliding: every window starts at a multiple of ``window_s`` in epoch
time, so every client sees the same ``X-Ratelimit-Reset`` (epoch milliseconds) for a window.
The global window counts every authenticated request of the account; each route (verb + URL
pattern) has its own window with the route limit; each access token has its own window with the
token limit, announced by the ``X-Ratelimit-Auth-Token-*`` headers (with a reset of their own).
A request goes through only when every budget that applies allows it. A throttled request is
not counted: it was not applied, and counting it would only push ``remaining`` below zero.

``background`` emulates the account's other clients (Terraform, CI, another ldbulk run): they
spend that many requests of every window from the global budget and from each route's, at
evenly spread moments (the first at the window's start), as long as the budget has room; what
finds it spent is lost, as another client's 429 would be. The spending is computed from the
limiter's clock when a request arrives, so a fake clock drives it exactly, with no task running.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs


@attrs.frozen(kw_only=True)
class Decision:
    """The outcome of one admission: allowed or not, and the headers to send either way."""

    allowed: bool
    headers: dict[str, str]
    retry_after_s: int


@attrs.define
class _Counter:
    window: int = -1
    used: int = 0
    # The other clients' moments in this window that have come (spent or lost).
    background_due: int = 0


@attrs.define
class FixedWindowLimiter:
    """Global, per-route and per-token request budgets over fixed windows; ``None`` is off."""

    global_limit: int | None
    route_limit: int | None
    window_s: float = 10.0
    clock: Callable[[], float] = time.time
    token_limit: int | None = None
    background: int = 0
    _global: _Counter = attrs.field(factory=_Counter, init=False)
    _routes: dict[str, _Counter] = attrs.field(factory=dict, init=False)
    _tokens: dict[str, _Counter] = attrs.field(factory=dict, init=False)

    @property
    def enabled(self) -> bool:
        """Whether any limit applies (otherwise no rate-limit header is sent at all)."""
        return any(
            limit is not None for limit in (self.global_limit, self.route_limit, self.token_limit)
        )

    def reset(self) -> None:
        """Forget every count (a fresh window for every route and token)."""
        self._global = _Counter()
        self._routes.clear()
        self._tokens.clear()

    def admit(self, route: str, token: str = "") -> Decision:
        """Count one request on ``route`` by ``token`` if every budget allows it."""
        now = self.clock()
        window = math.floor(now / self.window_s)
        reset_s = (window + 1) * self.window_s
        reset_ms = str(round(reset_s * 1000))
        headers: dict[str, str] = {}
        budgets: list[tuple[str, int, _Counter]] = []
        if self.global_limit is not None:
            budgets.append(("Global", self.global_limit, self._global))
        if self.route_limit is not None:
            budgets.append(("Route", self.route_limit, _counter(self._routes, route)))
        if budgets:
            # The global and route families share one reset header.
            headers["X-Ratelimit-Reset"] = reset_ms
        if self.token_limit is not None:
            budgets.append(("Auth-Token", self.token_limit, _counter(self._tokens, token)))
            headers["X-Ratelimit-Auth-Token-Reset"] = reset_ms
        # Other clients' requests count against the account and the routes, not our token.
        background_due = self._background_due(now - window * self.window_s)
        for family, limit, counter in budgets:
            if counter.window != window:
                counter.window, counter.used, counter.background_due = window, 0, 0
            if family != "Auth-Token" and background_due > counter.background_due:
                spent = min(background_due - counter.background_due, max(limit - counter.used, 0))
                counter.used += spent
                counter.background_due = background_due
        allowed = all(counter.used < limit for _, limit, counter in budgets)
        for family, limit, counter in budgets:
            if allowed:
                counter.used += 1
            headers[f"X-Ratelimit-{family}-Limit"] = str(limit)
            headers[f"X-Ratelimit-{family}-Remaining"] = str(limit - counter.used)
        return Decision(
            allowed=allowed,
            headers=headers,
            retry_after_s=max(1, math.ceil(reset_s - now)),
        )

    def _background_due(self, into_window_s: float) -> int:
        """How many of the other clients' requests are due ``into_window_s`` into a window."""
        if not self.background:
            return 0
        spacing = self.window_s / self.background
        return min(self.background, math.floor(into_window_s / spacing) + 1)


def _counter(counters: dict[str, _Counter], key: str) -> _Counter:
    counter = counters.get(key)
    if counter is None:
        counter = counters[key] = _Counter()
    return counter
