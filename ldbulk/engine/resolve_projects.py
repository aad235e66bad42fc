"""Lines over the account's projects (``project: "*"``, ``projects: {tags: [...]}``) made into
one line for each project they match, from one listing of the account's projects.

The listing is asked for only when some line needs it, once however many lines do. A line
that matches no project, like an environment selector that matches no environment, is a
mistake worth a report row, not silence; so is a line whose projects could not be listed.
What the lines made here select in each project, and whether two lines select one target, is
then decided as for a line written for that project (:mod:`ldbulk.engine.resolve`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import attrs

from ldbulk.api.models import Project
from ldbulk.errors import HTTPStatusError, LdbulkError, Stopped
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import AllProjects, Problem, TargetSelector


class ProjectLister(Protocol):
    """What a line over the account's projects needs from a client: the account's projects."""

    def projects(self, *, scope: RequestScope | None = None) -> AsyncIterator[Project]:
        """Every project of the account, page after page."""
        ...


@attrs.frozen
class ListedProject:
    """What selectors use of a listed project."""

    key: str
    tags: tuple[str, ...]


# The account's projects, or the error that kept them from being listed.
ProjectListing = list[ListedProject] | LdbulkError


@attrs.frozen(kw_only=True)
class NoProject:
    """Why a line over the account's projects gives no line: it matched none (``error`` is
    None), or the projects could not be listed."""

    problem: Problem
    error: LdbulkError | None = None


def needs_listing(selectors: Sequence[TargetSelector]) -> bool:
    """Whether some line is over the account's projects."""
    return any(selector.projects is not None for selector in selectors)


async def list_projects(client: ProjectLister, scope: RequestScope | None) -> ProjectListing:
    """The account's projects, in the API's order, or the error the listing met."""
    try:
        return [
            ListedProject(project.key, tuple(project.tags))
            async for project in client.projects(scope=scope)
        ]
    except LdbulkError as exc:
        if scope is not None and scope.stopped and not isinstance(exc, HTTPStatusError):
            # Abandoned at the stop, not answered: the lines were not tried.
            return Stopped(f"not listed: the run was stopped ({exc})")
        return exc


def per_project(
    selector: TargetSelector, listing: ProjectListing
) -> Sequence[TargetSelector] | NoProject:
    """The line once for each project it matches, in the listing's order (a line written for
    one project as it is), or why it gives none."""
    chosen = selector.projects
    if chosen is None:
        return (selector,)
    if isinstance(listing, LdbulkError):
        problem = chosen.source.problem("could not list the projects of the account")
        return NoProject(problem=problem, error=listing)
    if isinstance(chosen, AllProjects):
        matched = [project.key for project in listing]
        if not matched:
            return NoProject(problem=chosen.source.problem("the account has no projects"))
    else:
        matched = [project.key for project in listing if chosen.matches(project.tags)]
        if not matched:
            tags = ", ".join(chosen.tags)
            problem = chosen.source.problem(f"no project carries all of the tags [{tags}]")
            return NoProject(problem=problem)
    return [attrs.evolve(selector, project=key) for key in matched]
