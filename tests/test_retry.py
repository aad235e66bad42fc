"""The one retry loop: attempts under a policy, a run-wide budget, counted, ended by a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ldbulk import RetryPolicy, Stopped, TransportError
from ldbulk.http.retry import Retriable, RetryBudget, RetryContext
from ldbulk.http.scope import Meter

FAST = RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.001)
# A backoff no test could sit out: only a stop ends it.
ENDLESS = RetryPolicy(max_attempts=3, backoff_base_s=3600.0, backoff_cap_s=3600.0)


def context(
    policy: RetryPolicy = FAST,
    *,
    budget: RetryBudget | None = None,
    on: Retriable = (),
    stop: asyncio.Event | None = None,
    meters: Sequence[Meter] = (),
) -> RetryContext:
    budget = budget or RetryBudget(policy)
    return RetryContext(policy, budget, on=on, stop=stop, meters=meters)


async def test_the_first_attempt_comes_at_once_and_a_success_ends_the_loop() -> None:
    tried = [attempt.num async for attempt in context()]
    assert tried == [1]


async def test_an_on_exception_is_retried_up_to_max_attempts_then_raised() -> None:
    meter = Meter()
    tried = []
    with pytest.raises(TransportError):
        async for attempt in context(on=TransportError, meters=[meter]):
            with attempt:
                tried.append(attempt.num)
                raise TransportError("lost")
    assert tried == [1, 2, 3]
    assert meter.retries == 2


async def test_an_exception_not_in_on_is_raised_at_once_and_spends_nothing() -> None:
    budget = RetryBudget(FAST)
    with pytest.raises(ValueError, match="bad"):
        async for attempt in context(on=TransportError, budget=budget):
            with attempt:
                raise ValueError("bad")
    assert budget.spent == 0


async def test_retry_asks_for_another_try_and_counts_it_in_every_meter() -> None:
    client, run = Meter(), Meter()
    tried = []
    async for attempt in context(meters=[client, run]):
        tried.append(attempt.num)
        if attempt.num < 2:
            assert attempt.retry()
            assert attempt.retry()  # asking twice costs one retry
    assert tried == [1, 2]
    assert (client.retries, run.retries) == (1, 1)


async def test_the_budget_is_shared_and_an_exhausted_one_refuses_retries() -> None:
    # Every retry charged (outage_s=0): the failures here come back to back, one outage.
    policy = RetryPolicy(
        max_attempts=10, backoff_base_s=0.001, budget=2.0, refund=0.0, outage_s=0.0
    )
    budget = RetryBudget(policy)
    first = [attempt.num async for attempt in context(policy, budget=budget) if attempt.retry()]
    second = [attempt.num async for attempt in context(policy, budget=budget) if attempt.retry()]
    assert first == [1, 2]
    assert second == []
    assert budget.spent == 2


async def test_a_stop_during_the_backoff_raises_stopped_instead_of_trying_again() -> None:
    stop = asyncio.Event()
    tried = []
    with pytest.raises(Stopped, match="not retried"):
        async for attempt in context(ENDLESS, stop=stop):
            tried.append(attempt.num)
            assert attempt.retry()
            asyncio.get_running_loop().call_soon(stop.set)
    assert tried == [1]


async def test_a_stopped_context_never_backs_off_into_another_try() -> None:
    stop = asyncio.Event()
    stop.set()
    tried = []
    with pytest.raises(Stopped):
        async for attempt in context(ENDLESS, stop=stop):
            tried.append(attempt.num)
            attempt.retry()
    assert tried == [1]


# -- the budget counts outages ---------------------------------------------------------------


class FakeClock:
    """Seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def budget_on(clock: FakeClock, **policy: float) -> RetryBudget:
    return RetryBudget(RetryPolicy(refund=0.0, **policy), clock=clock)


def test_a_window_of_timeouts_from_one_outage_costs_one_charge() -> None:
    """200 requests in flight (a route limit of 200) time out within one window: before, they
    spent the whole budget of 100 and every later transient failure failed its target."""
    clock = FakeClock()
    budget = budget_on(clock)
    for i in range(200):
        clock.now = i * 0.05
        assert budget.try_spend()
    assert (budget.spent, budget.outages, budget.tokens) == (200, 1, 99.0)


def test_a_failure_after_a_success_is_a_new_outage() -> None:
    clock = FakeClock()
    budget = budget_on(clock)
    assert budget.try_spend()
    budget.earn()
    clock.now = 1.0
    assert budget.try_spend()
    assert (budget.outages, budget.tokens) == (2, 98.0)


def test_an_outage_that_lasts_is_charged_once_per_window() -> None:
    clock = FakeClock()
    budget = budget_on(clock)
    for now in (0.0, 5.0, 9.9, 10.0, 15.0, 20.0, 29.0):
        clock.now = now
        assert budget.try_spend()
    assert budget.outages == 3  # at 0, 10 and 20


def test_an_exhausted_budget_still_covers_the_outage_it_paid_for_and_no_other() -> None:
    clock = FakeClock()
    budget = budget_on(clock, budget=1.0)
    assert budget.try_spend()
    clock.now = 5.0
    assert budget.try_spend()
    clock.now = 11.0
    assert not budget.try_spend()
    assert (budget.spent, budget.outages) == (2, 1)


def test_a_server_failing_between_successes_is_charged_each_failure() -> None:
    clock = FakeClock()
    budget = budget_on(clock, budget=3.0)
    granted = []
    for i in range(5):
        clock.now = i * 0.1
        granted.append(budget.try_spend())
        budget.earn()
    assert granted == [True, True, True, False, False]


def test_outage_s_zero_charges_every_retry() -> None:
    clock = FakeClock()
    budget = budget_on(clock, budget=2.0, outage_s=0.0)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]


async def test_retries_of_one_outage_share_one_charge_in_the_retry_loop() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_base_s=0.001, backoff_cap_s=0.001, budget=2.0)
    budget = RetryBudget(policy, clock=FakeClock())
    for _ in range(3):  # three requests fail every try, in one outage
        tried = [attempt.num async for attempt in context(policy, budget=budget) if attempt.retry()]
        assert tried == [1, 2, 3]  # the fourth try is the last: not retried
    assert (budget.spent, budget.outages, budget.tokens) == (9, 1, 1.0)
