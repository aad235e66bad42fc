"""When to retry a request that got no usable answer, how long to wait, and how many retries
a run may spend; and the one retry loop that applies all three (stamina's ``retry_context``
shape), for the client's requests and the engine's look-before-create alike.

The run-wide budget counts outages, not failed requests. A failure is charged one retry from
the budget, and every failure after it, until a request succeeds or one window (10 s) has
passed since that charge, belongs to the same outage and is retried without a further charge.
So a partition that times out every request in flight at once (200 of them, at a route limit of
200) costs one retry, not the whole budget, and a later transient failure is still retried;
while a server that keeps failing is still charged once per window, and one that fails between
successes once per failure (each success earns a little back), so a server failing most
requests soon stops being retried. Each request keeps its own cap on attempts besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import attrs

from ldbulk.errors import Stopped
from ldbulk.http.meter import Meter


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Retry settings for one client.

    - ``max_attempts``: tries per request for transport errors and 5xx (429s do not count).
    - ``backoff_base_s`` / ``backoff_cap_s``: capped exponential backoff with full jitter.
    - ``throttle_deadline_s``: how long one request may keep waiting out 429s.
    - ``budget`` / ``refund``: a run-wide allowance of retries. Each outage spends one, each
      success earns ``refund`` back, so a server failing most requests stops being retried
      instead of being hammered, while a few faults in a long run never exhaust it.
    - ``outage_s``: failures within this long of the one that was charged, with no success
      between them, are the same outage and share its charge (0: every retry is charged).
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    throttle_deadline_s: float = 600.0
    budget: float = 100.0
    refund: float = 0.2
    # One rate-limit window: the requests in flight when a link fails were sent within one
    # window of each other (https://launchdarkly.com/docs/api#rate-limiting), so they fail
    # within one window of each other too.
    outage_s: float = 10.0


def _loop_time() -> float:
    """The running event loop's clock (a test's fake one, too), or the monotonic clock."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


@attrs.define
class RetryBudget:
    """The run-wide retry allowance of a :class:`RetryPolicy`, charged once per outage.

    ``spent`` counts the retries granted, ``outages`` the charges they cost; ``clock`` (seconds)
    tells which failures share a charge.
    """

    policy: RetryPolicy
    clock: Callable[[], float] = attrs.field(default=_loop_time, kw_only=True)
    tokens: float = attrs.field(init=False)
    spent: int = attrs.field(init=False, default=0)
    outages: int = attrs.field(init=False, default=0)
    # When the ongoing outage was charged; None once a success ended it.
    _charged_at: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.tokens = self.policy.budget

    def try_spend(self) -> bool:
        """Take one retry: free within the outage already charged, else one from the budget;
        False when it is exhausted."""
        now = self.clock()
        charged = self._charged_at
        if charged is None or not 0 <= now - charged < self.policy.outage_s:
            if self.tokens < 1:
                return False
            self.tokens -= 1
            self.outages += 1
            self._charged_at = now
        self.spent += 1
        return True

    def earn(self) -> None:
        """A request succeeded: the outage, if any, is over; give a little back, up to the
        initial budget."""
        self._charged_at = None
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


# What an Attempt used as a context manager retries: the exception types, like `except` takes.
Retriable = type[BaseException] | tuple[type[BaseException], ...]


class Attempt:
    """One try of an operation, handed out by :class:`RetryContext`.

    As a context manager it swallows an exception of the context's ``on`` types when another
    try is allowed (the loop then backs off and tries again), and lets it through when not.
    :meth:`retry` asks for another try after a failure that is not an exception (a 5xx), or
    after the caller has looked into one itself.
    """

    __slots__ = ("_context", "_granted", "num")

    def __init__(self, context: RetryContext, num: int) -> None:
        self._context = context
        self._granted = False
        self.num = num  # 1 for the first try

    def __repr__(self) -> str:
        return f"Attempt(num={self.num})"

    def retry(self) -> bool:
        """Ask for another try after this one failed.

        True when one is allowed: it is then taken from the run-wide budget and counted, and
        the loop backs off before handing out the next attempt. False when the policy's
        attempts or the budget are spent. Asking twice for the same attempt costs one retry.
        """
        if not self._granted:
            self._granted = self._context._grant(self.num)
        return self._granted

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return isinstance(exc, self._context.on) and self.retry()


class RetryContext:
    """The attempts of one operation: ``async for attempt in context: with attempt: ...``.

    The first attempt comes at once. The next comes only when the last one was granted a
    retry (:meth:`Attempt.retry`, or an ``on`` exception in ``with attempt``), after a capped
    exponential backoff with full jitter; otherwise the iteration ends. A retry needs an
    attempt left under ``policy.max_attempts`` and one retry from ``budget``, and is counted
    in every meter of ``meters``. Once ``stop`` is set, a backoff ends at once with
    :class:`~ldbulk.errors.Stopped` instead of another try: a stopped run sends nothing more.

    Waiting out a 429 is not an attempt: it is the pacer's business, and costs nothing here.
    """

    __slots__ = ("_last", "budget", "meters", "on", "policy", "stop")

    def __init__(
        self,
        policy: RetryPolicy,
        budget: RetryBudget,
        *,
        on: Retriable = (),
        stop: asyncio.Event | None = None,
        meters: Sequence[Meter] = (),
    ) -> None:
        self.policy = policy
        self.budget = budget
        self.on = on
        self.stop = stop
        self.meters = meters
        self._last: Attempt | None = None

    def __aiter__(self) -> RetryContext:
        return self

    async def __anext__(self) -> Attempt:
        last = self._last
        if last is not None:
            if not last._granted:
                raise StopAsyncIteration
            await self._back_off(last.num)
        self._last = Attempt(self, 1 if last is None else last.num + 1)
        return self._last

    def _grant(self, failures: int) -> bool:
        if failures >= self.policy.max_attempts or not self.budget.try_spend():
            return False
        for meter in self.meters:
            meter.retries += 1
        return True

    async def _back_off(self, failures: int) -> None:
        delay = compute_backoff(
            failures, base=self.policy.backoff_base_s, cap=self.policy.backoff_cap_s
        )
        if self.stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)
        if self.stop.is_set():
            raise Stopped("not retried: the run was stopped")
