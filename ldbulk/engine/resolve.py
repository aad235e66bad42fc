"""Turning validated manifests into targets, asking the API only where a selector needs it.

Explicit environment lists are used as written, without a request: an environment that does not
exist is the engine's ``not_found`` outcome, not a manifest problem. Only a prune has their
projects listed, to keep a typo from making a real environment's integration look unnamed.
``"*"`` and ``{tags: [...]}`` list the project's environments, once per project however many
selectors name it; a line over the account's projects (``project: "*"``, ``projects: {tags:
[...]}``) is first made a line for each project it matches (:mod:`.resolve_projects`). After
the expansion every (project, environment, integration key) must come
from exactly one manifest line, and every selector must match something: a wildcard that
silently selects nothing is a mistake. Those problems, like a project that does not exist or a
listing the API refused, end as :class:`Unresolved` lines pointing back at the manifest, so one
bad line never stops the others (:func:`resolve_targets` turns them back into exceptions for
callers that want that).

Targets come out in manifest order, and within a selector in the API's environment order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Final, Protocol

import attrs

from ldbulk.api.models import Environment, ErrorBody, Target
from ldbulk.engine.provision import concurrency_or_default
from ldbulk.engine.report import Outcome, TargetResult
from ldbulk.engine.resolve_projects import (
    NoProject,
    ProjectLister,
    list_projects,
    needs_listing,
    per_project,
)
from ldbulk.engine.verdict import Verdict, error_info, outcome_of, shown
from ldbulk.errors import (
    Forbidden,
    HTTPStatusError,
    LdbulkError,
    NotFound,
    Stopped,
    Unauthorized,
)
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import (
    AllEnvironments,
    EnvironmentKeys,
    ManifestError,
    ManifestSet,
    Problem,
    Source,
    TaggedEnvironments,
    TargetSelector,
)


class EnvironmentLister(ProjectLister, Protocol):
    """What resolution needs from a client: the environments of a project, page after page
    (and the account's projects, for a line over them)."""

    def environments(
        self, project: str, *, scope: RequestScope | None = None
    ) -> AsyncIterator[Environment]:
        """Every environment of ``project``; raises :class:`~ldbulk.errors.NotFound` if the
        project does not exist."""
        ...


@attrs.frozen(kw_only=True)
class ResolvedTarget:
    """A target and the manifest line it came from, so later errors can point back."""

    target: Target
    # Where it was written: its selector's source, or the explicit list that names it at
    # ``index`` (the item's own source is made when asked for: a run may hold 100,000).
    origin: Source | EnvironmentKeys
    index: int = 0
    store: str = ""  # the manifest's name of the target's store

    @property
    def source(self) -> Source:
        """The manifest line the target came from."""
        if isinstance(self.origin, EnvironmentKeys):
            return self.origin.source_of(self.index)
        return self.origin


@attrs.frozen(kw_only=True)
class Unresolved:
    """A manifest line, or one target of it, that gives nothing to provision, and why.

    Either a ``problem`` with the line (a missing project, a selector matching nothing, a
    duplicate) or the API ``error`` that kept a selector from being expanded (401, an
    unreachable API...). Both end as a row of the report, never as the end of the run.
    """

    project: str
    environment: str  # the environment key, or the selector as written ("*", {tags: [...]})
    integration: str
    outcome: Outcome
    problem: Problem
    error: LdbulkError | None = attrs.field(default=None, eq=False, repr=False)

    def result(self) -> TargetResult:
        """This line as a report row."""
        if self.error is not None:
            info = error_info(self.error)
            info = attrs.evolve(info, message=shown(f"{self.problem.message}: {info.message}"))
        else:
            code = "duplicate" if self.outcome is Outcome.SKIPPED else self.outcome.value
            info = ErrorBody(code=code, message=str(self.problem))
        verdict = Verdict(
            outcome=self.outcome, status=getattr(self.error, "status", None), error=info
        )
        key = (self.project, self.environment, self.integration)
        return verdict.result(key, source=f"{self.problem.file}:{self.problem.line}")


@attrs.frozen(kw_only=True)
class Resolution:
    """Every line of the manifests, expanded: targets and unresolved lines, in manifest order."""

    entries: tuple[ResolvedTarget | Unresolved, ...]
    # Projects where a prune may delete nothing, each with why: an explicit list names an
    # environment the project does not have (known only when resolved with
    # ``check_environments``), or the project's environments could not be listed to check.
    prune_blocks: Mapping[str, str] = attrs.field(factory=dict)
    # The manifests' lines, each for one project: a line over the account's projects once for
    # each project it matched (what a prune counts as named).
    selectors: tuple[TargetSelector, ...] = ()

    @property
    def resolved(self) -> list[ResolvedTarget]:
        """The targets, each with its source."""
        return [entry for entry in self.entries if isinstance(entry, ResolvedTarget)]

    @property
    def targets(self) -> list[Target]:
        """The targets to provision."""
        return [entry.target for entry in self.resolved]

    @property
    def unresolved(self) -> list[Unresolved]:
        """The lines that give nothing to provision."""
        return [entry for entry in self.entries if isinstance(entry, Unresolved)]

    def raise_for_unresolved(self) -> None:
        """Raise the first API error in manifest order, else a :class:`ManifestError` listing
        every other problem; return when every line resolved."""
        for entry in self.unresolved:
            if entry.error is not None:
                raise entry.error
        if self.unresolved:
            raise ManifestError([entry.problem for entry in self.unresolved])


async def resolve(
    manifests: ManifestSet,
    client: EnvironmentLister,
    *,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
    check_environments: bool = False,
) -> Resolution:
    """Expand every selector into targets, each with its source. At most ``concurrency``
    projects are listed at a time; once ``stop`` is set nothing more is listed, and the lines
    not resolved by then are ``skipped``.

    ``check_environments``: also list the projects of explicit environment lists, and note
    in :attr:`Resolution.prune_blocks` each project where a list names an environment that
    does not exist (a prune asks for it: a typo must not make a real environment's
    integration look like a leftover). Their targets stay targets either way.

    Nothing here raises for the API's sake: a missing project, a selector that matches nothing,
    a duplicate, and a listing that failed (401, 403, an unreachable API) each become an
    :class:`Unresolved` line, so the rest of the run goes on and the report has a row for it.
    """
    return await resolve_in(RequestScope(stop=stop), manifests, client, concurrency=concurrency,
                            check_environments=check_environments)


async def resolve_in(
    scope: RequestScope, manifests: ManifestSet, client: EnvironmentLister, *,
    concurrency: int | None = None, check_environments: bool = False,
) -> Resolution:
    """:func:`resolve` within ``scope``: the request scope of the run that applies the targets
    next, whose stop stops the listings too and whose meter counts them with its requests."""
    lines = await _per_project(manifests.selectors, client, scope)
    selectors = [line for line in lines if isinstance(line, TargetSelector)]
    listings = await _list_environments(
        _projects_to_list(selectors, every=check_environments),
        client,
        concurrency_or_default(concurrency),
        scope,
    )
    entries: list[ResolvedTarget | Unresolved] = []
    seen: dict[tuple[str, str, str], ResolvedTarget] = {}
    for line in lines:
        if isinstance(line, Unresolved):
            entries.append(line)
        else:
            entries += _targets_of(line, listings, seen)
    blocks = _prune_blocks(selectors, listings) if check_environments else {}
    return Resolution(entries=tuple(entries), prune_blocks=blocks, selectors=tuple(selectors))


async def _per_project(
    selectors: Sequence[TargetSelector], client: EnvironmentLister, scope: RequestScope | None
) -> list[TargetSelector | Unresolved]:
    """Each line for one project, a line over the account's projects once for each it
    matches (the projects listed once, only when some line needs them), or why it gives
    none."""
    if not needs_listing(selectors):
        return list(selectors)
    listing = await list_projects(client, scope)
    lines: list[TargetSelector | Unresolved] = []
    for selector in selectors:
        made = per_project(selector, listing)
        if isinstance(made, NoProject):
            projects = selector.describe_projects()
            outcome = Outcome.NOT_FOUND if made.error is None else _listing_outcome(made.error)
            environments = selector.environments.describe()
            lines.append(_unresolved(selector, environments, outcome, made.problem, made.error,
                                     project=projects))
        else:
            lines += made
    return lines


def _targets_of(
    selector: TargetSelector,
    listings: dict[str, _Listing],
    seen: dict[tuple[str, str, str], ResolvedTarget],
) -> list[ResolvedTarget | Unresolved]:
    """The targets of a line for one project, or why it gives none; a target ``seen`` on an
    earlier line is a duplicate (and ``seen`` holds the line's own targets after)."""
    expanded = _expand(selector, listings)
    if isinstance(expanded, Unresolved):
        return [expanded]
    entries: list[ResolvedTarget | Unresolved] = []
    chosen = selector.environments
    origin = chosen if isinstance(chosen, EnvironmentKeys) else chosen.source
    store = selector.store
    for index, environment in enumerate(expanded):
        target = Target(
            project=selector.project,
            environment=environment,
            config=store.config,
            on=store.on,
            tags=store.tags,
            name=store.render_name(selector.project, environment),
            ownership_tag=store.ownership_tag,
        )
        entry = ResolvedTarget(target=target, origin=origin, index=index, store=store.name)
        first = seen.setdefault(target.key, entry)
        if first is not entry:
            problem = entry.source.problem(
                f"duplicate target {'/'.join(target.key)} (from {_described(selector)}): "
                f"also at {first.source}"
            )
            entries.append(_unresolved(selector, environment, Outcome.SKIPPED, problem))
            continue
        entries.append(entry)
    return entries


def _described(selector: TargetSelector) -> str:
    """A line's selectors as a message says them: its environments', and its projects' when
    the line is over the account's projects."""
    environments = selector.environments.describe()
    if selector.projects is None:
        return environments
    return f"projects {selector.projects.describe()}, environments {environments}"


def _listing_outcome(error: LdbulkError) -> Outcome:
    """How the lines a listing was for end when it failed: as a target would for the token or
    its role refused, or the run stopped; failed for any other error (a 400, a 429), which
    says nothing of those lines' targets."""
    if type(error) in _AS_FOR_A_TARGET:
        return outcome_of(error) or Outcome.FAILED
    return Outcome.FAILED


async def resolve_targets(
    manifests: ManifestSet,
    client: EnvironmentLister,
    *,
    concurrency: int | None = None,
) -> list[Target]:
    """The targets of the manifests, wildcards and tag selectors expanded (see :func:`resolve`);
    strict: raises for the first line that did not resolve (see
    :meth:`Resolution.raise_for_unresolved`)."""
    resolution = await resolve(manifests, client, concurrency=concurrency)
    resolution.raise_for_unresolved()
    return resolution.targets


def _projects_to_list(selectors: Iterable[TargetSelector], *, every: bool) -> list[str]:
    """Projects with a wildcard or tag selector (``every``: all projects), each once, in
    manifest order."""
    projects = (
        s.project for s in selectors if every or not isinstance(s.environments, EnvironmentKeys)
    )
    return list(dict.fromkeys(projects))


def _prune_blocks(
    selectors: Iterable[TargetSelector], listings: dict[str, _Listing]
) -> dict[str, str]:
    """Each project where an explicit list names an environment its listing does not hold
    (or that could not be listed), with why a prune deletes nothing there."""
    blocks: dict[str, str] = {}
    for selector in selectors:
        chosen = selector.environments
        project = selector.project
        if not isinstance(chosen, EnvironmentKeys) or project in blocks:
            continue
        environments = listings.get(project)
        if isinstance(environments, LdbulkError):
            blocks[project] = (
                f'not deleted: the environments of project "{project}" could not be listed '
                f"to check the list at {chosen.source}"
            )
            continue
        if environments is None:
            blocks[project] = f'not deleted: project "{project}" ({chosen.source}) not found'
            continue
        known = {environment.key for environment in environments}
        for index, key in enumerate(chosen.keys):
            if key not in known:
                blocks[project] = (
                    f'not deleted: {chosen.source_of(index)} names environment "{key}", '
                    f'which project "{project}" does not have (a typo would make another '
                    "environment's integration look unnamed)"
                )
                break
    return blocks


@attrs.frozen
class _Listed:
    """What selectors use of a listed environment (its id and name are not kept: a run over
    100,000 environments holds all of them until every project is listed)."""

    key: str
    tags: tuple[str, ...]


# A project's listing: its environments, None when the project does not exist, or the error
# that kept it from being listed.
_Listing = list[_Listed] | None | LdbulkError

# The listing errors that end the lines which needed the listing as they would end a target:
# the token or its role refused, or the run stopped. Any other (a 400 or a 429 of a listing)
# says nothing of those lines' targets: they failed.
_AS_FOR_A_TARGET: Final = (Unauthorized, Forbidden, Stopped)


async def _list_environments(
    projects: list[str],
    client: EnvironmentLister,
    concurrency: int,
    scope: RequestScope | None,
) -> dict[str, _Listing]:
    """Each project's listing; every project is tried, whatever happens to the others."""
    gate = asyncio.Semaphore(max(1, concurrency))
    listings: dict[str, _Listing] = {}

    async def one(project: str) -> None:
        async with gate:
            try:
                listings[project] = [
                    _Listed(environment.key, tuple(environment.tags))
                    async for environment in client.environments(project, scope=scope)
                ]
            except NotFound:
                listings[project] = None
            except LdbulkError as exc:
                if scope is not None and scope.stopped and not isinstance(exc, HTTPStatusError):
                    # Abandoned at the stop, not answered: its lines were not tried.
                    exc = Stopped(f"not listed: the run was stopped ({exc})")
                listings[project] = exc

    # Each listing is kept in the dict, not returned through gather: the event loop may hold
    # on to a finished gather (and its result, every environment of every project: ~35 MB for
    # 100,000) long after this returns.
    await asyncio.gather(*(one(project) for project in projects))
    return {project: listings[project] for project in projects}


def _unresolved(
    selector: TargetSelector,
    environment: str,
    outcome: Outcome,
    problem: Problem,
    error: LdbulkError | None = None,
    *,
    project: str | None = None,
) -> Unresolved:
    return Unresolved(
        project=selector.project if project is None else project,
        environment=environment,
        integration=selector.store.integration_key,
        outcome=outcome,
        problem=problem,
        error=error,
    )


def _expand(
    selector: TargetSelector, listings: dict[str, _Listing]
) -> Sequence[str] | Unresolved:
    """The environment keys a selector stands for (an explicit list's in its order), or why
    it stands for none."""
    chosen = selector.environments
    if isinstance(chosen, EnvironmentKeys):
        return chosen.keys
    described = chosen.describe()
    environments = listings[selector.project]
    if isinstance(environments, LdbulkError):
        outcome = _listing_outcome(environments)
        what = f'could not list the environments of project "{selector.project}"'
        problem = chosen.source.problem(what)
        return _unresolved(selector, described, outcome, problem, environments)
    if environments is None:
        problem = selector.project_source.problem(f'project "{selector.project}" not found')
        return _unresolved(selector, described, Outcome.NOT_FOUND, problem)
    if isinstance(chosen, AllEnvironments):
        matched = [environment.key for environment in environments]
        if not matched:
            problem = chosen.source.problem(f'project "{selector.project}" has no environments')
            return _unresolved(selector, described, Outcome.NOT_FOUND, problem)
        return matched
    assert isinstance(chosen, TaggedEnvironments)
    matched = [
        environment.key for environment in environments if chosen.matches(environment.tags)
    ]
    if not matched:
        tags = ", ".join(chosen.tags)
        problem = chosen.source.problem(
            f'no environment of project "{selector.project}" carries all of the tags [{tags}]'
        )
        return _unresolved(selector, described, Outcome.NOT_FOUND, problem)
    return matched
