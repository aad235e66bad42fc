"""What ``apply`` would do per target, using only reads."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from ldbulk.api.models import Target
from ldbulk.engine.inventory import Inventory
from ldbulk.errors import NotFound
from ldbulk.http.client import Client


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
