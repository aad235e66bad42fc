"""The schema of one manifest file: version, defaults, stores and targets, walked into stores
and pending targets, every problem noted with its line and path.

The nodes are read by :class:`~ldbulk.manifest.nodes.NodeReader`, a store's config by
:mod:`ldbulk.manifest.config`, the targets by :mod:`ldbulk.manifest.targets`; what needs every
file of the set (store names, duplicate targets) is checked by :mod:`ldbulk.manifest.load`.
"""

from __future__ import annotations

import difflib
import hashlib
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, cast

import attrs
from yaml.nodes import MappingNode, Node, ScalarNode

from ldbulk.api.fields import api_name, form_fields
from ldbulk.api.models import (
    CONFIG_CLASSES,
    DEFAULT_OWNERSHIP_TAG,
    INTEGRATION_KEYS,
    IntegrationKey,
    StoreConfig,
)
from ldbulk.manifest.config import read_config
from ldbulk.manifest.model import PartialStore, PendingTarget, Store, index_path
from ldbulk.manifest.nodes import (
    INT,
    KEY,
    NodeReader,
    Problems,
    TooMuch,
    child_path,
    parse,
    quote,
)
from ldbulk.manifest.references import ReferencePolicy, Resolver, manifest_allow_refusal
from ldbulk.manifest.targets import read_targets

FORMAT_VERSION: Final = 1

_PLACEHOLDERS: Final = ("project", "environment")
_TOP_KEYS: Final = ("version", "defaults", "stores", "targets")
_DEFAULTS_KEYS: Final = ("on", "tags", "allowEnv", "ownershipTag")
_STORE_KEYS: Final = ("integration", "name", "config", "on", "tags")


def _integration_of_fields(config: Node) -> IntegrationKey | None:
    """The integration whose fields a config's keys are (or are closest to), most keys matched;
    None when no key is like any integration's field."""
    if not isinstance(config, MappingNode):
        return None
    keys = [str(key.value) for key, _ in config.value if isinstance(key, ScalarNode)]
    best: IntegrationKey | None = None
    best_score = 0
    for integration in INTEGRATION_KEYS:
        fields = [api_name(field) for field in form_fields(CONFIG_CLASSES[integration])]
        score = sum(1 for key in keys if difflib.get_close_matches(key, fields, n=1, cutoff=0.7))
        if score > best_score:
            best, best_score = integration, score
    return best


class Document:
    """One manifest file, validated on its own: its stores, its targets (their store names are
    checked across the set later) and its problems, collected instead of raised."""

    def __init__(
        self,
        file: str,
        base_dir: Path,
        env: Mapping[str, str],
        policy: ReferencePolicy,
        *,
        require_secrets: bool = True,
    ) -> None:
        self.file = file
        self.problems = Problems(file)
        self.reader = NodeReader(file, self.problems)
        self.resolver = Resolver(
            policy=policy, env=env, base_dir=base_dir, require_values=require_secrets
        )
        self.stores: list[PartialStore] = []
        self.targets: list[PendingTarget] = []
        self.has_targets_key = False
        self.digest = ""  # of the text checked: which manifest a journal is about

    def check(self, text: str) -> None:
        """Parse and validate the text; results and problems accumulate on ``self``."""
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        root = parse(text, self.file, self.problems)
        if root is None:
            return
        try:
            self._top(root)
        except TooMuch as exc:
            self.problems.add(exc.line, "", exc.message)

    def _top(self, root: Node) -> None:
        if not isinstance(root, MappingNode):
            self.reader.add(
                root,
                "",
                "the top level must be a mapping with version, stores and targets, "
                f"got {self.reader.kind(root)}",
            )
            return
        entries = self.reader.mapping(root, "")
        if entries is None:
            return
        self.reader.keys(root, entries, "", _TOP_KEYS, required=("version",))
        if "version" in entries and not self._version(entries["version"][1]):
            return
        defaults = _Defaults()
        if "defaults" in entries:
            defaults = self._defaults(entries["defaults"][1])
        if "stores" in entries:
            self._stores(entries["stores"][1], defaults)
        if "targets" in entries:
            self.has_targets_key = True
            self.targets.extend(read_targets(self.reader, entries["targets"][1]))
        if "stores" not in entries and "targets" not in entries:
            self.reader.add(root, "", "defines no stores and no targets")

    def _version(self, node: Node) -> bool:
        """Check the version; False when it names another format, which is not read further."""
        if isinstance(node, ScalarNode) and node.tag == INT:
            ok, value = self.reader.scalar(node, "version")
            if ok and value == FORMAT_VERSION:
                return True
            if ok:
                self.reader.add(
                    node,
                    "version",
                    f"unsupported version {quote(str(node.value))} "
                    f"(this ldbulk reads version {FORMAT_VERSION})",
                )
                return False
            return True
        self.reader.add(node, "version", f"must be {FORMAT_VERSION}, got {self.reader.kind(node)}")
        return True

    def _defaults(self, node: Node) -> _Defaults:
        entries = self.reader.mapping(node, "defaults")
        if entries is None:
            return _Defaults()
        self.reader.keys(node, entries, "defaults", _DEFAULTS_KEYS)
        if "allowEnv" in entries:
            self.resolver.allow_env = self._allow_env(entries["allowEnv"][1], "defaults.allowEnv")
        on = self.reader.boolean(entries["on"][1], "defaults.on") if "on" in entries else None
        tags: tuple[str, ...] | None = ()
        if "tags" in entries:
            tags = self.reader.tags(entries["tags"][1], "defaults.tags")
        ownership_tag = DEFAULT_OWNERSHIP_TAG
        if "ownershipTag" in entries:
            ownership_tag = (
                self.reader.identifier(entries["ownershipTag"][1], "defaults.ownershipTag", "tag")
                or DEFAULT_OWNERSHIP_TAG
            )
        return _Defaults(on=on, tags=tags or (), ownership_tag=ownership_tag)

    def _allow_env(self, node: Node, path: str) -> frozenset[str]:
        """The names of this file's own allow-list. None may be credential-shaped: trust in
        a credential stays with the job that runs the manifest (``--allow-env``)."""
        items = self.reader.sequence(node, path)
        names: set[str] = set()
        for index, item in enumerate(items or ()):
            name = self.reader.string(item, index_path(path, index))
            if name is None:
                continue
            reason = manifest_allow_refusal(name)
            if reason is not None:
                self.reader.add(
                    item, index_path(path, index), f"cannot allow {quote(name)}: {reason}"
                )
                continue
            names.add(name)
        return frozenset(names)

    def _stores(self, node: Node, defaults: _Defaults) -> None:
        entries = self.reader.mapping(node, "stores")
        if entries is None:
            return
        if not entries:
            self.reader.add(node, "stores", "must define at least one store")
        for name, (key_node, value_node) in entries.items():
            path = child_path("stores", name)
            if not KEY.fullmatch(name) or len(name) > 64:
                self.reader.add(
                    key_node,
                    path,
                    "store names use letters, digits, '.', '_' and '-', start with a letter or "
                    "digit, and have at most 64 characters",
                )
                continue
            self._store(name, key_node, value_node, path, defaults)

    def _store(
        self,
        name: str,
        key_node: Node,
        node: Node,
        path: str,
        defaults: _Defaults,
    ) -> None:
        source = self.reader.source(key_node, path)
        entries = self.reader.mapping(node, path)
        if entries is None:
            self.stores.append(PartialStore(name=name, integration=None, store=None, source=source))
            return
        self.reader.keys(node, entries, path, _STORE_KEYS, required=("integration", "config"))
        valid = True
        integration: IntegrationKey | None = None
        # The integration the config is checked against: the closest known one when the key is
        # misspelt, so one pass shows the config's problems too (the store is not built).
        checked_as: IntegrationKey | None = None
        if "integration" in entries:
            integration, checked_as = self._integration(
                entries["integration"][1],
                child_path(path, "integration"),
                entries["config"][1] if "config" in entries else None,
            )
        template: str | None = None
        if "name" in entries:
            template = self._template(entries["name"][1], child_path(path, "name"))
            valid = valid and template is not None
        on = defaults.on
        if "on" in entries:
            on = self.reader.boolean(entries["on"][1], child_path(path, "on"))
            valid = valid and on is not None
        tags: tuple[str, ...] | None = ()
        if "tags" in entries:
            tags = self.reader.tags(entries["tags"][1], child_path(path, "tags"))
            valid = valid and tags is not None
        config: StoreConfig | None = None
        if "config" in entries and checked_as is not None:
            config_node, config_path = entries["config"][1], child_path(path, "config")
            config = read_config(self.reader, self.resolver, checked_as, config_node, config_path)
        store = None
        if valid and config is not None and integration is not None:
            store = Store(
                name=name,
                config=config,
                on=bool(on),
                tags=_unique(defaults.tags + (tags or ())),
                ownership_tag=defaults.ownership_tag,
                name_template=template,
                source=source,
            )
        self.stores.append(
            PartialStore(name=name, integration=integration, store=store, source=source)
        )

    def _integration(
        self, node: Node, path: str, config: Node | None
    ) -> tuple[IntegrationKey | None, IntegrationKey | None]:
        """The integration key, and the one to check the config against: the closest known
        key when this one is misspelt, else the one whose fields the config's keys are (None
        when nothing is close)."""
        value = self.reader.string(node, path)
        if value is None:
            return None, None
        if value in INTEGRATION_KEYS:
            known = cast(IntegrationKey, value)
            return known, known
        close = difflib.get_close_matches(value.lower(), INTEGRATION_KEYS, n=1, cutoff=0.6)
        guess = cast(IntegrationKey, close[0]) if close else None
        hint = f"; did you mean {quote(guess)}?" if guess else ""
        if guess is None and config is not None:
            guess = _integration_of_fields(config)
            hint = f"; its config is checked as {guess}'s" if guess else ""
        self.reader.add(
            node, path, f"unknown integration {quote(value)} (expected redis or dynamodb{hint})"
        )
        return None, guess

    def _template(self, node: Node, path: str) -> str | None:
        template = self.reader.string(node, path)
        if template is None:
            return None
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            self.reader.add(
                node, path, f"not a valid name template: {exc} (write {{{{ or }}}} for a brace)"
            )
            return None
        ok = True
        for _, field, spec, conversion in parts:
            if field is None:
                continue
            if field not in _PLACEHOLDERS:
                shown = quote("{" + field + "}")
                self.reader.add(
                    node, path, f"unknown placeholder {shown} (use {{project}} and {{environment}})"
                )
                ok = False
            elif spec or conversion:
                self.reader.add(
                    node, path, f"placeholder {{{field}}} takes no conversion or format"
                )
                ok = False
        return template if ok else None


@attrs.frozen(kw_only=True)
class _Defaults:
    """A file's ``defaults``: what its stores start from."""

    on: bool | None = None
    tags: tuple[str, ...] = ()
    ownership_tag: str = DEFAULT_OWNERSHIP_TAG


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
