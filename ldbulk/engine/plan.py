"""What ``apply`` would do per target, and how existing integrations differ from the
manifest, using only reads."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable

import attrs

from ldbulk.api.models import Target
from ldbulk.engine.drift import Drift, compare
from ldbulk.engine.inventory import Inventory
from ldbulk.errors import NotFound
from ldbulk.http.client import Client


class Action(enum.StrEnum):
    """What ``apply`` would do for a target."""

    CREATE = "create"
    EXISTS = "exists"  # there, and as the manifest says (or not compared: drift=False)
    DRIFTED = "drifted"  # there, but some field differs from the manifest
    NOT_FOUND = "not_found"  # the project or environment does not exist


@attrs.frozen(kw_only=True)
class PlanItem:
    """One target and what ``apply`` would do with it."""

    target: Target
    action: Action
    integration_id: str | None = None
    drift: Drift = attrs.field(factory=Drift)


async def plan(
    client: Client, targets: Iterable[Target], *, drift: bool = True, concurrency: int = 8
) -> list[PlanItem]:
    """What ``apply`` would do per target, using only reads.

    One list of the existing integrations, and one listing of environments per project whose
    targets would be created, to tell a create from a 404. With ``drift``, each existing
    integration is also read by id (the list carries no ``config``), at most ``concurrency``
    at a time, and compared with its target.
    """
    inventory = Inventory(client)
    await inventory.refresh()
    environments: dict[str, set[str]] = {}
    items: list[PlanItem] = []
    reads: dict[int, asyncio.Task[PlanItem]] = {}
    gate = asyncio.Semaphore(concurrency)
    for target in targets:
        existing = inventory.get(target.key)
        if existing is not None:
            item = PlanItem(target=target, action=Action.EXISTS, integration_id=existing)
            if drift:
                reads[len(items)] = asyncio.ensure_future(_compared(client, item, gate))
            items.append(item)
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
    # Every read ends before an error is raised, so none is left running behind the plan.
    answers = await asyncio.gather(*reads.values(), return_exceptions=True)
    compared: dict[int, PlanItem] = {}
    for index, answer in zip(reads, answers, strict=True):
        if isinstance(answer, BaseException):
            raise answer
        compared[index] = answer
    return [compared.get(index, item) for index, item in enumerate(items)]


async def _compared(client: Client, item: PlanItem, gate: asyncio.Semaphore) -> PlanItem:
    """An existing target's item, read by id and compared with the manifest."""
    assert item.integration_id is not None
    async with gate:
        try:
            integration = await client.get_integration(*item.target.key, item.integration_id)
        except NotFound:
            # Deleted since the listing: apply would create it again.
            return attrs.evolve(item, action=Action.CREATE, integration_id=None)
    found = compare(item.target, integration)
    action = Action.DRIFTED if found.changes else Action.EXISTS
    return attrs.evolve(item, action=action, drift=found)
