"""A prune's deletes, decided before the first write: the run's one listing of the account,
what :class:`~ldbulk.engine.prune.PruneScope` decides over it, and the guards that may refuse
it (the most deletes allowed, the caller's consent). A refusal writes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ldbulk.api.models import Integration
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.prune import PruneScope, Pruning
from ldbulk.engine.resolve import Resolution
from ldbulk.errors import LdbulkError, PruneRefused
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import ManifestSet

# Asked once, before the first write, with the integrations a prune would delete (when it
# would delete any): True goes on, False refuses the run.
Consent = Callable[[Sequence[Integration]], Awaitable[bool]]


async def decide_deletes(
    client: Client,
    scope: RequestScope,
    manifests: ManifestSet,
    resolution: Resolution,
    max_deletes: int | None,
    consent: Consent | None,
) -> tuple[Inventory | LdbulkError | None, Pruning]:
    """The run's one listing of the account (or the error it met; None when the run was
    stopped first), and what the prune decides over it, consented to. Raises
    :class:`~ldbulk.errors.PruneRefused` when the deletes may not go."""
    if scope.stopped:
        return None, Pruning()  # the run sends nothing more: every target ends skipped
    inventory = Inventory(client, scope)
    try:
        await inventory.refresh()
        pruning = prune_scope(manifests, resolution).decide(inventory.integrations(), ())
        await _consented(pruning.deletes, max_deletes, consent)
    except LdbulkError as exc:
        await inventory.aclose()
        if isinstance(exc, PruneRefused):
            raise
        return exc, Pruning()  # nothing known of what exists: nothing deleted
    except BaseException:
        await inventory.aclose()  # no listing left running behind a cancelled run
        raise
    return inventory, pruning


def prune_scope(manifests: ManifestSet, resolution: Resolution) -> PruneScope:
    """Where this run's prune may delete. Every target the manifests name counts as named,
    not only those this run tries: one a resumed journal settled, or whose store check
    failed, is no leftover."""
    return PruneScope.of(
        manifests,
        unresolved_lines=len(resolution.unresolved),
        named=(target.key for target in resolution.targets),
        blocked_projects=resolution.prune_blocks,
        selectors=resolution.selectors,
    )


async def _consented(
    deletes: Sequence[Integration], max_deletes: int | None, consent: Consent | None
) -> None:
    """Return when the deletes may go; raise :class:`PruneRefused` when not."""
    if not deletes:
        return
    listed = tuple(
        (found.project_key, found.environment_key, found.integration_key, found.id)
        for found in deletes
    )
    count = f"{len(deletes)} integration{'s' if len(deletes) != 1 else ''}"
    if max_deletes is not None and len(deletes) > max_deletes:
        raise PruneRefused(
            f"the prune would delete {count}, more than the {max_deletes} allowed; "
            "nothing was written", deletes=listed,
        )
    if consent is not None and not await consent(deletes):
        raise PruneRefused(
            f"the prune would delete {count} without consent; nothing was written",
            deletes=listed,
        )
