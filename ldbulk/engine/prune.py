"""Which existing integrations a prune deletes, and which it must leave alone: a pure
decision, no I/O.

The rules, each one a guard against deleting what the manifests do not own:

- a manifest with an ownership tag of its own (``defaults.ownershipTag``, not the shared
  default) owns every integration carrying that tag, in any project and of either integration
  key: removing a project's block from it deletes what that block made;
- with the shared default tag, only within the manifests' scope: a (project, integration key)
  pair some manifest line names, and only the integrations there carrying the tag (what
  ldbulk wrote for it, or for another manifest sharing the tag); the others there are
  *unmanaged*, listed, never touched; those carrying the shared tag outside that scope are
  *orphaned*, listed, never touched (another manifest may still name them);
- only what no target names;
- nothing at all when a manifest line did not resolve (a project or environment listing that
  failed would make its targets look unnamed, and their integrations look like leftovers);
- nothing in a project where a line names an environment that does not exist (a typo in an
  explicit list would make the real environment's integration look like a leftover).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import attrs

from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, Integration
from ldbulk.engine.inventory import key_of
from ldbulk.engine.report import Key
from ldbulk.manifest import ManifestSet, TargetSelector


@attrs.frozen(kw_only=True)
class Pruning:
    """What a prune decided over one listing, each list in (project, environment, integration
    key) order: the integrations it deletes; those it would delete but may not, each with why
    (reported ``not_pruned``); and those it shows and never touches."""

    deletes: tuple[Integration, ...] = ()
    kept: tuple[tuple[Integration, str], ...] = ()
    # In the scope of the shared tag, named by no target, without the ownership tag.
    unmanaged: tuple[Integration, ...] = ()
    # Carrying the shared default tag outside the scope of manifests that use it.
    orphaned: tuple[Integration, ...] = ()


@attrs.frozen(kw_only=True)
class PruneScope:
    """Where a prune may delete: each (project, integration key) the manifests name, with the
    ownership tags that mark an integration there as theirs; the tags of their own that mark
    an integration as theirs anywhere; and why nothing may be deleted (``blocked``) or
    nothing in a project (``blocked_projects``), when something forbids it."""

    owners: Mapping[tuple[str, str], frozenset[str]]
    # Ownership tags other than the shared default: every integration carrying one is theirs.
    own_tags: frozenset[str] = frozenset()
    blocked: str | None = None
    blocked_projects: Mapping[str, str] = attrs.field(factory=dict)
    # Targets named besides those of the run that prunes (a resumed run tries only the rest).
    named: frozenset[Key] = frozenset()

    @classmethod
    def of(
        cls,
        manifests: ManifestSet,
        *,
        unresolved_lines: int,
        named: Iterable[Key] = (),
        blocked_projects: Mapping[str, str] | None = None,
        selectors: Iterable[TargetSelector] | None = None,
    ) -> PruneScope:
        """The scope of ``manifests``; ``unresolved_lines`` (lines that gave no target because
        of a problem) block every delete; ``named``: target keys no delete may touch, besides
        those of the run; ``blocked_projects``: projects where nothing may be deleted, each
        with why (see :attr:`ldbulk.engine.resolve.Resolution.prune_blocks`); ``selectors``:
        the manifests' lines each for one project, as resolved
        (:attr:`~ldbulk.engine.resolve.Resolution.selectors`; by default the manifests' own,
        where a line over the account's projects names no project)."""
        owners: dict[tuple[str, str], set[str]] = {}
        for selector in manifests.selectors if selectors is None else selectors:
            if selector.projects is not None and not selector.project:
                continue  # not resolved: what it names is not known, so it owns nothing
            pair = (selector.project, selector.store.integration_key)
            owners.setdefault(pair, set()).add(selector.store.ownership_tag)
        own_tags = {tag for tags in owners.values() for tag in tags} - {DEFAULT_OWNERSHIP_TAG}
        blocked = None
        if unresolved_lines:
            blocked = (
                f"not deleted: {unresolved_lines} manifest line(s) did not resolve, so what the "
                "manifests name is not known in full"
            )
        return cls(owners={pair: frozenset(tags) for pair, tags in owners.items()},
                   own_tags=frozenset(own_tags), blocked=blocked,
                   blocked_projects=dict(blocked_projects or {}), named=frozenset(named))

    @property
    def shares_default_tag(self) -> bool:
        """Whether some manifest line keeps the shared default ownership tag."""
        return any(DEFAULT_OWNERSHIP_TAG in tags for tags in self.owners.values())

    def decide(self, integrations: Iterable[Integration], named: Collection[Key]) -> Pruning:
        """What a prune does with ``integrations`` (one listing of the account), no target of
        ``named`` (nor of :attr:`named`) being touched."""
        deletes: list[Integration] = []
        kept: list[tuple[Integration, str]] = []
        unmanaged: list[Integration] = []
        orphaned: list[Integration] = []
        shared = self.shares_default_tag
        for integration in sorted(integrations, key=key_of):
            key = key_of(integration)
            if key in named or key in self.named:
                continue
            tags = set(integration.tags)
            pair_tags = self.owners.get((integration.project_key, integration.integration_key))
            if tags & self.own_tags or (pair_tags is not None and tags & pair_tags):
                why = self.blocked or self.blocked_projects.get(integration.project_key)
                if why is None:
                    deletes.append(integration)
                else:
                    kept.append((integration, why))
            elif pair_tags is not None:
                unmanaged.append(integration)
            elif shared and DEFAULT_OWNERSHIP_TAG in tags:
                orphaned.append(integration)
        return Pruning(deletes=tuple(deletes), kept=tuple(kept), unmanaged=tuple(unmanaged),
                       orphaned=tuple(orphaned))
