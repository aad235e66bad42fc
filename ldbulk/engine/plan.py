"""What ``apply`` would do per target, and what a prune would delete, using only reads.

The decisions are apply's own: the same comparison (:func:`~ldbulk.engine.update.update_for`)
and the same prune rules (:class:`~ldbulk.engine.prune.PruneScope`), so a plan shows what an
apply started at the same moment would write.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable

import attrs

from ldbulk.api.models import Target
from ldbulk.engine.drift import Drift, compare
from ldbulk.engine.inventory import Inventory, key_of
from ldbulk.engine.provision import DEFAULT_CONCURRENCY
from ldbulk.engine.prune import PruneScope
from ldbulk.engine.report import Key
from ldbulk.engine.update import update_for
from ldbulk.errors import NotFound
from ldbulk.http.client import Client


class Action(enum.StrEnum):
    """What ``apply`` would do for a target, or a prune for an integration no target names."""

    CREATE = "create"
    UPDATE = "update"  # there, but some field differs: apply patches those fields
    UNCHANGED = "unchanged"  # there, read and compared: as the manifest says
    EXISTS = "exists"  # there, not compared (create-only)
    NOT_FOUND = "not_found"  # the project or environment does not exist
    DELETE = "delete"  # a prune deletes it: tagged as ldbulk's, in scope, named by no target
    UNMANAGED = "unmanaged"  # in scope and named by no target, but not tagged: left alone
    # Carries the shared default tag outside the manifests' scope: shown, never touched.
    ORPHANED = "orphaned"

    @property
    def changes(self) -> bool:
        """Whether apply would write something for this row."""
        return self in (Action.CREATE, Action.UPDATE, Action.DELETE)


@attrs.frozen(kw_only=True)
class PlanItem:
    """One row of the plan: a target (or, for a prune's rows, an integration no target
    names) and what apply would do with it."""

    key: Key
    action: Action
    target: Target | None = None
    integration_id: str | None = None
    drift: Drift = attrs.field(factory=Drift)
    # The fields an update would write: the differences, and the secrets when rotating.
    fields: tuple[str, ...] = ()


async def plan(
    client: Client,
    targets: Iterable[Target],
    *,
    create_only: bool = False,
    rotate_secrets: bool = False,
    prune: PruneScope | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[PlanItem]:
    """What ``apply`` would do per target (in target order), then, with ``prune``, each
    integration it would delete or leave alone as unmanaged. Reads only.

    One list of the existing integrations, and one listing of environments per project whose
    targets would be created, to tell a create from a 404. Unless ``create_only``, each existing
    integration is also read by id (the list carries no ``config``), at most ``concurrency``
    at a time, and compared with its target.
    """
    inventory = Inventory(client)
    try:
        return await _plan(client, inventory, list(targets), create_only, rotate_secrets, prune,
                           concurrency)
    finally:
        await inventory.aclose()  # a plan cancelled mid-listing leaves no listing running


async def _plan(
    client: Client,
    inventory: Inventory,
    targets: list[Target],
    create_only: bool,
    rotate_secrets: bool,
    prune: PruneScope | None,
    concurrency: int,
) -> list[PlanItem]:
    await inventory.refresh()
    gate = asyncio.Semaphore(concurrency)
    # Each project whose targets would be created is listed once, all of them concurrently.
    missing = {t.project for t in targets if inventory.get(t.key) is None}
    environments = dict(
        zip(
            missing,
            await asyncio.gather(*(_environments(client, p, gate) for p in missing)),
            strict=True,
        )
    )
    items: list[PlanItem] = []
    reads: dict[int, asyncio.Task[PlanItem]] = {}
    for target in targets:
        existing = inventory.get(target.key)
        if existing is not None:
            item = PlanItem(
                key=target.key, target=target, action=Action.EXISTS, integration_id=existing
            )
            if not create_only:
                reads[len(items)] = asyncio.ensure_future(
                    _compared(client, item, target, gate, rotate_secrets)
                )
            items.append(item)
            continue
        known = target.environment in environments[target.project]
        action = Action.CREATE if known else Action.NOT_FOUND
        items.append(PlanItem(key=target.key, target=target, action=action))
    # Every read ends before an error is raised, so none is left running behind the plan.
    answers = await asyncio.gather(*reads.values(), return_exceptions=True)
    compared: dict[int, PlanItem] = {}
    for index, answer in zip(reads, answers, strict=True):
        if isinstance(answer, BaseException):
            raise answer
        compared[index] = answer
    rows = [compared.get(index, item) for index, item in enumerate(items)]
    if prune is not None and prune.blocked is None:
        pruning = prune.decide(inventory.integrations(), {row.key for row in rows})
        rows += [
            PlanItem(key=key_of(found), action=action, integration_id=found.id)
            for action, found in (
                *((Action.DELETE, found) for found in pruning.deletes),
                *((Action.UNMANAGED, found) for found in pruning.unmanaged),
                *((Action.ORPHANED, found) for found in pruning.orphaned),
            )
        ]
    return rows


async def _environments(client: Client, project: str, gate: asyncio.Semaphore) -> set[str]:
    """The environment keys of ``project`` (none when the project does not exist)."""
    async with gate:
        try:
            return {env.key async for env in client.environments(project)}
        except NotFound:
            return set()


async def _compared(
    client: Client, item: PlanItem, target: Target, gate: asyncio.Semaphore, rotate: bool
) -> PlanItem:
    """An existing target's item, read by id and compared with the manifest."""
    assert item.integration_id is not None
    async with gate:
        try:
            integration = await client.get_integration(*target.key, item.integration_id)
        except NotFound:
            # Deleted since the listing: apply would create it again.
            return attrs.evolve(item, action=Action.CREATE, integration_id=None)
    drift = compare(target, integration)
    update = update_for(target, integration, rotate_secrets=rotate, drift=drift)
    if update is None:
        return attrs.evolve(item, action=Action.UNCHANGED, drift=drift)
    return attrs.evolve(item, action=Action.UPDATE, drift=drift, fields=update.fields)
