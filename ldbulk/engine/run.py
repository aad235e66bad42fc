"""One run of a :class:`~ldbulk.engine.provision.Provisioner`: its state, its workers, and
how each target's verdict becomes its report row.

Everything here lives as long as one run and no longer: the targets seen, the inventory, the
401 that aborted it, its stop signal and counts. The workers are only an upper bound on the
targets in the works; the client's pacer decides how many requests go.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Final, TypeVar, cast

import attrs

from ldbulk.api.models import ErrorBody, Integration, Target
from ldbulk.api.sansio import ROUTE_CREATE, ROUTE_DELETE, ROUTE_GET, ROUTE_PATCH
from ldbulk.engine.inventory import Inventory, key_of
from ldbulk.engine.known import KnownIntegrations
from ldbulk.engine.prune import Pruning
from ldbulk.engine.report import Key, Outcome, TargetResult
from ldbulk.engine.seen import Seen
from ldbulk.engine.verdict import STOPPED, Verdict, shown, unauthorized_reason
from ldbulk.engine.writes import Writes
from ldbulk.errors import (
    LdbulkError,
    Stopped,
    Unauthorized,
)
from ldbulk.http.client import Client
from ldbulk.http.pacer import tallying_waits
from ldbulk.http.scope import RequestScope

_T = TypeVar("_T")


@attrs.define(eq=False)
class Run:
    """One run of a :class:`Provisioner`: everything that must not outlive it or leak into
    the next one (targets seen, the inventory, the 401 that aborted it, its stop signal and
    counts)."""

    client: Client
    scope: RequestScope
    concurrency: int = attrs.field(kw_only=True)
    create_only: bool = attrs.field(kw_only=True)
    rotate_secrets: bool = attrs.field(kw_only=True)
    seen: Seen | None = attrs.field(kw_only=True)
    prune: Pruning | None = attrs.field(kw_only=True)
    listed: Inventory | LdbulkError | None = attrs.field(kw_only=True)
    # A small batch creates without listing first (see ldbulk.engine.batch).
    create_first: bool = attrs.field(default=False, kw_only=True)
    # What the application knew before this run, and learns from it (None: a run on its
    # own; a run that must list for its own sake is handed none).
    known: KnownIntegrations | None = attrs.field(default=None, kw_only=True)
    inventory: Inventory = attrs.field(init=False)
    writes: Writes = attrs.field(init=False)
    tried: set[Key] = attrs.field(factory=set, init=False)
    listing_error: LdbulkError | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        listed, client, scope = self.listed, self.client, self.scope
        self.inventory = listed if isinstance(listed, Inventory) else Inventory(client, scope)
        self.writes = Writes(
            client,
            scope,
            self.inventory,
            create_only=self.create_only,
            rotate_secrets=self.rotate_secrets,
            seen=self.seen,
            exists_on_conflict=self.create_first and self.create_only,
        )

    async def produce(
        self, targets: Iterable[Target] | AsyncIterable[Target], results: Results
    ) -> None:
        """Settle every target with a pool of workers, handing each result to ``results``;
        then, when pruning, delete the leftovers the same way."""
        try:
            await self._plan()
            count = await self._pool(numbered(targets), self.settle, results)
            if self.prune is not None:
                leftovers = numbered(self._leftovers(self.prune), start=count)
                await self._pool(leftovers, self.settle_leftover, results)
            results.close()
        finally:
            await self.inventory.aclose()

    async def _pool(
        self,
        source: Iterator[tuple[int, _T]] | AsyncIterator[tuple[int, _T]],
        settle: Callable[[_T], Awaitable[TargetResult]],
        results: Results,
    ) -> int:
        """Settle every item of ``source`` with ``concurrency`` workers; how many there were."""
        lock = asyncio.Lock()
        count = 0
        admission = Admission(self._in_flight_bound)
        plain = source if isinstance(source, Iterator) else None  # decided once, not per item

        async def worker(number: int) -> None:
            nonlocal count
            while True:
                await admission.turn(number)
                await results.reserve()
                if plain is not None:
                    item = next(plain, None)  # no await: no other worker can come between
                else:
                    async with lock:
                        item = await anext(cast(AsyncIterator[tuple[int, _T]], source), None)
                if item is None:
                    results.unreserve()
                    admission.over()
                    return
                index, what = item
                count = max(count, index + 1)
                results.put((index, await settle(what)))
                admission.settled()

        async with asyncio.TaskGroup() as group:
            for number in range(self.concurrency):
                group.create_task(worker(number))
        return count

    def _in_flight_bound(self) -> int:
        """The pacer's bound for a target's work, which may go by any of the write routes:
        the largest of their bounds where a budget is known (never fewer than any of them
        needs), the run's concurrency while none is."""
        return self.client.pacer.in_flight_bound(WRITE_ROUTES, self.concurrency)

    def _leftovers(self, prune: Pruning) -> list[tuple[Integration, str | None]]:
        """What the prune decided before the first write, in key order: each integration it
        deletes (``None``), and each it may not, with why. Never more: what was decided is
        what was consented to."""
        if self.listing_error is not None:
            return []  # nothing is known of what exists
        rows: list[tuple[Integration, str | None]] = [
            (integration, None)
            for integration in prune.deletes
            if key_of(integration) not in self.tried
        ]
        rows += prune.kept
        return sorted(rows, key=lambda row: key_of(row[0]))

    async def _plan(self) -> None:
        """List existing integrations once (unless the run was handed a listing, or the
        error that listing met); a failure here is every target's failure."""
        if isinstance(self.listed, LdbulkError):
            self._listing_failed(self.listed)
            return
        if self.listed is not None or self.scope.stopped:
            return  # listed already, or stopped before it began: every target is skipped
        known = self.known.fresh() if self.known is not None else None
        if known is not None:
            self.inventory.adopt(known)  # listed lately enough: that listing will do
            return
        if self.create_first:
            return  # a small batch: its 409s and unclear creates list the account if need be
        try:
            await self.inventory.refresh()
        except LdbulkError as exc:
            self._listing_failed(exc)
            return
        if self.known is not None:
            self.known.listed(self.inventory.integrations())

    def _listing_failed(self, exc: LdbulkError) -> None:
        # Abandoned at a stop (or failed as it came): no target was tried, each is skipped.
        if isinstance(exc, Stopped) or self.scope.stopped:
            return
        if isinstance(exc, Unauthorized):
            self.writes.refused = exc
        self.listing_error = exc

    async def settle(self, target: Target) -> TargetResult:
        """One target, from plan to its final outcome; never raises for a target's sake."""
        # A server may quote what it was sent (a host, a table name); values that came from a
        # reference, and secrets, are shown as their reference or not at all.
        key = target.key  # a property, read once: it is every target's
        result = await timed_result(key, self._decide(target, key), target.config.redact)
        if self.known is not None:
            self.known.settled(result)
        return result

    async def settle_leftover(self, leftover: tuple[Integration, str | None]) -> TargetResult:
        """One integration a prune deletes, or may not (and why), to its final outcome."""
        integration, kept_because = leftover
        return await timed_result(
            key_of(integration), self._delete(integration, kept_because), str
        )

    async def _delete(self, integration: Integration, kept_because: str | None) -> Verdict:
        if kept_because is not None:
            return Verdict.skipped("not_pruned", kept_because)
        refused = self.writes.refused
        if refused is not None:
            return Verdict.skipped("skipped", unauthorized_reason(refused))
        if self.scope.stopped:
            return Verdict.skipped("stopped", STOPPED)
        return await self.writes.delete(integration)

    async def _decide(self, target: Target, key: Key) -> Verdict:
        if key in self.tried:
            return Verdict.skipped("duplicate", "same target given earlier in this run")
        self.tried.add(key)
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
        refused = self.writes.refused
        if refused is not None:
            return Verdict.skipped("skipped", unauthorized_reason(refused))
        if self.scope.stopped:
            return Verdict.skipped("stopped", STOPPED)
        existing = self.inventory.get(key)
        if existing is not None:
            return await self.writes.existing(target, existing)
        return await self.writes.create(target)


async def timed_result(
    key: Key, verdict: Awaitable[Verdict], redact: Callable[[str], str]
) -> TargetResult:
    """A verdict as a report row, timed, its message redacted, escaped and cut; never raises
    for one target's sake."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with tallying_waits() as waits:
        try:
            decided = await verdict
        except Exception as exc:  # one target's surprise must not end the run
            decided = Verdict(
                outcome=Outcome.FAILED,
                error=ErrorBody(code="internal_error", message=f"{type(exc).__name__}: {exc}"),
            )
    error = decided.error
    if error is not None:
        decided = attrs.evolve(
            decided, error=attrs.evolve(error, message=shown(redact(error.message)))
        )
    return decided.result(key, elapsed_s=loop.time() - started, waited_s=waits.seconds)


# The routes a target's work goes by, once the listing is made.
WRITE_ROUTES: Final = (ROUTE_CREATE, ROUTE_GET, ROUTE_PATCH, ROUTE_DELETE)


class Admission:
    """How many of a run's workers take targets at once: as many as the pacer finds worth
    having in flight (a window's budget within a round trip, see
    :meth:`~ldbulk.http.pacer.Pacer.in_flight_bound`), at most the run's concurrency. More
    would only wait in the pacer, each costing CPU there; fewer would leave a window unused.

    Worker ``n`` works while ``n`` is below the bound. The bound moves only when the pacer
    learns a budget or a longer round trip, so the workers it parks are woken only when it
    grows, not at every settled target.
    """

    def __init__(self, bound: Callable[[], int]) -> None:
        self._bound = bound
        self._last = bound()
        self._grown = asyncio.Event()
        self._over = False

    async def turn(self, worker: int) -> None:
        """Until the bound lets worker number ``worker`` (from 0) take a target, or nothing
        is left to take. The bound as the last settled target left it: worked out once per
        target, not again by each worker asking."""
        while worker >= self._last and not self._over:
            await self._grown.wait()

    def over(self) -> None:
        """No target is left: every parked worker goes on, to find that out and end."""
        self._over = True
        self._grown.set()

    def settled(self) -> None:
        """A target settled: its answers may have moved the bound."""
        bound = self._bound()
        if bound > self._last:
            self._grown.set()
            self._grown = asyncio.Event()
        self._last = bound


class Results:
    """A run's results on their way to its consumer. A worker reserves room for a result
    before it takes a target, so a slow consumer holds the workers back and memory stays
    flat; a result put in never waits."""

    def __init__(self, room: int) -> None:
        self._room = asyncio.Semaphore(room)
        # Unbounded: the room is the bound. None marks the end of the run.
        self._queue: asyncio.Queue[tuple[int, TargetResult] | None] = asyncio.Queue()

    async def reserve(self) -> None:
        """Wait for room for one more result."""
        await self._room.acquire()

    def unreserve(self) -> None:
        """The room reserved will not be used (no target was left)."""
        self._room.release()

    def put(self, result: tuple[int, TargetResult]) -> None:
        """One target's result (with its index), in the room reserved for it."""
        self._queue.put_nowait(result)

    def close(self) -> None:
        """Every result is in."""
        self._queue.put_nowait(None)

    async def stream(self) -> AsyncGenerator[tuple[int, TargetResult], None]:
        """The results as they come, until the run's end."""
        while (item := await self._queue.get()) is not None:
            self._room.release()
            yield item


def numbered(
    targets: Iterable[_T] | AsyncIterable[_T], *, start: int = 0
) -> Iterator[tuple[int, _T]] | AsyncIterator[tuple[int, _T]]:
    """Each target with its index, from ``start``; a plain iterator for a plain iterable,
    which the workers take from without a lock."""
    if isinstance(targets, AsyncIterable):
        return _numbered_async(targets, start)
    return enumerate(targets, start)


async def _numbered_async(targets: AsyncIterable[_T], start: int) -> AsyncIterator[tuple[int, _T]]:
    index = start
    async for target in targets:
        yield index, target
        index += 1
