"""A JSON Schema of the manifest format, for editors (yaml-language-server completes and checks a
manifest with it), built from the same field table the loader reads.

The schema describes the shape; the loader stays the judge. It checks what a schema cannot say
(a reference's trust rules, a store named by a target, duplicates across files) and gives
better messages. The file shipped in the package, ``manifest.schema.json``, is this function's
output; ``python -m ldbulk.manifest.jsonschema`` prints it.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ldbulk.api.models import (
    CONFIG_CLASSES,
    DEFAULT_OWNERSHIP_TAG,
    api_name,
    form_fields,
    is_required,
    is_secret,
    value_kind,
)

SCHEMA_FILE: Final = "manifest.schema.json"

_KEY: Final = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 256}
_REFERENCE: Final = {"type": "string", "pattern": r"^\$\{(file:)?[^}]+\}$"}
_TAGS: Final = {"type": "array", "items": _KEY, "uniqueItems": True}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version-1 manifest."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ldbulk manifest",
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {
            "version": {"const": 1},
            "defaults": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "on": {"type": "boolean"},
                    "tags": _TAGS,
                    "allowEnv": {"type": "array", "items": {"type": "string"}},
                    "ownershipTag": {**_KEY, "default": DEFAULT_OWNERSHIP_TAG},
                },
            },
            "stores": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {**_KEY, "maxLength": 64},
                "additionalProperties": {"oneOf": [_store(key) for key in CONFIG_CLASSES]},
            },
            "targets": {"type": "array", "items": _target()},
        },
    }


def _store(integration: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    required = []
    for field in form_fields(CONFIG_CLASSES[integration]):
        name = api_name(field)
        if is_secret(field):
            value: dict[str, Any] = _REFERENCE
        elif field.type is int:
            value = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, _REFERENCE]}
        elif field.type is bool:
            value = {"type": "boolean"}
        else:
            value = {"type": "string"}
        value = {**value, "description": f"{name}: {value_kind(field)}"}
        config[name] = value
        if is_required(field):
            required.append(name)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["integration", "config"],
        "properties": {
            "integration": {"const": integration},
            "name": {"type": "string"},
            "on": {"type": "boolean"},
            "tags": _TAGS,
            "config": {
                "type": "object",
                "additionalProperties": False,
                "required": required,
                "properties": config,
            },
        },
    }


def _target() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["project", "environments", "store"],
        "properties": {
            "project": _KEY,
            "store": {"type": "string"},
            "environments": {
                "oneOf": [
                    {"const": "*"},
                    {"type": "array", "items": _KEY, "minItems": 1},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["tags"],
                        "properties": {"tags": {**_TAGS, "minItems": 1}},
                    },
                ]
            },
        },
    }


if __name__ == "__main__":  # pragma: no cover - prints the shipped file
    print(json.dumps(manifest_schema(), indent=2))
