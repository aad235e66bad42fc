"""LaunchDarkly's rate-limit headers, read into a value: no I/O, no pacing.

LaunchDarkly counts requests in fixed 10-second windows at three levels: the account (global),
the route (verb + URL pattern) and the access token. It publishes no numbers, only headers
(https://launchdarkly.com/docs/api#rate-limiting):

- ``X-Ratelimit-Global-Limit`` / ``-Remaining`` and ``X-Ratelimit-Route-Limit`` / ``-Remaining``,
  both families resetting at ``X-Ratelimit-Reset`` (epoch milliseconds);
- ``X-Ratelimit-Auth-Token-Limit`` / ``-Remaining`` / ``-Reset`` for the token;
- ``Retry-After`` (seconds) on IP-based limits.

A header that is absent means that limit did not apply.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Final

import attrs

WINDOW_S: Final = 10.0

# Our clock and LaunchDarkly's are not the same clock: start a new window a little after the
# announced reset rather than a little before it.
RESET_MARGIN_S: Final = 0.1

# A reset further away than this is a broken header, not a plan: never park a run on it.
MAX_WAIT_S: Final = 120.0


# Larger header numbers are broken, not big: every later use converts them to float (epoch
# milliseconds / 1000), which loses precision past 2**53 and raises OverflowError past ~1e308.
_MAX_HEADER_INT: Final = 2**53


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if 0 <= number <= _MAX_HEADER_INT else None


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds from ``Retry-After``: delta-seconds or an HTTP date (RFC 9110, 10.2.3)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
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

    def resume_at(self, now: float) -> float:
        """Epoch seconds after which a throttled request may be sent again.

        The later of Retry-After and the window resets wins; with neither, one window from now.
        """
        candidates = [now + self.retry_after_s] if self.retry_after_s is not None else []
        for reset_ms in (self.reset_ms, self.token_reset_ms):
            if reset_ms is not None:
                candidates.append(reset_ms / 1000 + RESET_MARGIN_S)
        if not candidates:
            return now + WINDOW_S
        return min(max(candidates), now + MAX_WAIT_S)


def parse_rate_limit(headers: Mapping[str, str], now: float | None = None) -> RateLimitState:
    """Read the rate-limit headers of a response; unparsable values count as absent."""
    current = time.time() if now is None else now
    return RateLimitState(
        global_limit=_header_int(headers, "X-Ratelimit-Global-Limit"),
        global_remaining=_header_int(headers, "X-Ratelimit-Global-Remaining"),
        route_limit=_header_int(headers, "X-Ratelimit-Route-Limit"),
        route_remaining=_header_int(headers, "X-Ratelimit-Route-Remaining"),
        reset_ms=_header_int(headers, "X-Ratelimit-Reset"),
        token_limit=_header_int(headers, "X-Ratelimit-Auth-Token-Limit"),
        token_remaining=_header_int(headers, "X-Ratelimit-Auth-Token-Remaining"),
        token_reset_ms=_header_int(headers, "X-Ratelimit-Auth-Token-Reset"),
        retry_after_s=_retry_after(headers, current),
    )
