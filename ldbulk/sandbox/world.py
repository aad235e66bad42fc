"""The sandbox's world: projects, environments and the integrations stored in them.

A world comes from a JSON or YAML file, or is generated (``proj-001`` x ``env-001``). The file
format, parsed with ldbulk's one converter::

    projects:
      - key: checkout
        name: Checkout          # optional, defaults to the key
        tags: [payments]        # optional
        environments:
          - key: production
            tags: [prod]
    integrations:               # optional: integrations that already exist
      - projectKey: checkout
        environmentKey: production
        integrationKey: redis
        config: {host: redis.internal}
        on: true                # optional, as are name, tags, _id and version
    unreachableHosts:           # optional: Redis hosts a store can never sync with
      - redis.down.internal

Items are rendered to the API's JSON once, when the world is built, so a list request never
copies or re-renders the world.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import yaml

from ldbulk.api.converter import structure
from ldbulk.api.models import (
    CONFIG_CLASSES,
    INTEGRATION_KEYS,
    api_name,
    check_field,
    form_fields,
    is_required,
    redacted_on_read,
)
from ldbulk.api.sansio import BIG_SEGMENT_STORE, segment
from ldbulk.errors import ConfigError, ResponseFormatError
from ldbulk.sandbox.masking import REDACTED_VALUE as REDACTED_VALUE

# The formVariables LaunchDarkly redacts on read: those with ``isSecret`` in the manifests.
SECRET_FIELDS: Final = {
    key: frozenset(api_name(field) for field in form_fields(cls) if redacted_on_read(field))
    for key, cls in CONFIG_CLASSES.items()
}

_JSON_TYPE: Final = "application/json"


@attrs.frozen(kw_only=True)
class EnvironmentSpec:
    """One environment of a world file."""

    key: str
    name: str | None = None
    tags: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ProjectSpec:
    """One project of a world file, with its environments."""

    key: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    environments: tuple[EnvironmentSpec, ...] = ()


@attrs.frozen(kw_only=True)
class IntegrationSpec:
    """One pre-existing integration of a world file (or of a state file)."""

    project_key: str
    environment_key: str
    integration_key: str
    config: dict[str, Any]
    on: bool = False
    tags: tuple[str, ...] = ()
    name: str = ""
    id: str | None = attrs.field(default=None, metadata={"api": "_id"})
    version: int = 1


@attrs.frozen(kw_only=True)
class WorldSpec:
    """The contents of a world file."""

    projects: tuple[ProjectSpec, ...] = ()
    integrations: tuple[IntegrationSpec, ...] = ()
    unreachable_hosts: tuple[str, ...] = ()


# What the converter's messages call by a Python type, as the writer of a world file knows it.
_PLAIN_NAMES: Final = {
    "WorldSpec": "a mapping of projects, integrations and unreachableHosts",
    "ProjectSpec": "a project (a mapping with key, and optionally name, tags, environments)",
    "EnvironmentSpec": "an environment (a mapping with key, and optionally name, tags)",
    "IntegrationSpec": "an integration (a mapping with projectKey, environmentKey, "
    "integrationKey and config)",
    "tuple": "a list",
    "dict": "a mapping",
}
_PLAIN_PATTERN: Final = re.compile(r"\b(?:" + "|".join(_PLAIN_NAMES) + r")\b")


def parse_world(data: Any, *, what: str = "world") -> WorldSpec:
    """A :class:`WorldSpec` from JSON-ready data, or :class:`ConfigError` naming the bad fields
    in the file's own words (its keys and YAML's kinds of value, not Python's types)."""
    try:
        return structure(data, WorldSpec, what=what)
    except ResponseFormatError as exc:
        problems = str(exc).split(": ", 1)[1].split("; ")
        said = "; ".join(map(_plain_problem, problems))
        raise ConfigError(
            f"{what}: {said} (the format is in the README, under the sandbox's world file)"
        ) from None


def _plain_problem(problem: str) -> str:
    """``invalid value for type, expected tuple @ $.projects`` as ``projects: expected a
    list``."""
    text, _, path = problem.rpartition(" @ ")
    text = text.removeprefix("invalid value for type, ").replace("required field", "required key")
    place = path.removeprefix("$").removeprefix(".") or "the file"
    return f"{place}: {_PLAIN_PATTERN.sub(lambda match: _PLAIN_NAMES[match.group()], text)}"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: PyYAML's 1.1 rules read the key ``on:`` as ``True``."""


_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def read_world_file(path: Path) -> WorldSpec:
    """Read a world file, JSON or YAML (by suffix; anything else is tried as YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"world file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else _load_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"world file {str(path)!r}: not valid JSON/YAML ({exc})") from None
    return parse_world(data, what=f"world file {str(path)!r}")


def generate_world(projects: int, environments: int) -> WorldSpec:
    """A world of ``projects`` x ``environments`` with keys ``proj-001`` / ``env-001``.

    Every environment gets one tag, ``dev`` for odd numbers and ``prod`` for even ones, so tag
    selectors have something deterministic to select.
    """
    if projects < 0 or environments < 0:
        raise ConfigError("projects and environments must be zero or more")
    envs = tuple(
        EnvironmentSpec(key=f"env-{j:03d}", tags=("prod" if j % 2 == 0 else "dev",))
        for j in range(1, environments + 1)
    )
    return WorldSpec(
        projects=tuple(
            ProjectSpec(key=f"proj-{i:03d}", tags=("generated",), environments=envs)
            for i in range(1, projects + 1)
        )
    )


def stable_id(*parts: str) -> str:
    """A 24-hex-digit id (LaunchDarkly's shape) derived from keys, so worlds are reproducible."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def new_id() -> str:
    """A fresh random 24-hex-digit id for an integration created at run time."""
    return secrets.token_hex(12)


def _link(href: str) -> dict[str, str]:
    return {"href": href, "type": _JSON_TYPE}


def validate_config(integration_key: str, config: Any) -> dict[str, Any]:
    """The stored form of a ``config`` object, validated as the integration's manifest says.

    The store-config models of :mod:`ldbulk.api.models` do the validation, field by field, and
    a message names the field by its formVariable name. The result has every formVariable
    (defaults filled in) and ``port`` as a string, as LaunchDarkly stores it.
    """
    if not isinstance(config, dict):
        raise ConfigError("config: must be an object")
    cls = CONFIG_CLASSES[integration_key]
    fields = {api_name(field): field for field in form_fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ConfigError(
            f"config.{unknown[0]}: not a formVariable of the {integration_key} integration "
            f"(expected {', '.join(fields)})"
        )
    missing = [api for api, field in fields.items() if is_required(field) and api not in config]
    if missing:
        raise ConfigError(f"config.{missing[0]}: required by the {integration_key} integration")
    values: dict[str, Any] = {}
    # Field by field, in order, as the constructor would: the first bad one is reported, by its
    # formVariable name.
    for api, field in fields.items():
        if api in config:
            values[field.name], reason = check_field(field, config[api])
            if reason is not None:
                raise ConfigError(f"config.{api}: {reason}")
    return cls(**values).to_api()


@attrs.define
class EnvironmentRecord:
    """An environment, with its API item rendered once (SDK keys included, as LaunchDarkly)."""

    key: str
    item: dict[str, Any]


@attrs.define
class ProjectRecord:
    """A project, its API item and its environments in order."""

    key: str
    item: dict[str, Any]
    environments: dict[str, EnvironmentRecord]
    environment_items: list[dict[str, Any]]


@attrs.define
class IntegrationRecord:
    """One stored integration; ``config`` holds the secrets, reads never show them."""

    id: str
    integration_key: str
    project_key: str
    environment_key: str
    config: dict[str, Any]
    on: bool = False
    tags: list[str] = attrs.field(factory=list)
    name: str = ""
    version: int = 1
    # When its configuration was set (epoch ms): a simulated sync starts from there.
    config_set_ms: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        """(project, environment, integration key): one integration each."""
        return (self.project_key, self.environment_key, self.integration_key)

    def path(self) -> str:
        """The API path of this integration."""
        return "/".join(
            [
                BIG_SEGMENT_STORE,
                *map(segment, (*self.key, self.id)),
            ]
        )

    def render(self, *, with_config: bool, status: Mapping[str, Any]) -> dict[str, Any]:
        """The API representation; ``config`` (redacted) only for a single integration.

        ``status`` is its ``_status``, which the store's simulated sync decides.
        """
        project = f"/api/v2/projects/{segment(self.project_key)}"
        item: dict[str, Any] = {
            "_links": {
                "self": _link(self.path()),
                "parent": _link(BIG_SEGMENT_STORE),
                "project": _link(project),
                "environment": _link(f"{project}/environments/{segment(self.environment_key)}"),
            },
            "_id": self.id,
            "integrationKey": self.integration_key,
            "projectKey": self.project_key,
            "environmentKey": self.environment_key,
            "on": self.on,
            "tags": list(self.tags),
            "name": self.name,
            "version": self.version,
            "_status": dict(status),
        }
        if with_config:
            item["config"] = self.redacted_config()
        return item

    def redacted_config(self) -> dict[str, Any]:
        """``config`` as LaunchDarkly shows it: a set secret reads as a mask, never its value."""
        secret = SECRET_FIELDS[self.integration_key]
        return {
            key: (REDACTED_VALUE if key in secret and value else value)
            for key, value in self.config.items()
        }

    def to_spec(self) -> dict[str, Any]:
        """The world-file form of this integration, with secrets redacted (for the state file)."""
        return {
            "_id": self.id,
            "projectKey": self.project_key,
            "environmentKey": self.environment_key,
            "integrationKey": self.integration_key,
            "config": self.redacted_config(),
            "on": self.on,
            "tags": list(self.tags),
            "name": self.name,
            "version": self.version,
        }


def now_ms() -> int:
    """Epoch milliseconds."""
    return int(time.time() * 1000)


def build_projects(spec: WorldSpec) -> dict[str, ProjectRecord]:
    """Project records, with every API item rendered, keyed and ordered as in the spec."""
    projects: dict[str, ProjectRecord] = {}
    for project in spec.projects:
        if project.key in projects:
            raise ConfigError(f"world: project {project.key!r} appears twice")
        href = f"/api/v2/projects/{segment(project.key)}"
        environments: dict[str, EnvironmentRecord] = {}
        for env in project.environments:
            if env.key in environments:
                raise ConfigError(
                    f"world: environment {env.key!r} appears twice in project {project.key!r}"
                )
            env_id = stable_id(project.key, env.key)
            environments[env.key] = EnvironmentRecord(
                key=env.key,
                item={
                    "_links": {"self": _link(f"{href}/environments/{segment(env.key)}")},
                    "_id": env_id,
                    "key": env.key,
                    "name": env.name if env.name is not None else env.key,
                    # Fake SDK keys: the real API sends them, so tests can see clients drop them.
                    "apiKey": f"sdk-{stable_id('sdk', project.key, env.key)}",
                    "mobileKey": f"mob-{stable_id('mob', project.key, env.key)}",
                    "color": "F5A623",
                    "defaultTtl": 0,
                    "secureMode": False,
                    "defaultTrackEvents": False,
                    "requireComments": False,
                    "confirmChanges": False,
                    "tags": list(env.tags),
                    "critical": False,
                },
            )
        projects[project.key] = ProjectRecord(
            key=project.key,
            item={
                "_links": {
                    "self": _link(href),
                    "environments": _link(f"{href}/environments"),
                },
                "_id": stable_id(project.key),
                "key": project.key,
                "includeInSnippetByDefault": False,
                "name": project.name if project.name is not None else project.key,
                "tags": list(project.tags),
            },
            environments=environments,
            environment_items=[env.item for env in environments.values()],
        )
    return projects


def build_integrations(
    specs: tuple[IntegrationSpec, ...], projects: Mapping[str, ProjectRecord], *, what: str
) -> dict[tuple[str, str, str], IntegrationRecord]:
    """Integration records from specs, validated against the world like a create would be."""
    stored: dict[tuple[str, str, str], IntegrationRecord] = {}
    for index, spec in enumerate(specs):
        where = f"{what}: integrations[{index}]"
        project = projects.get(spec.project_key)
        if project is None or spec.environment_key not in project.environments:
            raise ConfigError(
                f"{where}: no environment {spec.project_key!r}/{spec.environment_key!r} "
                "in the world"
            )
        if spec.integration_key not in INTEGRATION_KEYS:
            raise ConfigError(f"{where}: integrationKey must be one of {INTEGRATION_KEYS}")
        try:
            config = validate_config(spec.integration_key, spec.config)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        record = IntegrationRecord(
            id=spec.id or stable_id(spec.project_key, spec.environment_key, spec.integration_key),
            integration_key=spec.integration_key,
            project_key=spec.project_key,
            environment_key=spec.environment_key,
            config=config,
            on=spec.on,
            tags=list(spec.tags),
            name=spec.name,
            version=spec.version,
            config_set_ms=now_ms(),
        )
        if record.key in stored:
            raise ConfigError(f"{where}: a second {spec.integration_key} integration there")
        stored[record.key] = record
    return stored
