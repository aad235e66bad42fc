"""The exported manifest: stores named after what they are, targets in natural order, as YAML.

Decisions only, no I/O: :func:`build` groups the integrations read into stores and targets,
:func:`manifest_yaml` writes the document the way a person would have.

- **Store names from the store**: a Redis host's first label (``cache`` for
  ``cache.internal.example.com``), a DynamoDB table's name; when two stores would share it, the
  next more precise name (the whole host, the table and its region), then ``-2``, ``-3`` ....
- **Natural order** of projects, environments and stores (``env-2`` before ``env-10``).
- **``environments: "*"``** when a store covers every environment of a project, as the
  project's own listing has them; **``project: "*"``** when every project of the account
  (two or more) has the same targets, written the same way.
- **Integrations made by hand** (without the ownership tag) are named in a comment above
  their target: applying the file takes them over.
"""

from __future__ import annotations

import ipaddress
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
import yaml

from ldbulk.api.models import CONFIG_CLASSES, DEFAULT_OWNERSHIP_TAG, api_name, form_fields
from ldbulk.engine.export_shape import Shape
from ldbulk.manifest import FORMAT_VERSION, credential_pattern
from ldbulk.manifest.jsonschema import MAX_STORE_NAME_LENGTH
from ldbulk.text import natural_key

# Store names as a manifest takes them: letters, digits, '.', '_' and '-', starting with a
# letter or digit.
_NOT_IN_STORE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_IN_VARIABLE: Final = re.compile(r"[^A-Z0-9]+")
_COMMENT_WIDTH: Final = 98


@attrs.frozen(kw_only=True)
class Placed:
    """One integration read and described: where it is, its store, and whether it carries the
    ownership tag (one without it was made by hand)."""

    project: str
    environment: str
    shape: Shape
    owned: bool


@attrs.frozen(kw_only=True)
class Built:
    """The manifest document, the variables it needs, and the environments made by hand of
    each (project, store) target (``project/environment`` under a ``"*"`` target)."""

    document: dict[str, Any]
    variables: dict[str, tuple[str, ...]]
    by_hand: dict[tuple[str, str], tuple[str, ...]]
    integrations: int
    # The environment keys of each (project, store) target written "*": whether projects
    # whose targets are written differently have the same ones (see alike_projects).
    covered: dict[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict, repr=False)


def build(placed: Iterable[Placed], environments_of: Mapping[str, frozenset[str]]) -> Built:
    """The manifest of the integrations ``placed``; ``environments_of`` holds each project's
    environments where they could be listed (a project missing from it gets explicit lists)."""
    by_shape: dict[Shape, dict[str, list[tuple[str, bool]]]] = {}
    count = 0
    for item in placed:
        by_project = by_shape.setdefault(item.shape, {})
        by_project.setdefault(item.project, []).append((item.environment, item.owned))
        count += 1
    names = _store_names(sorted(by_shape, key=Shape.order))
    references, variables = _variables(names)
    stores = {
        names[shape]: _store_entry(shape, references)
        for shape in sorted(by_shape, key=lambda shape: natural_key(names[shape]))
    }
    targets: list[dict[str, Any]] = []
    by_hand: dict[tuple[str, str], tuple[str, ...]] = {}
    covered_keys: dict[tuple[str, str], tuple[str, ...]] = {}
    for shape, by_project in by_shape.items():
        for project, found in by_project.items():
            keys = sorted((key for key, _ in found), key=natural_key)
            every = environments_of.get(project)
            covered = every is not None and set(keys) == every
            store = names[shape]
            if covered:
                covered_keys[(project, store)] = tuple(keys)
            targets.append(
                {"project": project, "environments": "*" if covered else keys, "store": store}
            )
            unowned = sorted((key for key, owned in found if not owned), key=natural_key)
            if unowned:
                by_hand[(project, store)] = tuple(unowned)
    targets.sort(key=lambda t: (natural_key(t["project"]), natural_key(t["store"])))
    document = {"version": FORMAT_VERSION, "stores": stores, "targets": targets}
    return Built(document=document, variables=variables, by_hand=by_hand, integrations=count,
                 covered=covered_keys)


def alike_projects(built: Built) -> frozenset[str] | None:
    """The projects of the document when there are two or more and all have the same targets
    (the same stores, each in the same environments), else None. Whether they are the whole
    account is the caller's to know: only then may :func:`for_every_project` write them once.
    (The one project of an account stays named: ``"*"`` would say nothing more of it.)"""
    written, keys = _layouts(built)
    if len(written) < 2:
        return None
    return frozenset(written) if _alike(written) or _alike(keys) else None


def for_every_project(built: Built) -> Built:
    """``built``, whose projects are :func:`alike_projects` and the whole account, with the
    targets of one project written once, ``project: "*"``: as each project's are written when
    all are written alike, else with the environments listed (``"*"`` for one project may be
    ``[production]`` for another, which has only that one). What was made by hand is named
    ``project/environment`` above each target."""
    written, keys = _layouts(built)
    first = next(iter(written))
    layout = written[first] if _alike(written) else keys[first]
    projects = sorted(written, key=natural_key)
    targets: list[dict[str, Any]] = []
    by_hand: dict[tuple[str, str], tuple[str, ...]] = {}
    for store, environments in layout:
        listed = list(environments) if isinstance(environments, tuple) else environments
        targets.append({"project": "*", "environments": listed, "store": store})
        found = [
            f"{project}/{environment}"
            for project in projects
            for environment in built.by_hand.get((project, store), ())
        ]
        if found:
            by_hand[("*", store)] = tuple(found)
    document = {**built.document, "targets": targets}
    return attrs.evolve(built, document=document, by_hand=by_hand, covered={})


_Layout = list[tuple[str, object]]  # a project's targets: (store, environments), store order


def _layouts(built: Built) -> tuple[dict[str, _Layout], dict[str, _Layout]]:
    """Each project's targets as written, and with the environments of each listed."""
    written: dict[str, _Layout] = {}
    keys: dict[str, _Layout] = {}
    for target in built.document["targets"]:
        project, store, environments = target["project"], target["store"], target["environments"]
        listed = tuple(environments) if isinstance(environments, list) else None
        written.setdefault(project, []).append((store, listed or environments))
        keys.setdefault(project, []).append((store, listed or built.covered[(project, store)]))
    return written, keys


def _alike(layouts: Mapping[str, _Layout]) -> bool:
    first, *others = layouts.values()
    return all(layout == first for layout in others)


def _name_candidates(shape: Shape) -> list[str]:
    """The names a store may take, shortest first: what it is, then more of it."""
    values = dict(shape.config)
    if shape.integration == "redis":
        host = str(values.get("host", ""))
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return [host.split(".")[0], host]
        return [f"redis-{host}"]  # a bare address's first part says nothing
    if shape.integration == "dynamodb":
        table = str(values.get("tableName", ""))
        return [table, f"{table}-{values.get('region', '')}"]
    return []


def _store_name(candidate: str) -> str:
    """``candidate`` as a valid store name ('' when nothing of it is left)."""
    cleaned = _NOT_IN_STORE_NAME.sub("-", candidate).lower().lstrip("._-")
    return cleaned[:MAX_STORE_NAME_LENGTH].rstrip("._-")


def _store_names(shapes: Sequence[Shape]) -> dict[Shape, str]:
    """A readable, unique, valid store name for each store, given in a stable order."""
    names: dict[Shape, str] = {}
    used: set[str] = set()
    for shape in shapes:
        candidates = [
            name for name in map(_store_name, _name_candidates(shape)) if name
        ] or [shape.integration]
        free = next((name for name in candidates if name not in used), None)
        if free is not None:
            used.add(free)
            names[shape] = free
        else:
            names[shape] = _unique(candidates[0], used, "-", MAX_STORE_NAME_LENGTH)
    return names


def _unique(base: str, used: set[str], joiner: str, limit: int | None = None) -> str:
    """``base``, or ``base`` with the first free ``-2``, ``-3`` ... (cut to ``limit``)."""
    number = 1
    while True:
        suffix = "" if number == 1 else f"{joiner}{number}"
        candidate = (base[: limit - len(suffix)] if limit else base) + suffix
        if candidate not in used:
            used.add(candidate)
            return candidate
        number += 1


def _variables(
    names: Mapping[Shape, str],
) -> tuple[dict[tuple[object, str], str], dict[str, tuple[str, ...]]]:
    """The variable of each (connection, secret field) that is set, and the stores using each
    variable. Stores with one connection share its credential, so they share the variable,
    named after the first of them: ``LD_REDIS_PASSWORD_<STORE>``."""
    references: dict[tuple[object, str], str] = {}
    users: dict[str, list[str]] = {}
    used: set[str] = set()
    for shape, store in sorted(names.items(), key=lambda item: natural_key(item[1])):
        for key, is_set in shape.secrets:
            if not is_set:
                continue
            slot = (shape.connection, key)
            if slot not in references:
                references[slot] = _variable_name(shape.integration, key, store, used)
            users.setdefault(references[slot], []).append(store)
    return references, {variable: tuple(stores) for variable, stores in sorted(users.items())}


def _variable_name(integration: str, field: str, store: str, used: set[str]) -> str:
    """``LD_<INTEGRATION>_<FIELD>_<STORE>``, a valid name no manifest refuses and none other
    uses."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", field)
    rest = store.removeprefix(f"{integration}-")
    words = (
        _NOT_IN_VARIABLE.sub("_", word.upper()).strip("_") for word in (integration, snake, rest)
    )
    name = "_".join(["LD", *(word for word in words if word)])
    # A name like another system's credential (*_TOKEN ...) would be refused by the loader.
    if credential_pattern(name) is not None:
        name += "_VALUE"
    return _unique(name, used, "_")


def _store_entry(shape: Shape, references: Mapping[tuple[object, str], str]) -> dict[str, Any]:
    """One store as the manifest writes it: integration, name, on, tags, config."""
    entry: dict[str, Any] = {"integration": shape.integration}
    if shape.name is not None:
        entry["name"] = shape.name
    entry["on"] = shape.on
    if shape.tags:
        entry["tags"] = list(shape.tags)
    config: dict[str, object] = dict(shape.config)
    for key, is_set in shape.secrets:
        config[key] = f"${{{references[(shape.connection, key)]}}}" if is_set else ""
    # The field table's order, secrets in their places.
    order = [api_name(f) for f in form_fields(CONFIG_CLASSES[shape.integration])]
    entry["config"] = {key: config[key] for key in order if key in config}
    return entry


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper that writes a repeated value again instead of an ``&anchor`` and
    ``*alias``: a manifest is read by people, each store and target whole."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    """A list of plain values (environments, tags) on one line, ``[a, b]``, like a hand-written
    manifest; a list of mappings (targets) one item a line."""
    flow = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    """A string as PyYAML writes it, but the wildcard in double quotes, as the manifest's own
    documentation writes ``environments: "*"``."""
    style = '"' if data == "*" else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
        width=100,
    )  # fmt: skip


def _store_yaml(name: str, entry: Mapping[str, Any]) -> str:
    """One store, indented under ``stores:``, its ``on`` key written bare as people write it.

    PyYAML quotes the key (``'on'``) since YAML 1.1 reads a bare ``on`` as a boolean; the
    manifest loader reads it as the key it is. Dumped alone, the entry's own keys are the only
    lines at its first indentation (a wrapped value's next lines are indented further), so
    the line is found exactly."""
    lines = _dump({name: dict(entry)}).splitlines()
    bare = [
        line.replace("'on':", "on:", 1) if line.startswith("  'on': ") else line
        for line in lines
    ]
    return "".join(f"  {line}\n" for line in bare)


def _by_hand_comment(environments: Sequence[str]) -> str:
    text = (
        f"Made by hand, without the {DEFAULT_OWNERSHIP_TAG} tag: {', '.join(environments)}. "
        "Applying this file takes them over: the first change it writes to each adds the tag, "
        "and from then on a prune may delete them."
    )
    return "".join(f"# {line}\n" for line in textwrap.wrap(text, _COMMENT_WIDTH))


def manifest_yaml(
    document: Mapping[str, Any], by_hand: Mapping[tuple[str, str], Sequence[str]]
) -> str:
    """The document as YAML, keys in the manifest's order, every value written out, a comment
    above each target holding integrations made by hand (``by_hand``, see :class:`Built`)."""
    stores, targets = document["stores"], document["targets"]
    parts = [_dump({"version": document["version"]})]
    parts.append("stores:\n" if stores else "stores: {}\n")
    parts += [_store_yaml(name, entry) for name, entry in stores.items()]
    parts.append("targets:\n" if targets else "targets: []\n")
    for target in targets:
        environments = by_hand.get((target["project"], target["store"]))
        if environments:
            parts.append(_by_hand_comment(environments))
        parts.append(_dump([target]))
    return "".join(parts)
