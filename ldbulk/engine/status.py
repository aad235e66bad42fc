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
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope


@attrs.frozen(kw_only=True)
class StoreState:
    """One target's integration as listed (None when it is not provisioned)."""

    target: Target
    integration: Integration | None

    @property
    def available(self) -> bool:
        """Whether LaunchDarkly reports the store available."""
        status = self.integration.status if self.integration else None
        return bool(status and status.available)

    @property
    def problem(self) -> str:
        """Why there is no status to show, if there is none."""
        return "not provisioned" if self.integration is None else ""


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
            return states
        await asyncio.sleep(min(interval_s, left))
