"""The ``apply`` workflow as the library offers it: what ``ldbulk apply`` does, minus the
terminal.

Resolve the manifests' selectors, skip what a journal of an interrupted run already settled,
provision the rest while journaling each result, and return one report with a row for every
line of the manifests, in manifest order: targets, and the lines that gave none (a project
that does not exist, a listing the API refused). An async service gets exactly what the
command line gets::

    report = await ldbulk.apply(client, manifests, journal=Path("run.journal"))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from ldbulk.api.models import Target
from ldbulk.engine.deletes import Consent, decide_deletes
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.journal import Journal, discard, read_settled, same_path
from ldbulk.engine.provision import Provisioner, run_in_scope
from ldbulk.engine.prune import Pruning
from ldbulk.engine.report import Key, Outcome, Report, TargetResult, utc_now
from ldbulk.engine.resolve import Resolution, ResolvedTarget, Unresolved, resolve_in
from ldbulk.engine.seen import Seen
from ldbulk.engine.verdict import Verdict, shown
from ldbulk.errors import ConfigError, LdbulkError, PruneRefused
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import ManifestSet

log = logging.getLogger("ldbulk.apply")


@attrs.frozen(kw_only=True)
class ApplyStarted:
    """The selectors are resolved: targets this run will try, and those settled before."""

    todo: int
    done_before: int
    # The manifest lines that gave no target (a missing project, a selector matching nothing):
    # each ends as a row of the report, never tried.
    unresolved: tuple[Unresolved, ...] = ()
    # A settled target's manifest line (``file:line``) and store name, for a caller that logs
    # per-target lines. The table behind it is built at the first call: a run that never
    # asks (100,000 quiet creates) never pays for it.
    locate: Callable[[Key], tuple[str, str]] = lambda _: ("", "")


@attrs.frozen(kw_only=True)
class ApplyOptions:
    """How :func:`apply` goes about it; every option may also be given to it by keyword.

    - ``create_only``: leave existing integrations alone, unread (one listing for a re-run).
    - ``rotate_secrets``: write the secrets LaunchDarkly redacts on read (they cannot be
      compared, so they are otherwise left as they are).
    - ``prune``: then delete the integrations that carry the manifests' ownership tag and
      that no target names: anywhere for a tag of their own, only in their scope (the
      projects and integration keys they name) for the shared default tag; see
      :mod:`ldbulk.engine.prune` for every rule. Those rows follow the targets' rows.
      The deletes are decided from the run's one listing of the account, before the first
      write, and exactly those are deleted (a line naming an environment that does not exist
      keeps every integration of its project: its project's environments are listed to see).
    - ``max_deletes``: a prune that would delete more is refused before the first write
      (:class:`~ldbulk.errors.PruneRefused`).
    - ``consent``: asked before the first write when the prune would delete something; an
      answer of False refuses the run (:class:`~ldbulk.errors.PruneRefused`). Without it,
      asking for ``prune`` is the consent (the caller reviewed what it deletes).
    - ``state``: a file where each run leaves the version it left each integration at; the
      next run skips reading those still at that version for an unchanged target (see
      :mod:`ldbulk.engine.seen`). It is read before any request and written at the end.
    - ``check_stores``: first test each store the manifests use from here (``ldbulk check``,
      the ``check`` extra); a failing store's targets are not tried, and end ``skipped`` with
      the failed step as the reason.
    - ``journal``: append each settled target there as it settles (a new journal replaces an
      old one, unless it is the ``resume`` journal, which is continued).
    - ``resume``: a journal of an interrupted run; its settled targets are not tried again
      and keep their result. It is read, and refused with a
      :class:`~ldbulk.errors.ConfigError` if it is not a journal of these manifests (their
      :attr:`~ldbulk.manifest.ManifestSet.digest`), before any request is sent.
    - ``stop``: once set, nothing more is sent; requests in flight finish, the rest is
      reported ``skipped``.
    - ``on_start`` / ``on_result``: called when the targets are known, and per settled target;
      plain functions or coroutine functions (awaited before the run goes on).
    - ``concurrency``: the most targets in the works at once (see
      :class:`~ldbulk.engine.provision.Provisioner`).
    - ``collect_less``: False leaves the process' garbage collector alone during the run
      (see :mod:`ldbulk.engine.collector`).
    """

    concurrency: int | None = None
    journal: Path | None = None
    resume: Path | None = None
    stop: asyncio.Event | None = None
    on_start: Callable[[ApplyStarted], Awaitable[None] | None] | None = None
    on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None
    create_only: bool = False
    rotate_secrets: bool = False
    prune: bool = False
    max_deletes: int | None = None
    consent: Consent | None = None
    state: Path | None = None
    check_stores: bool = False
    collect_less: bool = True


async def apply(
    client: Client,
    manifests: ManifestSet,
    options: ApplyOptions | None = None,
    /,
    **keywords: Any,
) -> Report:
    """Make LaunchDarkly hold every target of ``manifests`` as they say; return the report.

    Missing integrations are created, existing ones read and patched where they differ, as
    ``options`` say (see :class:`ApplyOptions`), or the same options given by keyword
    (``apply(client, manifests, prune=True)``; over ``options`` when both are given).

    Manifests whose references are not all set (``require_secrets=False``) are refused with a
    :class:`~ldbulk.errors.ConfigError` before any request: apply writes values.
    """
    options = attrs.evolve(options or ApplyOptions(), **keywords)
    if manifests.unset_references:
        unset = ", ".join(manifests.unset_references)
        raise ConfigError(f"apply needs every reference's value; not set: {unset}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    started_at = utc_now()
    earlier = _settled_before(options, manifests.digest)
    scope = RequestScope(stop=options.stop)
    seen = Seen.for_client(options.state, client) if options.state is not None else None
    # Opened before the first request, so a journal that cannot be written is bad input
    # (nothing sent), not a failure halfway.
    with _Journaling(options.journal, options.resume, manifests.digest, earlier) as writer:
        resolution = await resolve_in(scope, manifests, client, concurrency=options.concurrency,
                                      check_environments=options.prune)
        listed, pruning = await _pruning(client, scope, manifests, resolution, options, writer)
        targets = resolution.targets
        todo = [target for target in targets if target.key not in earlier]
        unchecked: dict[Key, TargetResult] = {}
        if options.check_stores and todo:
            todo, unchecked = await _checked(manifests, todo)
        await _started(options, resolution, todo)
        settled = _settler(writer, seen, targets, options.on_result)
        for result in unchecked.values():
            await _called(settled(result))
        # Nothing left to try (all settled before, or no line resolved): not even a listing.
        report = Report(results=())
        if todo or pruning is not None:
            # A manifest is re-applied night after night, and a re-run finds nearly every
            # target there: one listing answers them all, where create-first would send a
            # 409 for each.
            report = await run_in_scope(
                _provisioner(client, options, seen), scope, todo, on_result=settled,
                prune=pruning, listed=listed,
            )
    if seen is not None and options.state is not None:
        _save(seen, options.state)
    fresh = {result.key: result for result in report.results}
    del report  # its rows are made anew with their source, one at a time: never two copies
    rows = _rows(resolution, earlier | unchecked, fresh)
    stats = scope.meter.run_stats(elapsed_s=loop.time() - started)
    return Report(results=tuple(rows), stats=stats, started_at=started_at,
                  finished_at=utc_now(), base_url=client.base_url)


async def _started(options: ApplyOptions, resolution: Resolution, todo: list[Target]) -> None:
    """Tell the caller the targets are known (``on_start``), if it asked."""
    if options.on_start is not None:
        done_before = len(resolution.targets) - len(todo)
        await _called(options.on_start(ApplyStarted(
            todo=len(todo), done_before=done_before,
            unresolved=tuple(resolution.unresolved), locate=_locator(resolution),
        )))


async def _pruning(
    client: Client,
    scope: RequestScope,
    manifests: ManifestSet,
    resolution: Resolution,
    options: ApplyOptions,
    writer: _Journaling,
) -> tuple[Inventory | LdbulkError | None, Pruning | None]:
    """With ``prune``, the run's listing (or the error it met) and what the prune decided
    over it; a refused prune leaves no journal behind. Without, nothing."""
    if not options.prune:
        return None, None
    try:
        return await decide_deletes(
            client, scope, manifests, resolution, options.max_deletes, options.consent
        )
    except PruneRefused:
        writer.abandon()
        raise


def _settler(
    writer: _Journaling,
    seen: Seen | None,
    targets: list[Target],
    on_result: Callable[[TargetResult], Awaitable[None] | None] | None,
) -> Callable[[TargetResult], Awaitable[None] | None]:
    """What is done with each settled result: journaled, remembered for the state file, and
    handed to the caller."""
    # Only a state file needs each result's target (a dict of 100,000 costs ~10 MB).
    wished = {target.key: target for target in targets} if seen is not None else {}

    def settled(result: TargetResult) -> Awaitable[None] | None:
        writer.record(result)
        if seen is not None and result.key in wished:
            seen.record(wished[result.key], result)
        return on_result(result) if on_result is not None else None

    return settled


async def _called(maybe: Awaitable[None] | None) -> None:
    """What a callback returned, awaited when it is a coroutine (callbacks may be either)."""
    if maybe is not None:
        await maybe


def _locator(resolution: Resolution) -> Callable[[Key], tuple[str, str]]:
    """``key -> (file:line, store)`` over the resolved targets, its table made when first
    asked."""
    table: dict[Key, ResolvedTarget] = {}

    def locate(key: Key) -> tuple[str, str]:
        if not table:
            table.update(
                (entry.target.key, entry)
                for entry in resolution.entries
                if isinstance(entry, ResolvedTarget)
            )
        entry = table.get(key)
        if entry is None:  # a prune's delete: no manifest line names it
            return ("", "")
        return (f"{entry.source.file}:{entry.source.line}", entry.store)

    return locate


def _provisioner(client: Client, options: ApplyOptions, seen: Seen | None) -> Provisioner:
    """The provisioner of an apply: it lists the account first (see :func:`apply`)."""
    return Provisioner(client, concurrency=options.concurrency, create_only=options.create_only,
                       rotate_secrets=options.rotate_secrets, seen=seen, list_first=True,
                       collect_less=options.collect_less)


def _settled_before(options: ApplyOptions, digest: str) -> dict[Key, TargetResult]:
    """The results of the resumed journal (none without one) that hold under this run's flags.
    A journal does not say how its run was started: what it left unread (create-only) or did
    not write (the secrets, unless rotating) is tried again."""
    if options.resume is None:
        return {}
    return {
        key: result
        for key, result in read_settled(options.resume, digest=digest).items()
        if not (result.outcome is Outcome.EXISTS and not options.create_only)
        and not (result.outcome is Outcome.UNCHANGED and options.rotate_secrets)
    }


def _rows(
    resolution: Resolution, before: dict[Key, TargetResult], fresh: dict[Key, TargetResult]
) -> list[TargetResult]:
    """One row per manifest line's target or unresolved line, in manifest order (``before``:
    the rows settled without this run's provisioner; ``fresh``: this run's, taken out as
    they are used), then a prune's deletes."""
    # One string per manifest line, shared by its targets' rows (a flow list puts them all on
    # one line).
    sources: dict[tuple[str, int], str] = {}

    def located(entry: ResolvedTarget) -> str:
        source = entry.source
        at = (source.file, source.line)
        return sources.get(at) or sources.setdefault(at, f"{source.file}:{source.line}")

    rows = [
        attrs.evolve(
            before.get(entry.target.key) or fresh.pop(entry.target.key),
            source=located(entry),
            store=entry.store,
        )
        if isinstance(entry, ResolvedTarget)
        else entry.result()
        for entry in resolution.entries
    ]
    # What is left are the deletes of a prune: those a resumed journal settled, then this run's.
    targeted = {target.key for target in resolution.targets}
    rows += [result for key, result in before.items() if key not in targeted and key not in fresh]
    rows += fresh.values()
    return rows


def _save(seen: Seen, state: Path) -> None:
    """Write the state file; a failure costs the next run its shortcut, never this report."""
    try:
        seen.save(state)
    except OSError as exc:
        log.warning("state %s: cannot write (%s); the next run reads everything", state,
                    exc.strerror)


async def _checked(
    manifests: ManifestSet, targets: list[Target]
) -> tuple[list[Target], dict[Key, TargetResult]]:
    """The targets whose store passed its preflight, and a ``skipped`` row for each of the
    others, naming the step that failed."""
    # Imported here: the check extra (redis-py, aiobotocore) is only needed when asked for.
    from ldbulk.check import check_stores, split_targets, stores_in_use

    checks = await check_stores(stores_in_use(manifests))
    passed, failed = split_targets(targets, checks)
    rows = {
        target.key: Verdict.skipped(
            "store_check_failed",
            shown(target.config.redact(f"not tried: the store's check failed: {check.reason}")),
        ).result(target.key)
        for target, check in failed
    }
    return passed, rows


class _Journaling:
    """The run's journal, if it keeps one: a new journal carries over what ``resume``
    settled, so resuming from it later loses nothing; a journal that fails while the run goes
    on is dropped with a warning, never at the cost of the report."""

    def __init__(
        self,
        path: Path | None,
        resume: Path | None,
        digest: str,
        earlier: dict[Key, TargetResult],
    ) -> None:
        self._path = path
        self._continued = path is not None and resume is not None and same_path(path, resume)
        self._digest = digest
        self._earlier = earlier
        self._journal: Journal | None = None

    def __enter__(self) -> _Journaling:
        if self._path is None:
            return self
        journal = Journal(self._path, digest=self._digest, resume=self._continued)
        try:
            self._journal = journal.__enter__()
            if not self._continued:
                for result in self._earlier.values():
                    self._journal.record(result)
        except OSError as exc:
            raise ConfigError(f"journal {self._path}: cannot write it: {exc.strerror}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._journal is not None:
            with contextlib.suppress(OSError):
                self._journal.__exit__(None, None, None)

    def abandon(self) -> None:
        """Close the journal and, unless it continues the one resumed, remove it: a run
        refused before its first write leaves no journal to resume."""
        if self._journal is None:
            return
        with contextlib.suppress(OSError):
            self._journal.__exit__(None, None, None)
        self._journal = None
        if not self._continued and self._path is not None:
            discard(self._path)

    def record(self, result: TargetResult) -> None:
        """Append one result; on a write error, warn once and keep running without it."""
        if self._journal is None:
            return
        try:
            self._journal.record(result)
        except OSError as exc:
            log.warning("journal %s: cannot write (%s); going on without it", self._path,
                        exc.strerror)
            self._journal = None
