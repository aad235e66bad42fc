"""Plan and apply persistent store integrations over many targets.

A run lists the account's integrations once, so a target that already has one is settled
without a write; then a fixed pool of workers creates the rest, all sharing the client's pacer.
Results stream out as targets settle, and every target settles exactly once.

A create that got no clear answer (connection cut, timeout, 5xx, 409) may have been applied.
The engine never retries it blindly: it asks the list endpoint first, and only creates again
when the integration is not there. LaunchDarkly allows one integration per environment and
integration key, and the engine keeps it that way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import Final

import attrs

from ldbulk.api.models import ErrorBody, Target
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.report import Key, Outcome, Report, TargetResult
from ldbulk.engine.verdict import FINAL, STOPPED, Verdict, shown, unauthorized_reason
from ldbulk.errors import (
    Conflict,
    HTTPStatusError,
    LdbulkError,
    ResponseFormatError,
    Stopped,
    TransportError,
    Unauthorized,
)
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope

DEFAULT_CONCURRENCY: Final = 8


class _Run:
    """One run of a :class:`Provisioner`: everything that must not outlive it or leak into
    the next one (targets seen, the inventory, the 401 that aborted it, its stop signal and
    counts)."""

    def __init__(self, client: Client, concurrency: int, scope: RequestScope) -> None:
        self.client = client
        self.concurrency = concurrency
        self.scope = scope
        self.inventory = Inventory(client, scope)
        self.seen: set[Key] = set()
        self.refused: Unauthorized | None = None
        self.listing_error: LdbulkError | None = None

    async def produce(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        queue: asyncio.Queue[_Item],
        room: asyncio.Semaphore,
    ) -> None:
        """Settle every target with a pool of workers, putting each result on ``queue``."""
        try:
            await self._plan()
            source = _numbered(targets)
            lock = asyncio.Lock()

            async def worker() -> None:
                while True:
                    await room.acquire()
                    async with lock:
                        item = await anext(source, None)
                    if item is None:
                        room.release()
                        return
                    index, target = item
                    queue.put_nowait((index, await self.settle(target)))

            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(worker())
        except BaseException as exc:
            # The queue is unbounded (``room`` is the bound), so this never blocks.
            queue.put_nowait(_Failure(exc))
            raise
        else:
            queue.put_nowait(None)
        finally:
            await self.inventory.aclose()

    async def _plan(self) -> None:
        """List existing integrations once; a failure here is every target's failure."""
        if self.scope.stopped:
            return  # stopped before it began: nothing is sent, every target is skipped
        try:
            await self.inventory.refresh()
        except Unauthorized as exc:
            self.refused = exc
            self.listing_error = exc
        except Stopped:
            pass  # every target will be skipped as stopped
        except LdbulkError as exc:
            self.listing_error = exc

    async def settle(self, target: Target) -> TargetResult:
        """One target, from plan to its final outcome; never raises for a target's sake."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            verdict = await self._decide(target)
        except Exception as exc:  # one target's surprise must not end the run
            verdict = Verdict(
                outcome=Outcome.FAILED,
                error=ErrorBody(code="internal_error", message=f"{type(exc).__name__}: {exc}"),
            )
        error = verdict.error
        if error is not None:
            # A server may quote what it was sent (a host, a table name); values that came
            # from a reference, and secrets, are shown as their reference or not at all.
            error = attrs.evolve(error, message=shown(target.config.redact(error.message)))
        return TargetResult(
            project=target.project,
            environment=target.environment,
            integration=target.integration_key,
            outcome=verdict.outcome,
            status=verdict.status,
            integration_id=verdict.integration_id,
            attempts=verdict.attempts,
            error=error,
            elapsed_s=loop.time() - started,
        )

    async def _decide(self, target: Target) -> Verdict:
        if target.key in self.seen:
            return Verdict.skipped("duplicate", "same target given earlier in this run")
        self.seen.add(target.key)
        if self.listing_error is not None:
            if isinstance(self.listing_error, Unauthorized):
                # The listing is the first request every target needs: each was refused.
                return Verdict.of(Outcome.UNAUTHORIZED, self.listing_error, 0)
            return Verdict(
                outcome=Outcome.FAILED,
                status=getattr(self.listing_error, "status", None),
                error=ErrorBody(
                    code="listing_failed",
                    message=f"could not list existing integrations: {self.listing_error}",
                ),
            )
        if self.refused is not None:
            return Verdict.skipped("skipped", unauthorized_reason(self.refused))
        if self.scope.stopped:
            return Verdict.skipped("stopped", STOPPED)
        existing = self.inventory.get(target.key)
        if existing is not None:
            return Verdict(outcome=Outcome.EXISTS, integration_id=existing)
        return await self._create(target)

    async def _create(self, target: Target) -> Verdict:
        """Create, and when the answer is unclear, look before creating again (a retry)."""
        sent = 0  # creates sent: one stopped before its turn never was
        error: LdbulkError | None = None
        sent_unclear = False  # a create of ours may have been applied without our knowing
        try:
            async for attempt in self.client.retry_context(self.scope):
                try:
                    integration = await self.client.create_integration(
                        target.project,
                        target.environment,
                        target.config,
                        on=target.on,
                        tags=target.tags,
                        name=target.name,
                        scope=self.scope,
                    )
                except (TransportError, ResponseFormatError, Conflict) as exc:
                    error = exc
                    sent_unclear = sent_unclear or not isinstance(exc, Conflict)
                except HTTPStatusError as exc:
                    if isinstance(exc, Unauthorized):
                        self.refused = exc
                    outcome = FINAL.get(type(exc))
                    if outcome is not None:
                        return Verdict.of(outcome, exc, attempt.num)
                    error = exc  # 5xx, or a status the spec does not name: unclear
                    sent_unclear = True
                else:
                    self.inventory.add(integration)
                    return Verdict(
                        outcome=Outcome.CREATED,
                        status=201,
                        integration_id=integration.id,
                        attempts=attempt.num,
                    )
                sent = attempt.num
                try:
                    await self.inventory.refresh(newer_than=asyncio.get_running_loop().time())
                except Unauthorized as exc:
                    self.refused = exc
                    return Verdict.of(Outcome.UNAUTHORIZED, exc, sent)
                except LdbulkError as exc:
                    # Without the listing nobody knows whether the create was applied, and
                    # sending it again blindly is what the engine never does.
                    return Verdict.unsettled(error, exc, sent)
                found = self.inventory.get(target.key)
                if found is not None:
                    return Verdict(
                        outcome=Outcome.CREATED if sent_unclear else Outcome.EXISTS,
                        status=getattr(error, "status", None),
                        integration_id=found,
                        attempts=sent,
                    )
                if self.refused is not None or not attempt.retry():
                    outcome = Outcome.CONFLICT if isinstance(error, Conflict) else Outcome.FAILED
                    return Verdict.of(outcome, error, sent)
        except Stopped:  # before a create's turn came, or while backing off before the next
            return Verdict.stopped(error, sent)
        raise AssertionError("unreachable: every attempt returns or is retried")


@attrs.frozen
class _Failure:
    """The producer's exception, handed to the consumer of the stream."""

    exc: BaseException


_Item = tuple[int, TargetResult] | _Failure | None


class Provisioner:
    """Creates the integrations of many targets concurrently, under the client's pacer.

    ``run(targets)`` collects every result into a :class:`Report`; ``stream(targets)`` hands
    them out as they settle::

        async with provisioner.stream(targets) as results:
            async for result in results:
                ...

    Leaving the ``async with`` block early cancels the rest of the run and leaves no task
    behind. ``stop()`` ends the runs under way gracefully: no create is sent after it (only the
    listing that settles an unclear create), requests in flight finish, and the targets not
    yet sent are reported ``skipped``. Each run has its own state and stats, so one
    provisioner may run many times, even concurrently.
    """

    def __init__(self, client: Client, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.concurrency = concurrency
        self._runs: set[_Run] = set()

    def stop(self) -> None:
        """Send nothing more in the runs under way; what is not settled yet ends ``skipped``."""
        for run in self._runs:
            run.scope.stop.set()

    async def run(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        *,
        on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
        scope: RequestScope | None = None,
    ) -> Report:
        """Provision every target and return the report (results in target order).

        ``scope``, when given, is the run's: its stop signal stops the run (as :meth:`stop`
        does), and its meter counts the run's requests along with whatever it counted before.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        scope = scope if scope is not None else RequestScope()
        indexed: list[tuple[int, TargetResult]] = []
        async with self._indexed(targets, scope) as results:
            async for index, result in results:
                indexed.append((index, result))
                if on_result is not None:
                    maybe = on_result(result)
                    if maybe is not None:
                        await maybe
        indexed.sort(key=lambda pair: pair[0])
        stats = scope.meter.run_stats(elapsed_s=loop.time() - started)
        return Report(results=tuple(result for _, result in indexed), stats=stats)

    @contextlib.asynccontextmanager
    async def stream(
        self, targets: Iterable[Target] | AsyncIterable[Target]
    ) -> AsyncIterator[AsyncIterator[TargetResult]]:
        """Each target's result as soon as it settles (not in target order), in a scope."""
        async with self._indexed(targets, RequestScope()) as indexed:

            async def results() -> AsyncGenerator[TargetResult, None]:
                async for _, result in indexed:
                    yield result

            stream = results()
            try:
                yield stream
            finally:
                await stream.aclose()

    @contextlib.asynccontextmanager
    async def _indexed(
        self, targets: Iterable[Target] | AsyncIterable[Target], scope: RequestScope
    ) -> AsyncIterator[AsyncIterator[tuple[int, TargetResult]]]:
        run = _Run(self.client, self.concurrency, scope)
        # Workers wait for room before taking a target, so a slow consumer holds them back
        # and memory stays flat; the queue itself never blocks a put.
        room = asyncio.Semaphore(self.concurrency * 4)
        queue: asyncio.Queue[_Item] = asyncio.Queue()

        async def results() -> AsyncGenerator[tuple[int, TargetResult], None]:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                room.release()
                yield item

        self._runs.add(run)
        producer = asyncio.create_task(run.produce(targets, queue, room))
        stream = results()
        try:
            yield stream
        finally:
            self._runs.discard(run)
            await stream.aclose()
            if not producer.done():
                producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


async def _numbered(
    targets: Iterable[Target] | AsyncIterable[Target],
) -> AsyncIterator[tuple[int, Target]]:
    index = 0
    if isinstance(targets, AsyncIterable):
        async for target in targets:
            yield index, target
            index += 1
    else:
        for target in targets:
            yield index, target
            index += 1


async def provision(
    client: Client,
    targets: Iterable[Target] | AsyncIterable[Target],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Report:
    """Provision every target through ``client`` and return the report."""
    return await Provisioner(client, concurrency=concurrency).run(targets)
