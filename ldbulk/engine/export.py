"""The export workflow: the account's integrations, as a version-1 manifest that describes them.

For an account set up by hand: ``export`` reads what is there and writes the manifest that
``plan`` then finds all in place, so the stores can be kept in git from then on.

- **Reads only.** One list request, then each selected integration read by id, a few at a time
  through the client's pacer: the list's items carry no ``config``, which LaunchDarkly documents
  as "only included when requesting a single integration by ID".
- **One store per distinct setup.** Integrations with the same integration key, the same
  non-secret config, ``on``, tags and name become one store, whatever their environments. A name
  that mentions its project or environment key (``Big segments for web/production``) becomes the
  template ``{project}``/``{environment}`` stand in for, so per-environment names still share a
  store; rendering the template gives each environment's name back exactly.
- **Secrets by reference, never by value.** The fields the config field table marks secret (the
  Redis password, the DynamoDB external id) become ``${VAR}`` references: LaunchDarkly masks the
  password on read, and the external id, though read back in clear, is kept out of every output
  like any secret. An unset Redis password stays ``""``. Stores with the same connection (same
  integration key and non-secret config) share one variable, since they share the credential.
  Any other field answered masked (:func:`~ldbulk.api.fields.looks_masked`) is a reference too,
  never its mask; integrations whose masks differ are kept apart.
- **Deterministic.** Store names (``redis-<host>``, ``dynamodb-<table>-<region>``, made unique
  with ``-2``, ``-3`` ...), variable names and the order of everything depend only on what the
  account holds, never on the order LaunchDarkly lists it in.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
import yaml

from ldbulk.api.models import (
    CONFIG_CLASSES,
    DEFAULT_OWNERSHIP_TAG,
    KEY_PATTERN,
    Integration,
    api_name,
    check_field,
    form_fields,
    is_required,
    is_secret,
    looks_masked,
)
from ldbulk.engine.provision import concurrency_or_default
from ldbulk.errors import NotFound
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import FORMAT_VERSION, credential_pattern
from ldbulk.manifest.jsonschema import MAX_STORE_NAME_LENGTH

# Store names as a manifest takes them: letters, digits, '.', '_' and '-'.
_NOT_IN_STORE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_IN_VARIABLE: Final = re.compile(r"[^A-Z0-9]+")

# The config fields (formVariables) a store's name is made of, per integration key.
_NAMED_BY: Final[Mapping[str, tuple[str, ...]]] = {
    "redis": ("host",),
    "dynamodb": ("tableName", "region"),
}


@attrs.frozen(kw_only=True)
class SkippedIntegration:
    """An integration the manifest cannot describe, and why (the reason holds no secret)."""

    project: str
    environment: str
    integration: str
    reason: str


@attrs.frozen(kw_only=True)
class ExportResult:
    """What :func:`export` found: the manifest document, the variables it needs, what it left out.

    ``document`` is a plain dict in the manifest's own key order (version, stores, targets).
    ``variables`` maps each ``${VAR}`` the document uses to the stores using it: set each to the
    secret LaunchDarkly holds before loading the manifest. ``skipped`` lists the integrations
    the manifest could not describe.
    """

    document: dict[str, Any]
    variables: Mapping[str, tuple[str, ...]]
    skipped: tuple[SkippedIntegration, ...] = ()

    def to_yaml(self) -> str:
        """The document as YAML, keys in the manifest's order, every value written out."""
        return yaml.dump(
            self.document,
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=100,
        )


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


_Dumper.add_representer(list, _represent_list)


@attrs.frozen(kw_only=True)
class _Shape:
    """What makes an integration's store: everything but its project and environment."""

    integration: str
    # The non-secret formVariables present, (API name, value as a manifest writes it), in the
    # field table's order.
    config: tuple[tuple[str, object], ...]
    # Each secret formVariable (API name) and whether the integration has it set; and each
    # other one read back masked, by reference too (its mask tells stores apart, never written).
    secrets: tuple[tuple[str, bool], ...]
    masked: tuple[tuple[str, str], ...] = ()
    on: bool
    tags: tuple[str, ...]
    name: str | None  # a name template

    @property
    def connection(self) -> tuple[object, ...]:
        """What one credential goes with: the integration key and the non-secret config."""
        return (self.integration, self.config, self.masked)

    def order(self) -> str:
        """A total order that does not depend on the listing's."""
        return json.dumps(attrs.astuple(self))


async def export(
    client: Client,
    *,
    projects: Sequence[str] = (),
    scope: RequestScope | None = None,
    concurrency: int | None = None,
) -> ExportResult:
    """The account's integrations (those of ``projects``; all when none) as a version-1
    manifest document, with the variables its secret references need.

    Reads only: one list request, then one read by id per selected integration, at most
    ``concurrency`` at a time. An integration deleted between the list and its read is left
    out; any other API error is raised.
    """
    if isinstance(projects, str):
        raise TypeError("projects: expected a sequence of project keys, got one string")
    wanted = set(projects)
    listed = sorted(
        (
            item
            for item in await client.list_integrations(lean=True, scope=scope)
            if not wanted or item.project_key in wanted
        ),
        key=lambda item: (item.project_key, item.environment_key, item.integration_key),
    )
    skipped: list[SkippedIntegration] = []
    readable = []
    for item in listed:
        if item.integration_key in CONFIG_CLASSES:
            readable.append(item)
        else:
            skipped.append(_skip(item, "not a redis or dynamodb integration"))
    placed: list[tuple[Integration, _Shape]] = []
    workers = max(1, concurrency_or_default(concurrency))
    for integration in await _read_all(client, readable, scope, workers):
        if integration is None:
            continue
        shape = _shape(integration)
        if isinstance(shape, str):
            skipped.append(_skip(integration, shape))
        else:
            placed.append((integration, shape))
    document, variables = _build(placed)
    return ExportResult(document=document, variables=variables, skipped=tuple(skipped))


async def _read_all(
    client: Client, listed: Sequence[Integration], scope: RequestScope | None, concurrency: int
) -> list[Integration | None]:
    """Each listed integration read by id (None when it is gone), ``concurrency`` at a time;
    the first error cancels the other reads and is raised."""
    read: list[Integration | None] = [None] * len(listed)
    queue = iter(enumerate(listed))

    async def worker() -> None:
        # One shared iterator: a worker takes the next integration when its read is done.
        for index, item in queue:
            try:
                read[index] = await client.get_integration(
                    item.project_key,
                    item.environment_key,
                    item.integration_key,
                    item.id,
                    scope=scope,
                )
            except NotFound:
                read[index] = None  # deleted since it was listed: nothing to describe

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(listed))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return read


def _skip(integration: Integration, reason: str) -> SkippedIntegration:
    return SkippedIntegration(
        project=integration.project_key,
        environment=integration.environment_key,
        integration=integration.integration_key,
        reason=reason,
    )


def _shape(integration: Integration) -> _Shape | str:
    """The store an integration read by id belongs to, or why a manifest cannot describe it."""
    if integration.config is None:
        return "LaunchDarkly's answer carried no config"
    config: list[tuple[str, object]] = []
    secrets: list[tuple[str, bool]] = []
    masked: list[tuple[str, str]] = []
    # Keys outside the field table are left out: a manifest has no way to write them.
    for field in form_fields(CONFIG_CLASSES[integration.integration_key]):
        key = api_name(field)
        value = integration.config.get(key)
        if is_secret(field):
            # Whether it is set is all that is kept, never the value (masked on read anyway
            # for the password). A required secret is always a reference.
            secrets.append((key, bool(value) or is_required(field)))
            continue
        if looks_masked(value):  # unknown: the user sets it, as a secret
            secrets.append((key, True))
            masked.append((key, str(value)))
            continue
        if value is None:
            if is_required(field):
                return f"config has no {key}"
            continue
        converted, reason = check_field(field, value)
        if reason is not None:
            return f"config {key}: {reason}"
        if isinstance(converted, str) and "${" in converted:
            return f'config {key} holds "${{", which a manifest reads as a reference'
        config.append((key, converted))
    # The ownership tag is not the manifest's to write: apply adds it to everything it writes.
    tags = tuple(sorted(set(integration.tags) - {DEFAULT_OWNERSHIP_TAG}))
    bad_tags = [tag for tag in tags if not KEY_PATTERN.fullmatch(tag)]
    if bad_tags:
        return f"tag {bad_tags[0]!r} is not one a manifest can write"
    return _Shape(
        integration=integration.integration_key,
        config=tuple(config),
        secrets=tuple(secrets),
        masked=tuple(masked),
        on=integration.on,
        tags=tags,
        name=_template(integration.name, integration.project_key, integration.environment_key),
    )


def _template(name: str, project: str, environment: str) -> str | None:
    """A name template that renders ``name`` back for this project and environment: each key
    standing alone (not inside a longer word) becomes its placeholder, braces are doubled."""
    if not name:
        return None
    keys = sorted({project, environment}, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, keys)) + r")(?![A-Za-z0-9])"
    )
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(name):
        parts.append(_escape_braces(name[last : match.start()]))
        parts.append("{project}" if match.group() == project else "{environment}")
        last = match.end()
    parts.append(_escape_braces(name[last:]))
    return "".join(parts)


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _build(
    placed: Iterable[tuple[Integration, _Shape]],
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """The manifest document and its variables, from each integration and its store."""
    environments: dict[_Shape, dict[str, list[str]]] = {}
    for integration, shape in placed:
        by_project = environments.setdefault(shape, {})
        by_project.setdefault(integration.project_key, []).append(integration.environment_key)
    names = _store_names(sorted(environments, key=_Shape.order))
    references, variables = _variables(names)
    stores = {
        names[shape]: _store_entry(shape, references)
        for shape in sorted(environments, key=names.__getitem__)
    }
    targets = [
        {"project": project, "environments": sorted(keys), "store": names[shape]}
        for shape, by_project in environments.items()
        for project, keys in by_project.items()
    ]
    targets.sort(key=lambda target: (target["project"], target["store"]))
    document = {"version": FORMAT_VERSION, "stores": stores, "targets": targets}
    return document, variables


def _store_names(shapes: Sequence[_Shape]) -> dict[_Shape, str]:
    """A readable, unique, valid store name for each store, given in a stable order."""
    names: dict[_Shape, str] = {}
    used: set[str] = set()
    for shape in shapes:
        values = dict(shape.config)
        named = (str(values.get(key, "")) for key in _NAMED_BY[shape.integration])
        parts = [shape.integration, *named]
        base = "-".join(_NOT_IN_STORE_NAME.sub("-", part).strip("-") for part in parts if part)
        names[shape] = _unique(base.lower(), used, "-", MAX_STORE_NAME_LENGTH)
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
    names: Mapping[_Shape, str],
) -> tuple[dict[tuple[object, str], str], dict[str, tuple[str, ...]]]:
    """The variable of each (connection, secret field) that is set, and the stores using each
    variable. Stores with one connection share its credential, so they share the variable,
    named after the first of them: ``LD_REDIS_PASSWORD_<STORE>``."""
    references: dict[tuple[object, str], str] = {}
    users: dict[str, list[str]] = {}
    used: set[str] = set()
    for shape, store in sorted(names.items(), key=lambda item: item[1]):
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


def _store_entry(shape: _Shape, references: Mapping[tuple[object, str], str]) -> dict[str, Any]:
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
