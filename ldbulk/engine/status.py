"""The status workflow: each target's store status, from the list of every integration.

The list carries each integration's ``_status`` (only ``config`` is reserved to reads by id),
so one poll is one request, however many targets there are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import attrs

from ldbulk.api.models import Integration, Target
from ldbulk.engine.inventory import key_of
from ldbulk.errors import Forbidden, NotFound
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope


@attrs.frozen(kw_only=True)
class StoreState:
    """One target's integration as listed (None when it is not provisioned)."""

    target: Target
    integration: Integration | None
    # False when the target's environment (or its project) does not exist: known only for a
    # target with no integration, after :func:`wait_for_stores` looked.
    environment_exists: bool = True

    @property
    def available(self) -> bool:
        """Whether LaunchDarkly reports the store available."""
        status = self.integration.status if self.integration else None
        return bool(status and status.available)

    @property
    def problem(self) -> str:
        """Why there is no status to show, if there is none."""
        if self.integration is not None:
            return ""
        if not self.environment_exists:
            project, environment, _ = self.target.key
            return f"not found: no environment {environment} in project {project}"
        return "not provisioned"


async def read_states(
    client: Client, targets: Sequence[Target], *, scope: RequestScope | None = None
) -> list[StoreState]:
    """Each target's integration and store status, from one listing."""
    listed = {key_of(item): item for item in await client.list_integrations(scope=scope)}
    return [StoreState(target=target, integration=listed.get(target.key)) for target in targets]


async def wait_for_stores(
    client: Client,
    targets: Sequence[Target],
    *,
    wait_s: float = 0.0,
    interval_s: float = 10.0,
    on_poll: Callable[[list[StoreState], float], None] | None = None,
    scope: RequestScope | None = None,
) -> list[StoreState]:
    """Poll until every target's store is available or ``wait_s`` seconds have passed.

    The deadline holds: the last poll is at the deadline, not an interval after it.
    ``on_poll`` gets each poll's states and the seconds left.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        states = await read_states(client, targets, scope=scope)
        left = max(deadline - loop.time(), 0.0)
        if on_poll is not None:
            on_poll(states, left)
        if all(state.available for state in states) or left <= 0:
            return await _environments_checked(client, states, scope)
        await asyncio.sleep(min(interval_s, left))


async def _environments_checked(
    client: Client, states: list[StoreState], scope: RequestScope | None
) -> list[StoreState]:
    """``states``, each target without an integration told apart: its environment exists (not
    provisioned yet) or does not (a typo, or a project that is gone). One listing per
    project that has such a target; none when every target has its integration."""
    projects = {state.target.project for state in states if state.integration is None}
    missing: set[tuple[str, str]] = set()
    for project in sorted(projects):
        try:
            listed = {env.key async for env in client.environments(project, scope=scope)}
        except NotFound:
            listed = set()
        except Forbidden:
            continue  # a role that may not list them: not provisioned, as far as is known
        missing |= {(project, s.target.environment) for s in states
                    if s.target.project == project and s.target.environment not in listed}
    return [
        attrs.evolve(state, environment_exists=False)
        if state.integration is None and state.target.key[:2] in missing else state
        for state in states
    ]
