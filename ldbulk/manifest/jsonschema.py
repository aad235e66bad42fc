"""The JSON Schema of the manifest format: the one description of its shape.

Editors complete and check a manifest with it (the file shipped in the package,
``manifest.schema.json``, is this function's output; ``python -m ldbulk.manifest.jsonschema``
prints it), and the loader validates every file against it (:mod:`ldbulk.manifest.validate`).
It is built from the facts the models hold (the key pattern, the port range, each config
field's row of the field table), so no fact is written twice. What a schema cannot say stays
with the loader: a reference's trust rules, the stores a target names, duplicates across files,
and the models' judgement of each config value.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ldbulk.api.models import (
    CONFIG_CLASSES,
    DEFAULT_OWNERSHIP_TAG,
    KEY_PATTERN,
    PORT_RANGE,
    api_name,
    form_fields,
    is_required,
    is_secret,
    value_kind,
)

SCHEMA_FILE: Final = "manifest.schema.json"
FORMAT_VERSION: Final = 1
MAX_STORE_NAME_LENGTH: Final = 64

# A key's pattern bounds its length too (a maxLength beside it would cost the loader a check
# per environment key); a title names what a key is, in editors' hovers and in messages.
_KEY: Final = {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"}
REFERENCE: Final = {"type": "string", "pattern": r"^\$\{(file:)?[^}]+\}$"}
_TAGS: Final = {"type": "array", "items": {**_KEY, "title": "tag"}}
_ENVIRONMENTS: Final = 'a list of environment keys, "*" or {tags: [...]}'
_PROJECTS: Final = 'a list of project keys or {tags: [...]} (every project: project: "*")'


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version-1 manifest.

    Keywords and properties are in the order the loader reports their problems: unknown keys,
    then missing ones, then each value in the field table's order.
    """
    store_name = {**_KEY, "maxLength": MAX_STORE_NAME_LENGTH, "title": "store name"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ldbulk manifest",
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {
            "version": {"const": FORMAT_VERSION},
            "defaults": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "on": {"type": "boolean"},
                    "tags": _TAGS,
                    "allowEnv": {"type": "array", "items": {"type": "string"}},
                    "ownershipTag": {**_KEY, "title": "tag", "default": DEFAULT_OWNERSHIP_TAG},
                },
            },
            "stores": {
                "type": "object",
                "minProperties": 1,
                # patternProperties, not additionalProperties: checked in the file's order.
                "patternProperties": {
                    store_name["pattern"]: {"anyOf": [_store(key) for key in CONFIG_CLASSES]}
                },
                "propertyNames": store_name,
            },
            "targets": {"type": "array", "minItems": 1, "items": _target()},
        },
    }


def _value(field: Any) -> dict[str, Any]:
    """A config field's values: a secret only by reference (an optional one may be empty);
    a port a number in range, a string of digits or a reference; a flag true, false or a
    reference; any other field a string, which may be a reference."""
    if is_secret(field):
        return REFERENCE if is_required(field) else {"anyOf": [REFERENCE, {"const": ""}]}
    if field.type is int:
        low, high = PORT_RANGE
        number = {"type": "integer", "minimum": low, "maximum": high}
        return {"anyOf": [number, {"type": "string", "pattern": "^[0-9]+$"}, REFERENCE]}
    if field.type is bool:
        return {"anyOf": [{"type": "boolean"}, REFERENCE]}
    return {"type": "string"}


def _store(integration: str) -> dict[str, Any]:
    fields = form_fields(CONFIG_CLASSES[integration])
    config = {
        api_name(field): {**_value(field), "description": f"{api_name(field)}: {value_kind(field)}"}
        for field in fields
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["integration", "config"],
        "properties": {
            "integration": {"type": "string", "const": integration},
            "name": {"type": "string"},
            "config": {
                "type": "object",
                "additionalProperties": False,
                "required": [api_name(field) for field in fields if is_required(field)],
                "properties": config,
            },
            "on": {"type": "boolean"},
            "tags": _TAGS,
        },
    }


def _target() -> dict[str, Any]:
    project_key = {**_KEY, "title": "project key"}
    return {
        "type": "object",
        "additionalProperties": False,
        # Before "required": a missing project is reported before a missing store.
        "oneOf": [{"required": ["project"]}, {"required": ["projects"]}],
        "required": ["environments", "store"],
        "properties": {
            # No description: a number where a key is meant is told to be quoted, as a string.
            "project": {"anyOf": [project_key, {"const": "*"}]},
            "projects": {
                "description": _PROJECTS,
                "anyOf": [
                    {"type": "array", "minItems": 1, "items": project_key},
                    _tag_selector(),
                ],
            },
            "environments": {
                "description": _ENVIRONMENTS,
                # anyOf, as the alternatives exclude each other: the first that fits ends the
                # check (oneOf would try the others too), the commonest first.
                "anyOf": [
                    {"type": "array", "minItems": 1, "items": {**_KEY, "title": "environment key"}},
                    {"const": "*"},
                    _tag_selector(),
                ],
            },
            "store": {"type": "string"},
        },
    }


def _tag_selector() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["tags"],
        "properties": {"tags": {**_TAGS, "minItems": 1}},
    }


if __name__ == "__main__":  # pragma: no cover - prints the shipped file
    print(json.dumps(manifest_schema(), indent=2))
