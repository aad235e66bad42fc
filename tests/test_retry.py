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
    policy = RetryPolicy(max_attempts=10, backoff_base_s=0.001, budget=2.0, refund=0.0)
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
