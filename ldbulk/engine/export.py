"""The export workflow: the account's integrations, as a version-1 manifest that describes them.

For an account set up by hand: ``export`` reads what is there and writes the manifest that
``plan`` then finds all in place, so the stores can be kept in git from then on.

- **Reads only, at the account's pace.** One list request, then each selected integration read
  by id through the client's pacer (so at the rate limit's bound, never past it): the list's
  items carry no ``config``, which LaunchDarkly documents as "only included when requesting a
  single integration by ID". Then each project's environments are listed, to write
  ``environments: "*"`` for a store that covers them all.
- **Streaming.** Each integration read is reduced at once to where it is and its store's shape
  (:mod:`~ldbulk.engine.export_shape`), and written to the partial file when there is one
  (:mod:`~ldbulk.engine.export_partial`): memory follows the number of integrations in small
  records, not their answers. An export that is stopped resumes from the partial file and
  reads only the integrations it had not.
- **One store per distinct setup.** Integrations with the same integration key, the same
  non-secret config, ``on``, tags and name become one store, whatever their environments. A name
  that mentions its project or environment key (``Big segments for web/production``) becomes the
  template ``{project}``/``{environment}`` stand in for, so per-environment names still share a
  store; rendering the template gives each environment's name back exactly.
- **Secrets by reference, never by value.** The fields the config field table marks secret (the
  Redis password, the DynamoDB external id) become ``${VAR}`` references: LaunchDarkly masks the
  password on read, and the external id, though read back in clear, is kept out of every output
  like any secret. An unset Redis password stays ``""``. Stores with the same connection (same
  integration key and non-secret config) share one variable, since they share the credential.
  Any other field answered masked (:func:`~ldbulk.api.fields.looks_masked`) is a reference too,
  never its mask; integrations whose masks differ are kept apart.
- **Deterministic.** Store names, variable names and the order of everything depend only on
  what the account holds, never on the order LaunchDarkly lists it in
  (:mod:`~ldbulk.engine.export_document`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import attrs

from ldbulk.api.models import CONFIG_CLASSES, DEFAULT_OWNERSHIP_TAG, Integration
from ldbulk.engine.export_document import (
    Placed,
    alike_projects,
    build,
    for_every_project,
    manifest_yaml,
)
from ldbulk.engine.export_partial import (
    PartialWriter,
    Read,
    load_partial,
    partial_writer,
)
from ldbulk.engine.export_shape import Shape, SkippedIntegration, shape_of
from ldbulk.engine.provision import concurrency_or_default
from ldbulk.errors import LdbulkError, NotFound, Stopped, Unauthorized
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope
from ldbulk.text import natural_key

__all__ = ["ExportResult", "ExportWatch", "SkippedIntegration", "export"]

T = TypeVar("T")


class _Listed(NamedTuple):
    """What a read by id needs of a listed integration, and no more: 100,000 of them are held
    while they are read, where the listing's items would take several times the memory."""

    project: str
    environment: str
    integration: str
    id: str


@attrs.frozen(kw_only=True)
class ExportResult:
    """What :func:`export` found: the manifest document, the variables it needs, what it left out.

    ``document`` is a plain dict in the manifest's own key order (version, stores, targets).
    ``variables`` maps each ``${VAR}`` the document uses to the stores using it: set each to the
    secret LaunchDarkly holds before loading the manifest. ``skipped`` lists the integrations
    the manifest could not describe. ``by_hand`` names, for each (project, store) target, the
    environments whose integration lacks the ownership tag (made by hand); ``integrations``
    counts the integrations the document describes.
    """

    document: dict[str, Any]
    variables: Mapping[str, tuple[str, ...]]
    skipped: tuple[SkippedIntegration, ...] = ()
    by_hand: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict)
    integrations: int = 0

    def to_yaml(self) -> str:
        """The document as YAML, keys in the manifest's order, booleans and ``on`` bare, a
        comment above each target that holds integrations made by hand."""
        return manifest_yaml(self.document, self.by_hand)


@attrs.frozen(kw_only=True)
class ExportWatch:
    """Callbacks for a display: ``listed(to_read, read_before)`` once the listing is in (how
    many integrations are still to read, how many the partial file had), ``read()`` after each
    integration read. Each may be a plain function or a coroutine function (awaited before
    the export goes on)."""

    listed: Callable[[int, int], Awaitable[None] | None] = lambda to_read, read_before: None
    read: Callable[[], Awaitable[None] | None] = lambda: None


async def export(
    client: Client,
    *,
    projects: Sequence[str] = (),
    stop: asyncio.Event | None = None,
    concurrency: int | None = None,
    partial: Path | None = None,
    watch: ExportWatch | None = None,
) -> ExportResult:
    """The account's integrations (those of ``projects``; all when none) as a version-1
    manifest document, with the variables its secret references need.

    Reads only: one list request, one read by id per selected integration, at most
    ``concurrency`` at a time, then one listing of each exported project's environments and,
    when the whole account is exported and its projects have the same targets, one of its
    projects (to write ``project: "*"`` when they are all of them). An
    integration deleted between the list and its read is left out; any other API error is
    raised, as is :class:`~ldbulk.errors.Stopped` once ``stop`` is set (nothing more is sent
    after it; cancelling the task that awaits the export ends it at once). With ``partial``
    (a path), each read is written there as it is made, and what an earlier export of the same
    ``projects`` wrote there is not read again; the caller removes the file once the output is
    written.
    """
    if isinstance(projects, str):
        raise TypeError("projects: expected a sequence of project keys, got one string")
    watch = watch or ExportWatch()
    scope = RequestScope(stop=stop)
    before = load_partial(partial, projects) if partial is not None else {}
    kept, todo, unknown = _sort_listing(
        await client.list_integrations(lean=True, scope=scope), set(projects), before
    )
    await _called(watch.listed(len(todo), len(kept)))
    reads: list[Read] = list(kept.values())
    workers = max(1, concurrency_or_default(concurrency))
    # One object per store, however many integrations have it.
    shapes: dict[Shape, Shape] = {}
    async with _writer(partial, projects, kept) as writer:

        async def read(item: _Listed) -> None:
            done = await _read_one(client, item, scope, shapes)
            if writer is not None:
                writer.write(item.id, done)
            reads.append(done)
            await _called(watch.read())

        await _each(todo, read, workers, scope)
    placed = [item for item in reads if isinstance(item, Placed)]
    skipped = unknown + [item for item in reads if isinstance(item, SkippedIntegration)]
    skipped.sort(key=lambda s: (natural_key(s.project), natural_key(s.environment)))
    environments = await _environments({item.project for item in placed}, client, scope, workers)
    built = build(placed, environments)
    alike = None if projects else alike_projects(built)
    if alike is not None and await _account(client, scope) == alike:
        built = for_every_project(built)
    return ExportResult(
        document=built.document, variables=built.variables, skipped=tuple(skipped),
        by_hand=built.by_hand, integrations=built.integrations,
    )  # fmt: skip


def _sort_listing(
    listed: list[Integration], wanted: set[str], before: Mapping[str, Read]
) -> tuple[dict[str, Read], list[_Listed], list[SkippedIntegration]]:
    """The listing, selected and split: reads the partial file has of integrations still
    listed, integrations to read, and those no manifest can describe (never read). The list
    is emptied as it goes, each item freed once sorted."""
    kept: dict[str, Read] = {}
    todo: list[_Listed] = []
    unknown: list[SkippedIntegration] = []
    listed.reverse()
    while listed:
        item = listed.pop()
        if wanted and item.project_key not in wanted:
            continue
        if item.id in before:
            kept[item.id] = before[item.id]
        elif item.integration_key not in CONFIG_CLASSES:
            unknown.append(_skip(item, "not a redis or dynamodb integration"))
        else:
            project = sys.intern(item.project_key)  # one string per project, not per item
            todo.append(_Listed(project, item.environment_key, item.integration_key, item.id))
    return kept, todo, unknown


@contextlib.asynccontextmanager
async def _writer(
    partial: Path | None, projects: Sequence[str], kept: dict[str, Read]
) -> AsyncIterator[PartialWriter | None]:
    if partial is None:
        yield None
        return
    with partial_writer(partial, projects, kept) as writer:
        yield writer


async def _called(maybe: Awaitable[None] | None) -> None:
    """What a watch's callback returned, awaited when it is a coroutine."""
    if maybe is not None:
        await maybe


async def _read_one(
    client: Client, item: _Listed, scope: RequestScope | None, shapes: dict[Shape, Shape]
) -> Read:
    """One listed integration read by id and described at once (the answer is not kept)."""
    try:
        integration = await client.get_integration(*item, scope=scope)
    except NotFound:
        return None  # deleted since it was listed: nothing to describe
    shape = shape_of(integration)
    if isinstance(shape, str):
        return _skip(integration, shape)
    return Placed(
        # The listing's strings, not the answer's: those are freed with it.
        project=item.project,
        environment=item.environment,
        shape=shapes.setdefault(shape, shape),
        owned=DEFAULT_OWNERSHIP_TAG in integration.tags,
    )


async def _each(
    items: Iterable[T],
    work: Callable[[T], Awaitable[None]],
    concurrency: int,
    scope: RequestScope | None,
) -> None:
    """``work`` on each item, ``concurrency`` at a time, none started once ``scope`` stops;
    the first error cancels the others and is raised."""
    queue = iter(items)

    async def worker() -> None:
        # One shared iterator: a worker takes the next item when its own is done.
        for item in queue:
            await work(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _environments(
    projects: Iterable[str], client: Client, scope: RequestScope | None, concurrency: int
) -> dict[str, frozenset[str]]:
    """Each project's environment keys; a project whose listing fails is left out (its targets
    keep explicit lists, right whatever the listing says): the reads before it are not lost to
    it. A stop, or a token refused, still ends the export."""
    found: dict[str, frozenset[str]] = {}

    async def listing(project: str) -> None:
        try:
            found[project] = frozenset(
                [environment.key async for environment in client.environments(project, scope=scope)]
            )
        except (Stopped, Unauthorized):
            raise
        except LdbulkError:
            return

    await _each(sorted(projects), listing, concurrency, scope)
    return found


async def _account(client: Client, scope: RequestScope | None) -> frozenset[str] | None:
    """The keys of every project of the account, or None when they could not be listed (no
    target is then written for every project). A stop, or a token refused, still ends the
    export."""
    try:
        return frozenset([project.key async for project in client.projects(scope=scope)])
    except (Stopped, Unauthorized):
        raise
    except LdbulkError:
        return None


def _skip(integration: Integration, reason: str) -> SkippedIntegration:
    return SkippedIntegration(
        project=integration.project_key,
        environment=integration.environment_key,
        integration=integration.integration_key,
        reason=reason,
    )
