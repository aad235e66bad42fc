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
import enum
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Final

import attrs

from ldbulk.client import Client
from ldbulk.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPStatusError,
    LdbulkError,
    NotFound,
    RateLimited,
    ResponseFormatError,
    TransportError,
    Unauthorized,
)
from ldbulk.models import Integration, Target
from ldbulk.report import ErrorInfo, Outcome, Report, TargetResult

DEFAULT_CONCURRENCY: Final = 8

Key = tuple[str, str, str]

# A status error that says the request was answered and not applied, and why.
_FINAL: Final[dict[type[HTTPStatusError], Outcome]] = {
    BadRequest: Outcome.INVALID,
    Forbidden: Outcome.FORBIDDEN,
    NotFound: Outcome.NOT_FOUND,
    Unauthorized: Outcome.UNAUTHORIZED,
    RateLimited: Outcome.RATE_LIMITED,
}


def _error_info(exc: LdbulkError) -> ErrorInfo:
    if isinstance(exc, HTTPStatusError):
        return ErrorInfo(code=exc.code, message=exc.message, id=exc.request_id)
    return ErrorInfo(code=type(exc).__name__, message=str(exc))


class Inventory:
    """The account's integrations by (project, environment, integration key), from list-all.

    Refreshes are single-flight: when many creates fail at once, they share one list request
    that started after all of them failed, instead of sending one each.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ids: dict[Key, str] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._refresh_started = -1.0

    def get(self, key: Key) -> str | None:
        """The id of the integration at ``key`` as of the last listing, if any."""
        return self._ids.get(key)

    def add(self, integration: Integration) -> None:
        """Record an integration this run created."""
        self._ids[_key_of(integration)] = integration.id

    async def refresh(self, *, newer_than: float | None = None) -> None:
        """List the integrations again, unless a listing started after ``newer_than`` will do."""
        loop = asyncio.get_running_loop()
        if self._refresh is not None and (
            newer_than is None or self._refresh_started >= newer_than
        ):
            await asyncio.shield(self._refresh)
            return
        self._refresh_started = loop.time()
        self._refresh = asyncio.ensure_future(self._load())
        await asyncio.shield(self._refresh)

    async def _load(self) -> None:
        integrations = await self._client.list_integrations()
        self._ids = {_key_of(integration): integration.id for integration in integrations}


def _key_of(integration: Integration) -> Key:
    return (integration.project_key, integration.environment_key, integration.integration_key)


@attrs.define
class _Progress:
    aborted: bool = False
    stopping: bool = False
    seen: set[Key] = attrs.field(factory=set)


class Provisioner:
    """Creates the integrations of many targets concurrently, under the client's pacer.

    ``results(targets)`` streams each target's :class:`TargetResult` as it settles;
    ``run(targets)`` collects them into a :class:`Report`. ``stop()`` lets in-flight creates
    finish and reports the targets not yet started as ``skipped``.
    """

    def __init__(self, client: Client, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.concurrency = concurrency
        self.inventory = Inventory(client)
        self._state = _Progress()

    def stop(self) -> None:
        """Start no new target; the rest are reported ``skipped``."""
        self._state.stopping = True

    async def run(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        *,
        on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
    ) -> Report:
        """Provision every target and return the report (results in target order)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        before = self.client.stats
        indexed: list[tuple[int, TargetResult]] = []
        async for index, result in self._indexed_results(targets):
            indexed.append((index, result))
            if on_result is not None:
                maybe = on_result(result)
                if maybe is not None:
                    await maybe
        indexed.sort(key=lambda pair: pair[0])
        stats = self.client.stats.run_stats(elapsed_s=loop.time() - started, since=before)
        return Report(results=tuple(result for _, result in indexed), stats=stats)

    async def results(
        self, targets: Iterable[Target] | AsyncIterable[Target]
    ) -> AsyncIterator[TargetResult]:
        """Each target's result as soon as it settles (not in target order)."""
        async for _, result in self._indexed_results(targets):
            yield result

    async def _indexed_results(
        self, targets: Iterable[Target] | AsyncIterable[Target]
    ) -> AsyncIterator[tuple[int, TargetResult]]:
        # A bounded queue: when the consumer is slow the workers wait, so memory stays flat.
        queue: asyncio.Queue[tuple[int, TargetResult] | None] = asyncio.Queue(
            maxsize=self.concurrency * 4
        )
        producer = asyncio.create_task(self._produce(targets, queue))
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            if not producer.done():
                producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _produce(
        self,
        targets: Iterable[Target] | AsyncIterable[Target],
        queue: asyncio.Queue[tuple[int, TargetResult] | None],
    ) -> None:
        try:
            listing_error = await self._plan()
            source = _numbered(targets)
            lock = asyncio.Lock()

            async def worker() -> None:
                while True:
                    async with lock:
                        item = await anext(source, None)
                    if item is None:
                        return
                    index, target = item
                    result = await self._settle(target, listing_error)
                    await queue.put((index, result))

            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(worker())
        finally:
            await queue.put(None)

    async def _plan(self) -> LdbulkError | None:
        """List existing integrations once; a failure here is every target's failure."""
        try:
            await self.inventory.refresh()
        except Unauthorized as exc:
            self._state.aborted = True
            return exc
        except LdbulkError as exc:
            return exc
        return None

    async def _settle(self, target: Target, listing_error: LdbulkError | None) -> TargetResult:
        """One target, from plan to its final outcome."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        verdict = await self._decide(target, listing_error)
        return TargetResult(
            project=target.project,
            environment=target.environment,
            integration=target.integration_key,
            outcome=verdict.outcome,
            status=verdict.status,
            integration_id=verdict.integration_id,
            attempts=verdict.attempts,
            error=verdict.error,
            elapsed_s=loop.time() - started,
        )

    async def _decide(self, target: Target, listing_error: LdbulkError | None) -> _Verdict:
        if target.key in self._state.seen:
            return _Verdict(
                outcome=Outcome.SKIPPED,
                error=ErrorInfo(code="duplicate", message="same target given earlier in this run"),
            )
        self._state.seen.add(target.key)
        if self._state.aborted or self._state.stopping:
            reason = "the run was aborted" if self._state.aborted else "the run was stopped"
            return _Verdict(
                outcome=Outcome.SKIPPED, error=ErrorInfo(code="skipped", message=reason)
            )
        if listing_error is not None:
            return _Verdict(
                outcome=Outcome.FAILED,
                status=getattr(listing_error, "status", None),
                error=ErrorInfo(
                    code="listing_failed",
                    message=f"could not list existing integrations: {listing_error}",
                ),
            )
        existing = self.inventory.get(target.key)
        if existing is not None:
            return _Verdict(outcome=Outcome.EXISTS, integration_id=existing)
        return await self._create(target)

    async def _create(self, target: Target) -> _Verdict:
        """Create, and when the answer is unclear, look before creating again."""
        loop = asyncio.get_running_loop()
        attempts = 0
        failures = 0
        sent_unclear = False  # a create of ours may have been applied without our knowing
        while True:
            attempts += 1
            try:
                integration = await self.client.create_integration(
                    target.project,
                    target.environment,
                    target.config,
                    on=target.on,
                    tags=target.tags,
                    name=target.name,
                )
            except (TransportError, ResponseFormatError, Conflict) as exc:
                error: LdbulkError = exc
                sent_unclear = sent_unclear or not isinstance(exc, Conflict)
            except HTTPStatusError as exc:
                if isinstance(exc, Unauthorized):
                    self._state.aborted = True
                outcome = _FINAL.get(type(exc))
                if outcome is not None:
                    return _Verdict.of(outcome, exc, attempts)
                error = exc  # 5xx, or a status the spec does not name: unclear
                sent_unclear = True
            else:
                self.inventory.add(integration)
                return _Verdict(
                    outcome=Outcome.CREATED,
                    status=201,
                    integration_id=integration.id,
                    attempts=attempts,
                )

            failed_at = loop.time()
            try:
                await self.inventory.refresh(newer_than=failed_at)
            except Unauthorized as exc:
                self._state.aborted = True
                return _Verdict.of(Outcome.UNAUTHORIZED, exc, attempts)
            except LdbulkError:
                pass  # could not look: retrying is still safe, a second create gets a 409
            found = self.inventory.get(target.key)
            if found is not None:
                return _Verdict(
                    outcome=Outcome.CREATED if sent_unclear else Outcome.EXISTS,
                    status=getattr(error, "status", None),
                    integration_id=found,
                    attempts=attempts,
                )
            failures += 1
            if self._state.aborted or not self.client.spend_retry(failures):
                outcome = Outcome.CONFLICT if isinstance(error, Conflict) else Outcome.FAILED
                return _Verdict.of(outcome, error, attempts)
            await asyncio.sleep(self.client.backoff(failures))


@attrs.frozen(kw_only=True)
class _Verdict:
    """How a target ended, before the timing is added."""

    outcome: Outcome
    status: int | None = None
    integration_id: str | None = None
    attempts: int = 0
    error: ErrorInfo | None = None

    @classmethod
    def of(cls, outcome: Outcome, exc: LdbulkError, attempts: int) -> _Verdict:
        """A verdict ending in an error (a status error or a transport failure)."""
        return cls(
            outcome=outcome,
            status=getattr(exc, "status", None),
            attempts=attempts,
            error=_error_info(exc),
        )


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


class Action(enum.StrEnum):
    """What ``apply`` would do for a target."""

    CREATE = "create"
    EXISTS = "exists"
    NOT_FOUND = "not_found"  # the project or environment does not exist


@attrs.frozen(kw_only=True)
class PlanItem:
    """One target and what ``apply`` would do with it."""

    target: Target
    action: Action
    integration_id: str | None = None


async def plan(client: Client, targets: Iterable[Target]) -> list[PlanItem]:
    """What ``apply`` would do per target, using only reads.

    One list of the existing integrations, and one listing of environments per project whose
    targets would be created, to tell a create from a 404.
    """
    inventory = Inventory(client)
    await inventory.refresh()
    environments: dict[str, set[str]] = {}
    items = []
    for target in targets:
        existing = inventory.get(target.key)
        if existing is not None:
            items.append(PlanItem(target=target, action=Action.EXISTS, integration_id=existing))
            continue
        if target.project not in environments:
            try:
                environments[target.project] = {
                    env.key async for env in client.environments(target.project)
                }
            except NotFound:
                environments[target.project] = set()
        known = target.environment in environments[target.project]
        items.append(PlanItem(target=target, action=Action.CREATE if known else Action.NOT_FOUND))
    return items
