"""One manifest file: read into values, checked against the JSON Schema, then built into stores
and pending targets, with what a schema cannot say checked by hand: ``defaults.allowEnv``, name
templates and each config. The stores targets name are found across the set (a file may use
stores another defines)."""

from __future__ import annotations

import functools
import hashlib
import string
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

import attrs
from yaml.nodes import MappingNode

from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, IntegrationKey
from ldbulk.manifest import validate
from ldbulk.manifest.config import read_config
from ldbulk.manifest.jsonschema import FORMAT_VERSION
from ldbulk.manifest.model import (
    AllEnvironments,
    AllProjects,
    EnvironmentKeys,
    EnvironmentSelector,
    PartialStore,
    PendingTarget,
    Source,
    Store,
    TaggedEnvironments,
    TaggedProjects,
)
from ldbulk.manifest.nodes import (
    Entries,
    NodePath,
    Problems,
    TooMuch,
    Tree,
    line_of,
    parse,
    path_text,
    quote,
    read_text,
)
from ldbulk.manifest.references import Resolver, manifest_allow_refusal


@attrs.frozen(kw_only=True)
class _Defaults:
    """A file's ``defaults``: what its stores start from."""

    on: bool | None = None
    tags: tuple[str, ...] = ()
    ownership_tag: str = DEFAULT_OWNERSHIP_TAG


class Document:
    """One manifest file, validated on its own: its stores, its targets (their store names are
    checked across the set later) and its problems, collected instead of raised."""

    def __init__(self, file: str, resolver: Resolver) -> None:
        self.file = file
        self.problems = Problems(file)
        self.resolver = resolver
        self.stores: list[PartialStore] = []
        self.targets: list[PendingTarget] = []
        self.has_targets_key = False
        self.digest = ""  # of the text checked: which manifest a journal is about

    def check(self, content: Path | str | bytes) -> None:
        """Read (a path), parse and validate; results and problems accumulate on ``self``."""
        text = read_text(content, self.problems)
        if text is None:
            return
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        root = parse(text, self.file, self.problems)
        if root is None:
            return
        try:
            tree = Tree(self.file, root, self.problems)
            document = tree.value()
            if isinstance(document, dict):
                self._top(tree, document)
            else:
                validate.check(tree, document, {})
        except TooMuch as exc:
            self.problems.add(exc.line, "", str(exc))

    def _top(self, tree: Tree, document: dict[str, object]) -> None:
        version = document.get("version")
        if type(version) is int and version != FORMAT_VERSION:
            # Another format: what its keys hold is that format's to say, not read further.
            validate.check(tree, document, None)
            shown = quote(str(tree.find(("version",))[1].value))
            ours = f"this ldbulk reads version {FORMAT_VERSION}"
            tree.note(("version",), f"unsupported version {shown} ({ours})")
            return
        defaults = self._defaults(tree, document.get("defaults"))
        stores = document.get("stores")
        stores = stores if isinstance(stores, dict) else {}
        checked_as = {name: validate.integration_of(body) for name, body in stores.items()}
        validate.check(tree, document, checked_as)
        for name, body in stores.items():
            if not validate.refused_name(name):
                self._store(tree, name, body, checked_as[name], defaults)
        if "targets" in document:
            self.has_targets_key = True
            self.targets = read_targets(tree, document["targets"])
        if "stores" not in document and "targets" not in document:
            tree.note((), "defines no stores and no targets")

    def _defaults(self, tree: Tree, defaults: object) -> _Defaults:
        if not isinstance(defaults, dict):
            return _Defaults()
        # The file's own allow-list: none may be credential-shaped, as trust in a credential
        # stays with the job that runs the manifest (--allow-env).
        names = defaults.get("allowEnv")
        allowed: set[str] = set()
        for index, name in enumerate(names if isinstance(names, list) else ()):
            reason = manifest_allow_refusal(name) if isinstance(name, str) else None
            if reason is not None:
                path = ("defaults", "allowEnv", index)
                tree.note(path, f"cannot allow {quote(name)}: {reason}")
            elif isinstance(name, str):  # else the schema's to say
                allowed.add(name)
        self.resolver.allow_env = frozenset(allowed)
        # Whatever the schema said of them: a file with a problem is never applied.
        on, tags, owner = (defaults.get(key) for key in ("on", "tags", "ownershipTag"))
        return _Defaults(
            on=on if isinstance(on, bool) else None,
            tags=_unique(t for t in (tags if isinstance(tags, list) else ()) if isinstance(t, str)),
            ownership_tag=owner if isinstance(owner, str) else DEFAULT_OWNERSHIP_TAG,
        )

    def _store(
        self,
        tree: Tree,
        name: str,
        body: object,
        checked_as: IntegrationKey | None,
        defaults: _Defaults,
    ) -> None:
        path: NodePath = ("stores", name)
        source = tree.source(path, key=True)
        # Not a mapping: no integration (integration_of said None), no config, no store.
        body = body if isinstance(body, dict) else {}
        integration = checked_as if body.get("integration") == checked_as else None
        config = None
        if checked_as is not None and isinstance(body.get("config"), dict):
            config = read_config(tree, self.resolver, checked_as, body["config"], (*path, "config"))
        template = body.get("name")
        if isinstance(template, str):
            _check_template(tree, (*path, "name"), template)
        store = None
        if integration is not None and config is not None and path not in tree.bad:
            store = Store(
                name=name,
                config=config,
                on=bool(body.get("on", defaults.on)),
                tags=_unique((*defaults.tags, *body.get("tags", ()))),
                ownership_tag=defaults.ownership_tag,
                name_template=template if isinstance(template, str) else None,
                source=source,
            )
        self.stores.append(
            PartialStore(name=name, integration=integration, store=store, source=source)
        )


def _check_template(tree: Tree, path: NodePath, template: str) -> None:
    """Note what is wrong with a name template: only {project} and {environment}."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        tree.note(path, f"not a valid name template: {exc} (write {{{{ or }}}} for a brace)")
        return
    for _, field, spec, conversion in parts:
        if field is not None and field not in ("project", "environment"):
            shown = quote("{" + field + "}")
            tree.note(path, f"unknown placeholder {shown} (use {{project}} and {{environment}})")
        elif field is not None and (spec or conversion):
            tree.note(path, f"placeholder {{{field}}} takes no conversion or format")


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def read_targets(tree: Tree, targets: object) -> list[PendingTarget]:
    """The entries of ``targets`` with a good project and store name (a ``projects`` list gives
    one for each project, at its item's line); their stores are found across the set later."""
    found: list[PendingTarget] = []
    for index, target in enumerate(targets if isinstance(targets, list) else ()):
        path: NodePath = ("targets", index)
        if not isinstance(target, dict) or not isinstance(target.get("store"), str):
            continue
        # Found once, not once a field: a manifest may hold 100,000 targets.
        node = tree.find(path)[1]
        entries = tree.entries(cast(MappingNode, node), path)
        where = f"targets[{index}]"
        line = functools.partial(
            PendingTarget,
            environments=_selector(tree, target.get("environments"), (*path, "environments")),
            store_name=target["store"],
            store_source=Source(
                file=tree.file, line=line_of(entries["store"][1]), path=f"{where}.store"
            ),
            source=Source(file=tree.file, line=line_of(node), path=where),
        )
        found += _each_project(tree, target, path, entries, line)
    return found


def _each_project(
    tree: Tree,
    target: dict[str, object],
    path: NodePath,
    entries: Entries,
    line: Callable[..., PendingTarget],
) -> list[PendingTarget]:
    """The target made by ``line`` once for each project it names (none when its projects
    are bad), or once with the selector the engine resolves against the account's projects."""
    if ("project" in target) == ("projects" in target):
        return []  # the schema said which is wrong
    key = "project" if "project" in target else "projects"
    value, at = target[key], (*path, key)
    if at in tree.bad or not isinstance(value, str | list | dict):
        return []
    source = Source(file=tree.file, line=line_of(entries[key][1]), path=path_text(at))
    if value == "*":
        return [line(project="", project_source=source, projects=AllProjects(source=source))]
    if isinstance(value, dict):
        tagged = TaggedProjects(tags=_unique(value["tags"]), source=source)
        return [line(project="", project_source=source, projects=tagged)]
    if isinstance(value, str):
        return [line(project=value, project_source=source)]
    seen: dict[str, Source] = {}  # each project's first item, in the list's order
    for index, (project, item) in enumerate(zip(value, entries[key][1].value, strict=True)):
        item_source = source.item(index, line_of(item))
        first = seen.setdefault(project, item_source)
        if first is not item_source:
            message = f"project {quote(project)} is listed twice: also at {first}"
            tree.note((*at, index), message, item)
    return [line(project=project, project_source=first) for project, first in seen.items()]


def _selector(tree: Tree, value: object, path: NodePath) -> EnvironmentSelector | None:
    if value is None or path in tree.bad:
        return None
    source = tree.source(path)
    if value == "*":
        return AllEnvironments(source=source)
    if isinstance(value, dict):
        return TaggedEnvironments(tags=_unique(value["tags"]), source=source)
    return EnvironmentKeys(
        # Interned: 100,000 targets name a few environment keys ("production") many times.
        keys=tuple(sys.intern(key) for key in cast(list[str], value)),
        lines=tuple(line_of(item) for item in tree.find(path)[1].value),
        source=source,
    )
