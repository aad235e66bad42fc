"""The ``targets`` of a manifest, once the schema has checked them: a project, its
environments and a store name each.

Store names are checked later, once every file of the set is read
(:func:`ldbulk.manifest.load.load_manifests`): a file may use stores another defines.
"""

from __future__ import annotations

import sys
from typing import cast

from yaml.nodes import MappingNode

from ldbulk.manifest.model import (
    AllEnvironments,
    EnvironmentKeys,
    EnvironmentSelector,
    PendingTarget,
    Source,
    TaggedEnvironments,
    index_path,
)
from ldbulk.manifest.nodes import NodePath, Tree, line_of


def read_targets(tree: Tree, targets: object) -> list[PendingTarget]:
    """The entries of ``targets``, each with the name of its store, checked later against
    every file's stores; the entries without a good project or store name are left out."""
    found: list[PendingTarget] = []
    for index, target in enumerate(targets if isinstance(targets, list) else ()):
        path: NodePath = ("targets", index)
        if not isinstance(target, dict) or (*path, "project") in tree.bad:
            continue
        project, store = target.get("project"), target.get("store")
        if not isinstance(project, str) or not isinstance(store, str):
            continue
        # Found once, not once a field: a manifest may hold 100,000 targets.
        node = tree.find(path)[1]
        where = index_path("targets", index)
        lines = {
            key: line_of(value)
            for key, (_, value) in tree.entries(cast(MappingNode, node), path).items()
        }
        found.append(
            PendingTarget(
                project=project,
                environments=_selector(tree, target.get("environments"), (*path, "environments")),
                store_name=store,
                store_source=Source(file=tree.file, line=lines["store"], path=f"{where}.store"),
                source=Source(file=tree.file, line=line_of(node), path=where),
                project_source=Source(
                    file=tree.file, line=lines["project"], path=f"{where}.project"
                ),
            )
        )
    return found


def _selector(tree: Tree, value: object, path: NodePath) -> EnvironmentSelector | None:
    if value is None or path in tree.bad:
        return None
    source = tree.source(path)
    if value == "*":
        return AllEnvironments(source=source)
    if isinstance(value, dict):
        return TaggedEnvironments(tags=tuple(dict.fromkeys(value["tags"])), source=source)
    items = tree.find(path)[1].value
    return EnvironmentKeys(
        # Interned: 100,000 targets name a few environment keys ("production") many times.
        keys=tuple(sys.intern(key) for key in cast(list[str], value)),
        lines=tuple(line_of(item) for item in items),
        source=source,
    )
