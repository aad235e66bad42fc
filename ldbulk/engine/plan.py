"""What ``apply`` would do per target, and what a prune would delete, using only reads.

The decisions are apply's own: the same two steps (:mod:`ldbulk.engine.decide`) and the same
prune rules (:class:`~ldbulk.engine.prune.PruneScope`), so a plan shows what an apply started
at the same moment would write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable

import attrs

from ldbulk.api.models import Integration, Target
from ldbulk.engine.decide import Action as Action  # plan's rows are named in apply's terms
from ldbulk.engine.decide import Decision, after_read, before_read
from ldbulk.engine.drift import Drift
from ldbulk.engine.inventory import Inventory, key_of
from ldbulk.engine.provision import concurrency_or_default
from ldbulk.engine.prune import PruneScope
from ldbulk.engine.report import Key
from ldbulk.engine.seen import Seen
from ldbulk.errors import NotFound
from ldbulk.http.client import Client


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
    # The version read (or listed) when the row was decided: what a saved plan is checked
    # against when it is applied.
    version: int | None = None
    # An update's JSON Patch operations after its version test, without their values.
    patch: tuple[tuple[str, str], ...] = ()


async def plan(
    client: Client,
    targets: Iterable[Target],
    *,
    create_only: bool = False,
    rotate_secrets: bool = False,
    prune: PruneScope | None = None,
    concurrency: int | None = None,
    seen: Seen | None = None,
) -> list[PlanItem]:
    """What ``apply`` would do per target (in target order), then, with ``prune``, each
    integration it would delete or leave alone as unmanaged. Reads only.

    One list of the existing integrations, and one listing of environments per project whose
    targets would be created, to tell a create from a 404. Unless ``create_only``, each existing
    integration is also read by id (the list carries no ``config``), at most ``concurrency``
    at a time, and compared with its target; ``seen`` (a state file, read, never written)
    spares the reads apply would spare.
    """
    inventory = Inventory(client)
    decide = _Decider(create_only=create_only, rotate_secrets=rotate_secrets, seen=seen)
    try:
        return await _plan(
            client, inventory, list(targets), decide, prune, concurrency_or_default(concurrency)
        )
    finally:
        await inventory.aclose()  # a plan cancelled mid-listing leaves no listing running


async def _plan(
    client: Client,
    inventory: Inventory,
    targets: list[Target],
    decide: _Decider,
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
    reads: dict[int, asyncio.Task[PlanItem | Exception]] = {}
    # Every read ends before an error is raised (the first in target order), so none is left
    # running behind the plan and one read's failure does not cut the others short.
    async with asyncio.TaskGroup() as group:
        for target in targets:
            listed = inventory.integration(target.key)
            action = decide.before_read(target, listed)
            if listed is None:
                known = target.environment in environments[target.project]
                action = Action.CREATE if known else Action.NOT_FOUND
            item = PlanItem(key=target.key, target=target, action=action or Action.EXISTS,
                            integration_id=listed.id if listed is not None else None,
                            version=listed.version if listed is not None else None)
            if action is None:
                reads[len(items)] = group.create_task(
                    _caught(_compared(client, item, decide, gate))
                )
            items.append(item)
    compared: dict[int, PlanItem] = {}
    for index, read in reads.items():
        answer = read.result()
        if isinstance(answer, Exception):
            raise answer
        compared[index] = answer
    rows = [compared.get(index, item) for index, item in enumerate(items)]
    if prune is not None and prune.blocked is None:
        pruning = prune.decide(inventory.integrations(), {row.key for row in rows})
        rows += [
            PlanItem(key=key_of(found), action=action, integration_id=found.id,
                     version=found.version)
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


@attrs.frozen(kw_only=True)
class _Decider:
    """Apply's decisions (:mod:`ldbulk.engine.decide`) under the flags of the run planned."""

    create_only: bool
    rotate_secrets: bool
    seen: Seen | None

    def before_read(self, target: Target, listed: Integration | None) -> Action | None:
        return before_read(target, listed, create_only=self.create_only,
                           rotate_secrets=self.rotate_secrets, seen=self.seen)

    def after_read(self, target: Target, current: Integration) -> Decision:
        return after_read(target, current, rotate_secrets=self.rotate_secrets)


async def _compared(
    client: Client, item: PlanItem, decide: _Decider, gate: asyncio.Semaphore
) -> PlanItem:
    """An existing target's item, read by id and decided as apply would."""
    assert item.integration_id is not None and item.target is not None
    async with gate:
        try:
            integration = await client.get_integration(*item.key, item.integration_id)
        except NotFound:
            # Deleted since the listing: apply would create it again.
            return attrs.evolve(item, action=Action.CREATE, integration_id=None)
    decision = decide.after_read(item.target, integration)
    return attrs.evolve(item, action=decision.action, drift=decision.drift,
                        fields=decision.fields, version=integration.version,
                        patch=decision.patch)


async def _caught(read: Awaitable[PlanItem]) -> PlanItem | Exception:
    """A read's item, or the error it met, for the caller to raise once every read ended."""
    try:
        return await read
    except Exception as exc:
        return exc
