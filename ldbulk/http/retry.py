"""When to retry a request that got no usable answer, how long to wait, and how many retries
a run may spend."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Retry settings for one client.

    - ``max_attempts``: tries per request for transport errors and 5xx (429s do not count).
    - ``backoff_base_s`` / ``backoff_cap_s``: capped exponential backoff with full jitter.
    - ``throttle_deadline_s``: how long one request may keep waiting out 429s.
    - ``budget`` / ``refund``: a run-wide allowance of retries. Each retry spends one, each
      success earns ``refund`` back, so a server failing most requests stops being retried
      instead of being hammered, while a few faults in a long run never exhaust it.
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    throttle_deadline_s: float = 600.0
    budget: float = 100.0
    refund: float = 0.2


@attrs.define
class RetryBudget:
    """The run-wide retry allowance of a :class:`RetryPolicy`."""

    policy: RetryPolicy
    tokens: float = attrs.field(init=False)
    spent: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self.tokens = self.policy.budget

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is exhausted."""
        if self.tokens < 1:
            return False
        self.tokens -= 1
        self.spent += 1
        return True

    def earn(self) -> None:
        """A request succeeded: give a little back, up to the initial budget."""
        self.tokens = min(self.policy.budget, self.tokens + self.policy.refund)


def compute_backoff(
    attempt: int, *, base: float = 0.5, cap: float = 30.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): capped exponential, full jitter.

    Full jitter (a uniform draw from zero to the capped exponential) spreads the retries of
    many workers that failed together, instead of sending them back in one burst.
    """
    # The exponent is clamped so a huge attempt number cannot overflow a float.
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))
    return float(ceiling * rand())
