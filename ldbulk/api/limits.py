"""LaunchDarkly's rate-limit headers, read into a value: no I/O, no pacing.

LaunchDarkly counts requests in fixed 10-second windows at three levels: the account (global),
the route (verb + URL pattern) and the access token. It publishes no numbers, only headers
(https://launchdarkly.com/docs/api#rate-limiting):

- ``X-Ratelimit-Global-Limit`` / ``-Remaining`` and ``X-Ratelimit-Route-Limit`` / ``-Remaining``,
  both families resetting at ``X-Ratelimit-Reset`` (epoch milliseconds);
- ``X-Ratelimit-Auth-Token-Limit`` / ``-Remaining`` / ``-Reset`` for the token;
- ``Retry-After`` (seconds) on IP-based limits.

A header that is absent means that limit did not apply.

The resets are epoch times on the *server's* clock, which need not be ours. Every answer also
carries ``Date`` (RFC 9110, 6.6.1: when the server made it, in whole seconds), read here beside
the limits so a reset can be placed against the clock that wrote it (:func:`reset_in`).
"""

from __future__ import annotations

import email.utils
import functools
import time
from collections.abc import Mapping
from typing import Final

import attrs

WINDOW_S: Final = 10.0

# Our clock and LaunchDarkly's are not the same clock: start a new window a little after the
# announced reset rather than a little before it.
RESET_MARGIN_S: Final = 0.1

# ``Date`` is an HTTP-date, whole seconds: the answer was made up to this long after it.
DATE_RESOLUTION_S: Final = 1.0

# A reset further away than this is a broken header, not a plan: never park a run on it.
MAX_WAIT_S: Final = 120.0


# Larger header numbers are broken, not big: every later use converts them to float (epoch
# milliseconds / 1000), which loses precision past 2**53 and raises OverflowError past ~1e308.
_MAX_HEADER_INT: Final = 2**53


# The numeric headers, in the order of :class:`RateLimitState`'s fields they fill.
_NUMBERS: Final = (
    ("global_limit", "X-Ratelimit-Global-Limit"),
    ("global_remaining", "X-Ratelimit-Global-Remaining"),
    ("route_limit", "X-Ratelimit-Route-Limit"),
    ("route_remaining", "X-Ratelimit-Route-Remaining"),
    ("reset_ms", "X-Ratelimit-Reset"),
    ("token_limit", "X-Ratelimit-Auth-Token-Limit"),
    ("token_remaining", "X-Ratelimit-Auth-Token-Remaining"),
    ("token_reset_ms", "X-Ratelimit-Auth-Token-Reset"),
)


def _header_ints(headers: Mapping[str, str]) -> dict[str, int]:
    """The numeric headers an answer carries and that parse, by field; in one loop, as every
    answer is read."""
    numbers: dict[str, int] = {}
    for field, name in _NUMBERS:
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = int(value.strip())
        except ValueError:
            continue
        if 0 <= number <= _MAX_HEADER_INT:
            numbers[field] = number
    return numbers


# Every answer within one second carries the same ``Date``: parsing it once per second, not
# once per answer, takes the email parser off the path every request takes.
@functools.lru_cache(maxsize=8)
def _http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP-date (RFC 9110, 5.6.7), or None when it is not one."""
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()


def _retry_after(
    headers: Mapping[str, str], date: float | None, now: float | None
) -> float | None:
    """Seconds from ``Retry-After``: delta-seconds or an HTTP date (RFC 9110, 10.2.3).

    An HTTP date is a time on the server's clock: it is counted from the answer's own ``Date``
    when there is one (both from one clock), else from ours (``now``, or the time now)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        since = date if date is not None else now if now is not None else time.time()
        seconds = when - since
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_WAIT_S)


@attrs.frozen(kw_only=True)
class RateLimitState:
    """What one response's headers say about the rate limits. ``None``: not reported."""

    global_limit: int | None = None
    global_remaining: int | None = None
    route_limit: int | None = None
    route_remaining: int | None = None
    reset_ms: int | None = None
    token_limit: int | None = None
    token_remaining: int | None = None
    token_reset_ms: int | None = None
    retry_after_s: float | None = None
    date: float | None = None  # the answer's ``Date``: epoch seconds, on the server's clock

    def resume_at(self, now: float, *, window: float | None = None) -> float:
        """Epoch seconds (on the server's clock, as ``now`` is) after which a throttled request
        may be sent again.

        The later of Retry-After and the window resets wins; with neither, or only resets that
        cannot be right (:func:`reset_in`), one window from now: a 429 says this window is
        spent, so the next cannot begin sooner (retrying on a reset already past sent
        request after request into the window the 429 had just closed). ``window``: the
        length the resets showed (None: 10 s).
        """
        window = WINDOW_S if window is None else window
        candidates = [now + self.retry_after_s] if self.retry_after_s is not None else []
        for reset_ms in (self.reset_ms, self.token_reset_ms):
            if reset_ms is None:
                continue
            ahead = reset_in(reset_ms, now=now, date=self.date, window=window)
            if ahead is not None:
                candidates.append(now + ahead + RESET_MARGIN_S)
        if not candidates:
            return now + window
        return min(max(candidates), now + MAX_WAIT_S)


def reset_in(
    reset_ms: int, *, now: float, date: float | None = None, window: float | None = None
) -> float | None:
    """Seconds from ``now`` until the window ending at ``reset_ms`` ends (negative: it ended),
    both on the server's clock; None for a reset that cannot be right.

    LaunchDarkly's windows are fixed and ``window`` long (10 s, or as the resets showed it),
    so a reset comes after the answer that names it and at most one window later
    (https://launchdarkly.com/docs/api#rate-limiting). With the answer's ``Date``, that is
    checked against the clock that wrote both: whatever our clock says, and however late the
    answer came. ``Date`` is whole seconds, so the reset may be up to a second more than a
    window after it; and the reset is at most that far from the moment the answer was made,
    which bounds a ``now`` learned from older answers (a clock stepped since). Without a
    ``Date``, ``now`` is all there is, and a reset must lie ahead of it, by at most a window:
    one read as past cannot be told from a server clock behind ours, so its window is taken
    to end one window from now, the latest it can (an earlier window's answer is still told
    apart by the reset itself, which names its window).
    """
    window = WINDOW_S if window is None else window
    reset = reset_ms / 1000
    if date is None:
        ahead = reset - now
        return ahead if 0 < ahead <= window + DATE_RESOLUTION_S else None
    since = reset - date
    if not 0 < since <= window + DATE_RESOLUTION_S:
        return None
    return min(reset - now, since)


def parse_rate_limit(headers: Mapping[str, str], now: float | None = None) -> RateLimitState:
    """Read the rate-limit headers of a response, and its ``Date``; unparsable values count
    as absent. ``now`` (our clock) only counts a ``Retry-After`` date from when the answer has
    no ``Date``."""
    date = _http_date(headers.get("Date"))
    return RateLimitState(
        **_header_ints(headers), retry_after_s=_retry_after(headers, date, now), date=date
    )
