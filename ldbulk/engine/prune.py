"""Which existing integrations a prune deletes, and which it must leave alone: a pure
decision, no I/O.

The rules, each one a guard against deleting what the manifests do not own:

- only integrations carrying the ownership tag of a manifest whose lines cover their project
  and integration key (what ldbulk wrote for it, or for another manifest sharing the tag) are
  ever deleted; the others in scope are *unmanaged*, listed, never touched;
- only within the manifests' scope: a (project, integration key) pair some manifest line names;
  another project, or the other integration key in the same project, is out of scope;
- only what no target names;
- nothing at all when a manifest line did not resolve (a project or environment listing that
  failed would make its targets look unnamed, and their integrations look like leftovers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import attrs

from ldbulk.api.models import Integration
from ldbulk.engine.inventory import key_of
from ldbulk.engine.report import Key
from ldbulk.manifest import ManifestSet


@attrs.frozen(kw_only=True)
class PruneScope:
    """Where a prune may delete: each (project, integration key) the manifests name, with the
    ownership tags that mark an integration there as theirs; and why nothing may be deleted,
    when something forbids it."""

    owners: Mapping[tuple[str, str], frozenset[str]]
    blocked: str | None = None
    # Targets named besides those of the run that prunes (a resumed run tries only the rest).
    named: frozenset[Key] = frozenset()

    @classmethod
    def of(
        cls,
        manifests: ManifestSet,
        *,
        unresolved_lines: int,
        named: Iterable[Key] = (),
    ) -> PruneScope:
        """The scope of ``manifests``; ``unresolved_lines`` (lines that gave no target because
        of a problem) block every delete; ``named``: target keys no delete may touch, besides
        those of the run."""
        owners: dict[tuple[str, str], set[str]] = {}
        for selector in manifests.selectors:
            pair = (selector.project, selector.store.integration_key)
            owners.setdefault(pair, set()).add(selector.store.ownership_tag)
        blocked = None
        if unresolved_lines:
            blocked = (
                f"not deleted: {unresolved_lines} manifest line(s) did not resolve, so what the "
                "manifests name is not known in full"
            )
        return cls(owners={pair: frozenset(tags) for pair, tags in owners.items()},
                   blocked=blocked, named=frozenset(named))

    def sort(
        self, integrations: Iterable[Integration], named: Collection[Key]
    ) -> tuple[list[Integration], list[Integration]]:
        """The integrations no target names within the scope: (to delete, unmanaged), each
        in (project, environment, integration key) order."""
        doomed: list[Integration] = []
        unmanaged: list[Integration] = []
        for integration in sorted(integrations, key=key_of):
            tags = self.owners.get((integration.project_key, integration.integration_key))
            key = key_of(integration)
            if tags is None or key in named or key in self.named:
                continue
            (doomed if tags & set(integration.tags) else unmanaged).append(integration)
        return doomed, unmanaged
