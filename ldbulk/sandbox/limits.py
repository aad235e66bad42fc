"""Fixed-window rate limits, the way LaunchDarkly documents them.

Windows are fixed, not sliding: every window starts at a multiple of ``window_s`` in epoch
time, so every client sees the same ``X-Ratelimit-Reset`` (epoch milliseconds) for a window.
The global window counts every authenticated request of the account; each route (verb + URL
pattern) has its own window with the route limit. A throttled request is not counted: it was
not applied, and counting it would only push ``remaining`` below zero.
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


@attrs.define
class FixedWindowLimiter:
    """Global and per-route request budgets over fixed windows; ``None`` limits are off."""

    global_limit: int | None
    route_limit: int | None
    window_s: float = 10.0
    clock: Callable[[], float] = time.time
    _global: _Counter = attrs.field(factory=_Counter, init=False)
    _routes: dict[str, _Counter] = attrs.field(factory=dict, init=False)

    @property
    def enabled(self) -> bool:
        """Whether any limit applies (otherwise no rate-limit header is sent at all)."""
        return self.global_limit is not None or self.route_limit is not None

    def reset(self) -> None:
        """Forget every count (a fresh window for every route)."""
        self._global = _Counter()
        self._routes.clear()

    def admit(self, route: str) -> Decision:
        """Count one request on ``route`` if both budgets allow it."""
        now = self.clock()
        window = math.floor(now / self.window_s)
        reset_s = (window + 1) * self.window_s
        headers: dict[str, str] = {"X-Ratelimit-Reset": str(round(reset_s * 1000))}
        budgets: list[tuple[str, int, _Counter]] = []
        if self.global_limit is not None:
            budgets.append(("Global", self.global_limit, self._global))
        if self.route_limit is not None:
            budgets.append(("Route", self.route_limit, self._route(route)))
        for _, _, counter in budgets:
            if counter.window != window:
                counter.window, counter.used = window, 0
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

    def _route(self, route: str) -> _Counter:
        counter = self._routes.get(route)
        if counter is None:
            counter = self._routes[route] = _Counter()
        return counter
