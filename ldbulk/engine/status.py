"""The status workflow: each target's integration read by id, its config and store status.

LaunchDarkly only includes an integration's ``config`` and ``_status`` when it is read by id,
so this is one listing plus one paced read per provisioned target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs

from ldbulk.api.models import Integration, Target
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.provision import DEFAULT_CONCURRENCY
from ldbulk.errors import HTTPStatusError
from ldbulk.http.client import Client


@attrs.frozen(kw_only=True)
class StoreState:
    target: Target
    integration: Integration | None
    problem: str = ""

    @property
    def available(self) -> bool:
        status = self.integration.status if self.integration else None
        return bool(status and status.available)


async def read_states(client: Client, targets: Sequence[Target]) -> list[StoreState]:
    """Each target's integration read by id (config and status), a few at a time."""
    inventory = Inventory(client)
    await inventory.refresh()
    gate = asyncio.Semaphore(DEFAULT_CONCURRENCY)

    async def read(target: Target) -> StoreState:
        integration_id = inventory.get(target.key)
        if integration_id is None:
            return StoreState(target=target, integration=None, problem="not provisioned")
        async with gate:
            try:
                integration = await client.get_integration(*target.key, integration_id)
            except HTTPStatusError as exc:
                return StoreState(target=target, integration=None, problem=str(exc))
        return StoreState(target=target, integration=integration)

    return list(await asyncio.gather(*(read(target) for target in targets)))
