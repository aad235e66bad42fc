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
from typing import Final

import attrs

from ldbulk.api.models import Target
from ldbulk.engine.batch import creates_first, known_count
from ldbulk.engine.collector import collected_less
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.known import KnownIntegrations
from ldbulk.engine.prune import Pruning
from ldbulk.engine.report import Report, TargetResult
from ldbulk.engine.run import Results, Run
from ldbulk.engine.seen import Seen
from ldbulk.errors import (
    LdbulkError,
)
from ldbulk.http.client import Client
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

@attrs.define(eq=False)
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
    While a run is under way the process' garbage collector looks at young objects less often
    (see :mod:`ldbulk.engine.collector`); ``collect_less=False`` leaves it alone.

    ``run(targets)`` collects every result into a :class:`Report`; ``stream(targets)`` hands
    them out as they settle::

        async with provisioner.stream(targets) as results:
            async for result in results:
                ...

    One way to stop, and one hard stop. Setting the ``stop`` event a run was given drains it
    gracefully: no create is sent after it (only the listing that settles an unclear create),
    requests in flight get a second to be answered, and the targets not yet sent are reported
    ``skipped``. Cancelling the task that awaits the run (or leaving the ``async with`` block
    of a stream early) ends it at once: nothing is sent after, and no task is left behind.
    Each run has its own state and stats, so one provisioner may run many times, even
    concurrently.
    """

    client: Client
    concurrency: int = attrs.field(
        default=None, kw_only=True, converter=concurrency_or_default,
        validator=attrs.validators.ge(1),
    )
    create_only: bool = attrs.field(default=False, kw_only=True)
    rotate_secrets: bool = attrs.field(default=False, kw_only=True)
    seen: Seen | None = attrs.field(default=None, kw_only=True)
    list_first: bool = attrs.field(default=False, kw_only=True)
    known: KnownIntegrations | None = attrs.field(default=None, kw_only=True)
    collect_less: bool = attrs.field(default=True, kw_only=True)

    async def run(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        *,
        on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> Report:
        """Provision every target and return the report (results in target order).

        ``on_result`` (sync or async) is handed each result as it settles; once ``stop`` is
        set, the run drains gracefully and the rest is reported ``skipped``.
        """
        return await run_in_scope(self, RequestScope(stop=stop), targets, on_result=on_result)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        *,
        stop: asyncio.Event | None = None,
    ) -> AsyncIterator[AsyncIterator[TargetResult]]:
        """Each target's result as soon as it settles (not in target order); ``stop`` as in
        :meth:`run`."""
        async with self._indexed(targets, RequestScope(stop=stop), None, None) as indexed:

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
        run = Run(
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
        # The run's tasks live in its task group: leaving the block, however it is left,
        # ends them all, and an error of the run comes out as itself.
        try:
            with collected_less(self.collect_less):
                async with asyncio.TaskGroup() as group:
                    run.inventory.serve_in(group)
                    results = Results(self.concurrency * 4)
                    producer = group.create_task(run.produce(targets, results))
                    stream = results.stream()
                    try:
                        yield stream
                    finally:
                        await stream.aclose()
                        producer.cancel()
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None


async def run_in_scope(
    provisioner: Provisioner,
    scope: RequestScope,
    targets: Iterable[Target] | AsyncIterable[Target],
    *,
    on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
    prune: Pruning | None = None,
    listed: Inventory | LdbulkError | None = None,
) -> Report:
    """:meth:`Provisioner.run` within ``scope``, the request scope that apply's resolution and
    listing used: its stop stops the run, and its meter counts the run's requests along with
    whatever it counted before. ``prune``: once every target is settled, delete what it
    decided (its deletes come after the targets in the report). ``listed``: the account's
    listing already made in ``scope`` (an :class:`Inventory` refreshed once), or the error
    it met; the run then lists nothing itself.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    indexed: list[tuple[int, TargetResult]] = []
    async with provisioner._indexed(targets, scope, prune, listed) as results:
        async for index, result in results:
            indexed.append((index, result))
            if on_result is not None:
                maybe = on_result(result)
                if maybe is not None:
                    await maybe
    indexed.sort(key=lambda pair: pair[0])
    stats = scope.meter.run_stats(elapsed_s=loop.time() - started)
    return Report(results=tuple(result for _, result in indexed), stats=stats)


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

    Setting ``stop`` drains gracefully: nothing more is sent, requests in
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
