"""Turning validated manifests into targets, asking the API only where a selector needs it.

Explicit environment lists are used as written, without a request: an environment that does not
exist is the engine's ``not_found`` outcome, not a manifest problem. ``"*"`` and ``{tags: [...]}``
list the project's environments, once per project however many selectors name it. After the
expansion every (project, environment, integration key) must come from exactly one manifest
line, and every selector must match something: a wildcard that silently selects nothing is a
mistake. Those problems, like a project that does not exist, are raised together as one
:class:`~ldbulk.manifest.ManifestError` pointing back at the manifest lines.

Targets come out in manifest order, and within a selector in the API's environment order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import attrs

from ldbulk.errors import NotFound
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
from ldbulk.models import Environment, Target

DEFAULT_CONCURRENCY = 8


class EnvironmentLister(Protocol):
    """What resolution needs from a client: the environments of a project, page after page."""

    def environments(self, project: str) -> AsyncIterator[Environment]:
        """Every environment of ``project``; raises :class:`~ldbulk.errors.NotFound` if the
        project does not exist."""
        ...


@attrs.frozen(kw_only=True)
class ResolvedTarget:
    """A target and the manifest line it came from, so later errors can point back."""

    target: Target
    source: Source


async def resolve(
    manifests: ManifestSet,
    client: EnvironmentLister,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ResolvedTarget]:
    """Expand every selector into targets, each with its source; raise :class:`ManifestError`
    with every problem found. At most ``concurrency`` projects are listed at a time.

    Errors other than a missing project (401, 403, transport failures) propagate unchanged:
    they are about the account or the network, not the manifest.
    """
    selectors = manifests.selectors
    listings = await _list_environments(_projects_to_list(selectors), client, concurrency)
    problems: list[Problem] = []
    resolved: list[ResolvedTarget] = []
    seen: dict[tuple[str, str, str], Source] = {}
    for selector in selectors:
        for environment, source in _expand(selector, listings, problems):
            store = selector.store
            target = Target(
                project=selector.project,
                environment=environment,
                config=store.config,
                on=store.on,
                tags=store.tags,
                name=store.render_name(selector.project, environment),
            )
            first = seen.setdefault(target.key, source)
            if first is not source:
                problems.append(
                    source.problem(
                        f"duplicate target {'/'.join(target.key)} "
                        f"(from {selector.environments.describe()}): also at {first}"
                    )
                )
                continue
            resolved.append(ResolvedTarget(target=target, source=source))
    if problems:
        raise ManifestError(problems)
    return resolved


async def resolve_targets(
    manifests: ManifestSet,
    client: EnvironmentLister,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Target]:
    """The targets of the manifests, wildcards and tag selectors expanded (see :func:`resolve`)."""
    return [item.target for item in await resolve(manifests, client, concurrency=concurrency)]


def _projects_to_list(selectors: Iterable[TargetSelector]) -> list[str]:
    """Projects with a wildcard or tag selector, each once, in manifest order."""
    projects = (s.project for s in selectors if not isinstance(s.environments, EnvironmentKeys))
    return list(dict.fromkeys(projects))


async def _list_environments(
    projects: list[str], client: EnvironmentLister, concurrency: int
) -> dict[str, list[Environment] | None]:
    """Each project's environments, or None for a project that does not exist."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(project: str) -> list[Environment] | None:
        async with gate:
            try:
                return [environment async for environment in client.environments(project)]
            except NotFound:
                return None

    results = await asyncio.gather(*(one(project) for project in projects), return_exceptions=True)
    listings: dict[str, list[Environment] | None] = {}
    for project, result in zip(projects, results, strict=True):
        # Re-raise in manifest order, so the same failure is reported whichever task lost.
        if isinstance(result, BaseException):
            raise result
        listings[project] = result
    return listings


def _expand(
    selector: TargetSelector,
    listings: dict[str, list[Environment] | None],
    problems: list[Problem],
) -> list[tuple[str, Source]]:
    """The environment keys a selector stands for, each with the source to blame for it."""
    chosen = selector.environments
    if isinstance(chosen, EnvironmentKeys):
        return [(item.key, item.source) for item in chosen.items]
    environments = listings[selector.project]
    if environments is None:
        problems.append(selector.project_source.problem(f'project "{selector.project}" not found'))
        return []
    if isinstance(chosen, AllEnvironments):
        matched = [(environment.key, chosen.source) for environment in environments]
        if not matched:
            problems.append(
                chosen.source.problem(f'project "{selector.project}" has no environments')
            )
        return matched
    assert isinstance(chosen, TaggedEnvironments)
    matched = [
        (environment.key, chosen.source)
        for environment in environments
        if chosen.matches(environment.tags)
    ]
    if not matched:
        tags = ", ".join(chosen.tags)
        problems.append(
            chosen.source.problem(
                f'no environment of project "{selector.project}" carries all of the tags [{tags}]'
            )
        )
    return matched
