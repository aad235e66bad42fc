"""Plan and apply persistent store integrations over many targets.

A run lists the account's integrations once; then workers create what is missing and converge
what exists (:mod:`ldbulk.engine.writes`), all sharing the client's pacer. The pacer, not the
number of workers, decides how many requests are in flight: it sends as many as the budget it
has learned allows when a window opens, and holds the rest; the workers are only an upper
bound, sized so that a window's whole budget can go at once.
Results stream out as targets settle, and every target settles exactly once.

LaunchDarkly allows one integration per environment and integration key, and answers a second
create with 409: a create whose answer was lost is sent again, and a 409 is settled by the
list endpoint, so no target ever gets two integrations.
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
from typing import Final, TypeVar

import attrs

from ldbulk.api.models import ErrorBody, Integration, Target
from ldbulk.engine.batch import creates_first, known_count
from ldbulk.engine.inventory import Inventory, key_of
from ldbulk.engine.known import KnownIntegrations
from ldbulk.engine.prune import Pruning
from ldbulk.engine.report import Key, Outcome, Report, TargetResult
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

# The most requests in flight by default: a window's budget of up to ~1,000 goes out within
# two round trips. Many more than a budget allows only wait in the pacer, which costs little.
MAX_CONCURRENCY: Final = 512


def default_concurrency() -> int:
    """The most requests in flight by default: :data:`MAX_CONCURRENCY`, or fewer where the
    process may not open that many sockets (each request in flight holds one, and a sandbox
    in the same process one more)."""
    try:
        import resource
    except ImportError:
        return MAX_CONCURRENCY
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONCURRENCY
    return max(8, min(MAX_CONCURRENCY, (soft - 64) // 2))


def concurrency_or_default(concurrency: int | None) -> int:
    """``concurrency``, or :func:`default_concurrency` when None: computed when a run starts,
    not at import, so a process that raises its limit of open files after importing ldbulk
    gets the default that limit allows."""
    return default_concurrency() if concurrency is None else concurrency

_T = TypeVar("_T")


class _Run:
    """One run of a :class:`Provisioner`: everything that must not outlive it or leak into
    the next one (targets seen, the inventory, the 401 that aborted it, its stop signal and
    counts)."""

    def __init__(
        self,
        client: Client,
        scope: RequestScope,
        *,
        concurrency: int,
        create_only: bool,
        rotate_secrets: bool,
        seen: Seen | None,
        prune: Pruning | None,
        listed: Inventory | LdbulkError | None,
        create_first: bool = False,
        known: KnownIntegrations | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.prune = prune
        self.scope = scope
        self.listed = listed
        # A small batch creates without listing first (see ldbulk.engine.batch).
        self.create_first = create_first
        # What the application knew before this run, and learns from it (None: a run on its
        # own; a run that must list for its own sake is handed none).
        self.known = known
        self.inventory = listed if isinstance(listed, Inventory) else Inventory(client, scope)
        self.writes = Writes(
            client,
            scope,
            self.inventory,
            create_only=create_only,
            rotate_secrets=rotate_secrets,
            seen=seen,
            exists_on_conflict=create_first and create_only,
        )
        self.tried: set[Key] = set()
        self.listing_error: LdbulkError | None = None

    async def produce(
        self, targets: Iterable[Target] | AsyncIterable[Target], results: _Results
    ) -> None:
        """Settle every target with a pool of workers, handing each result to ``results``;
        then, when pruning, delete the leftovers the same way."""
        try:
            await self._plan()
            count = await self._pool(_numbered(targets), self.settle, results)
            if self.prune is not None:
                leftovers = _numbered(self._leftovers(self.prune), start=count)
                await self._pool(leftovers, self.settle_leftover, results)
            results.close()
        finally:
            await self.inventory.aclose()

    async def _pool(
        self,
        source: AsyncIterator[tuple[int, _T]],
        settle: Callable[[_T], Awaitable[TargetResult]],
        results: _Results,
    ) -> int:
        """Settle every item of ``source`` with ``concurrency`` workers; how many there were."""
        lock = asyncio.Lock()
        count = 0

        async def worker() -> None:
            nonlocal count
            while True:
                await results.reserve()
                async with lock:
                    item = await anext(source, None)
                if item is None:
                    results.unreserve()
                    return
                index, what = item
                count = max(count, index + 1)
                results.put((index, await settle(what)))

        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(worker())
        return count

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
        result = await timed_result(target.key, self._decide(target), target.config.redact)
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

    async def _decide(self, target: Target) -> Verdict:
        if target.key in self.tried:
            return Verdict.skipped("duplicate", "same target given earlier in this run")
        self.tried.add(target.key)
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
        existing = self.inventory.get(target.key)
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


class _Results:
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


class Provisioner:
    """Converges the integrations of many targets concurrently, under the client's pacer:
    creates what is missing, and patches what differs from its target (``create_only`` leaves
    what exists alone, unread; ``rotate_secrets`` writes the secrets LaunchDarkly redacts on
    read, which cannot be compared; ``seen`` skips the reads of integrations an earlier run
    left as they are, see :mod:`ldbulk.engine.seen`). A run given a :class:`Pruning` (decided
    by :meth:`PruneScope.decide <ldbulk.engine.prune.PruneScope.decide>` before the run) then
    deletes exactly its deletes. ``concurrency`` caps the targets in the works at
    once (by default :func:`default_concurrency`, computed when the provisioner is made); how
    many requests go is the pacer's decision (see the module's docstring).

    A small batch (a few targets, in an account not known to be small) goes create-first,
    without listing the account (see :mod:`ldbulk.engine.batch` for the rule);
    ``list_first`` makes every run list the account first, whatever its size. ``known``
    (:class:`~ldbulk.engine.known.KnownIntegrations`, shared by an application's runs) stands
    in for the listing while it is fresh, and learns from every run; a run that lists for its
    own sake (a prune, a state file, a listing handed in) neither uses nor feeds it.

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

    def __init__(
        self,
        client: Client,
        *,
        concurrency: int | None = None,
        create_only: bool = False,
        rotate_secrets: bool = False,
        seen: Seen | None = None,
        list_first: bool = False,
        known: KnownIntegrations | None = None,
    ) -> None:
        concurrency = concurrency_or_default(concurrency)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.list_first = list_first
        self.known = known
        self.concurrency = concurrency
        self.create_only = create_only
        self.rotate_secrets = rotate_secrets
        self.seen = seen
        self._runs: set[_Run] = set()

    def stop(self) -> None:
        """Send nothing more in the runs under way; what is not settled yet ends ``skipped``.

        The same drain as setting the ``stop`` event a run was given (the documented way, the
        same on :func:`provision` and :func:`~ldbulk.engine.apply.apply`), for every run of
        this provisioner at once."""
        for run in self._runs:
            run.scope.stop.set()

    async def run(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        *,
        on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
        scope: RequestScope | None = None,
        prune: Pruning | None = None,
        listed: Inventory | LdbulkError | None = None,
        stop: asyncio.Event | None = None,
    ) -> Report:
        """Provision every target and return the report (results in target order, then the
        deletes of a prune).

        ``stop``: once set, the run drains gracefully (the documented way to stop; the rest is
        reported ``skipped``). ``scope``, when given, is the run's: its stop signal stops the
        run (as :meth:`stop` does), and its meter counts the run's requests along with
        whatever it counted before.
        ``prune``: once every target is settled, delete what it decided.
        ``listed``: the account's listing already made in ``scope`` (an :class:`Inventory`
        refreshed once), or the error it met; the run then lists nothing itself.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        if scope is None:
            scope = RequestScope(stop=stop) if stop is not None else RequestScope()
        elif stop is not None:
            raise ValueError("give stop or scope, not both: a scope carries its own stop")
        indexed: list[tuple[int, TargetResult]] = []
        async with self._indexed(targets, scope, prune, listed) as results:
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
        async with self._indexed(targets, RequestScope(), None, None) as indexed:

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
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        scope: RequestScope,
        prune: Pruning | None,
        listed: Inventory | LdbulkError | None,
    ) -> AsyncIterator[AsyncIterator[tuple[int, TargetResult]]]:
        needs_listing = prune is not None or listed is not None or self.seen is not None
        run = _Run(
            self.client,
            scope,
            concurrency=self.concurrency,
            create_only=self.create_only,
            rotate_secrets=self.rotate_secrets,
            seen=self.seen,
            prune=prune,
            listed=listed,
            create_first=creates_first(
                targets=known_count(targets),
                account_size=self.client.account_size,
                needs_listing=self.list_first or needs_listing,
            ),
            known=None if needs_listing else self.known,
        )
        self._runs.add(run)
        # The run's tasks live in its task group: leaving the block, however it is left,
        # ends them all, and an error of the run comes out as itself.
        try:
            async with asyncio.TaskGroup() as group:
                run.inventory.serve_in(group)
                results = _Results(self.concurrency * 4)
                producer = group.create_task(run.produce(targets, results))
                stream = results.stream()
                try:
                    yield stream
                finally:
                    await stream.aclose()
                    producer.cancel()
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        finally:
            self._runs.discard(run)


async def _numbered(
    targets: Iterable[_T] | AsyncIterable[_T], *, start: int = 0
) -> AsyncIterator[tuple[int, _T]]:
    index = start
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
    concurrency: int | None = None,
    create_only: bool = False,
    list_first: bool = False,
    stop: asyncio.Event | None = None,
    on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
    known: KnownIntegrations | None = None,
) -> Report:
    """Provision every target through ``client`` and return the report (a small batch goes
    create-first, unless ``list_first``; ``known`` stands in for the listing while fresh:
    see :class:`Provisioner`).

    Two ways to stop. Setting ``stop`` drains gracefully: nothing more is sent, requests in
    flight get a second to be answered, and the report comes back with the rest ``skipped``.
    Cancelling the task that awaits this is the hard stop: nothing is sent after it, no task
    is left behind, and the results that settled before it were handed to ``on_result``
    (sync or async) as they did.
    """
    provisioner = Provisioner(
        client,
        concurrency=concurrency,
        create_only=create_only,
        list_first=list_first,
        known=known,
    )
    return await provisioner.run(targets, on_result=on_result, stop=stop)
