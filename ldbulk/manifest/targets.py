"""The ``targets`` of a manifest: a project, its environments and a store name each.

Store names are checked later, once every file of the set is read
(:func:`ldbulk.manifest.load.load_manifests`): a file may use stores another defines.
"""

from __future__ import annotations

import sys
from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ldbulk.manifest.model import (
    AllEnvironments,
    EnvironmentKeys,
    EnvironmentSelector,
    PendingTarget,
    TaggedEnvironments,
    index_path,
)
from ldbulk.manifest.nodes import STR, NodeReader, child_path, line_of

_TARGET_KEYS: Final = ("project", "environments", "store")


def read_targets(reader: NodeReader, node: Node) -> list[PendingTarget]:
    """The entries of ``targets``, each with the name of its store, checked later against
    every file's stores; the entries with problems are left out."""
    items = reader.sequence(node, "targets")
    if items is None:
        return []
    if not items:
        reader.add(node, "targets", "must list at least one target")
    targets = (
        _target(reader, item, index_path("targets", index)) for index, item in enumerate(items)
    )
    return [target for target in targets if target is not None]


def _target(reader: NodeReader, node: Node, path: str) -> PendingTarget | None:
    entries = reader.mapping(node, path)
    if entries is None:
        return None
    reader.keys(node, entries, path, _TARGET_KEYS, required=_TARGET_KEYS)
    project = None
    project_source = reader.source(node, child_path(path, "project"))
    if "project" in entries:
        project_node = entries["project"][1]
        project_source = reader.source(project_node, child_path(path, "project"))
        project = reader.identifier(project_node, project_source.path, "project key")
    selector = None
    if "environments" in entries:
        selector = _selector(reader, entries["environments"][1], child_path(path, "environments"))
    store_name = None
    store_source = reader.source(node, child_path(path, "store"))
    if "store" in entries:
        store_node = entries["store"][1]
        store_source = reader.source(store_node, store_source.path)
        store_name = reader.string(store_node, store_source.path)
    if project is None or store_name is None:
        return None
    return PendingTarget(
        project=project,
        environments=selector,
        store_name=store_name,
        store_source=store_source,
        source=reader.source(node, path),
        project_source=project_source,
    )


def _selector(reader: NodeReader, node: Node, path: str) -> EnvironmentSelector | None:
    if isinstance(node, ScalarNode) and node.tag == STR and node.value == "*":
        return AllEnvironments(source=reader.source(node, path))
    if isinstance(node, MappingNode):
        entries = reader.mapping(node, path)
        if entries is None:
            return None
        reader.keys(node, entries, path, ("tags",), required=("tags",))
        if "tags" not in entries:
            return None
        tags = reader.tags(entries["tags"][1], child_path(path, "tags"), non_empty=True)
        if tags is None:
            return None
        return TaggedEnvironments(tags=tags, source=reader.source(node, path))
    if not isinstance(node, SequenceNode):
        reader.add(
            node,
            path,
            f'must be a list of environment keys, "*" or {{tags: [...]}}, got {reader.kind(node)}',
        )
        return None
    items = reader.sequence(node, path)
    if items is None:
        return None
    if not items:
        reader.add(node, path, "must list at least one environment")
        return None
    keys: list[str] = []
    lines: list[int] = []
    ok = True
    for index, item in enumerate(items):
        item_path = index_path(path, index)
        if isinstance(item, ScalarNode) and item.tag == STR and item.value == "*":
            reader.add(item, item_path, '"*" stands alone: write environments: "*"')
            ok = False
            continue
        key = reader.identifier(item, item_path, "environment key")
        if key is None:
            ok = False
            continue
        # Interned: 100,000 targets name a few environment keys ("production") many times.
        keys.append(sys.intern(key))
        lines.append(line_of(item))
    if not ok:
        return None
    return EnvironmentKeys(keys=tuple(keys), lines=tuple(lines), source=reader.source(node, path))
