"""The JSON Schema of the manifest format, the one description of its shape: editors use it
(``manifest.schema.json``, this module's output) and the loader validates every file with it.
Built from the facts the models hold (key pattern, port range, field table), none written twice.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ldbulk.api.fields import api_name, form_fields, is_required, is_secret, value_kind
from ldbulk.api.models import CONFIG_CLASSES, DEFAULT_OWNERSHIP_TAG, KEY_PATTERN, PORT_RANGE

SCHEMA_FILE: Final = "manifest.schema.json"
FORMAT_VERSION: Final = 1
MAX_STORE_NAME_LENGTH: Final = 64

# A key's pattern bounds its length too (a maxLength beside it would cost the loader a check
# per environment key); a title names what a key is, in editors' hovers and in messages.
_KEY: Final = {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"}
REFERENCE: Final = {"type": "string", "pattern": r"^\$\{(file:)?[^}]+\}$"}
_TAGS: Final = {"type": "array", "items": {**_KEY, "title": "tag"}}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version-1 manifest. Keywords and properties are in
    the order the loader reports problems: unknown keys, missing ones, then each value."""
    store_name = {**_KEY, "maxLength": MAX_STORE_NAME_LENGTH, "title": "store name"}
    defaults = {
        "on": {"type": "boolean"},
        "tags": _TAGS,
        "allowEnv": {"type": "array", "items": {"type": "string"}},
        "ownershipTag": {**_KEY, "title": "tag", "default": DEFAULT_OWNERSHIP_TAG},
    }
    stores = {
        "type": "object",
        "minProperties": 1,
        # patternProperties, not additionalProperties: checked in the file's order.
        "patternProperties": {store_name["pattern"]: {"anyOf": list(map(_store, CONFIG_CLASSES))}},
        "propertyNames": store_name,
    }
    top = {
        "version": {"const": FORMAT_VERSION},
        "defaults": _object(defaults),
        "stores": stores,
        "targets": {"type": "array", "minItems": 1, "items": _target()},
    }
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "ldbulk manifest"}
    return {**schema, **_object(top, ["version"])}


def _object(
    properties: dict[str, Any], required: list[str] | None = None, **before: Any
) -> dict[str, Any]:
    """A mapping of these keys only; ``before`` is checked before ``required``."""
    keys = {**before, "required": required} if required else before
    return {"type": "object", "additionalProperties": False, **keys, "properties": properties}


def _value(field: Any) -> dict[str, Any]:
    """A config field's values: a secret only by reference (an optional one may be empty); a
    port a number or digits, a flag a boolean, each or a reference; else a string."""
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
    properties = {
        "integration": {"type": "string", "const": integration},
        "name": {"type": "string"},
        "config": _object(config, [api_name(field) for field in fields if is_required(field)]),
        "on": {"type": "boolean"},
        "tags": _TAGS,
    }
    return _object(properties, ["integration", "config"])


def _target() -> dict[str, Any]:
    project_key = {**_KEY, "title": "project key"}
    tagged = _object({"tags": {**_TAGS, "minItems": 1}}, ["tags"])
    properties = {
        # No description: a number where a key is meant is told to be quoted, as a string.
        "project": {"anyOf": [project_key, {"const": "*"}]},
        "projects": {
            "description": 'a list of project keys or {tags: [...]} (every project: project: "*")',
            "anyOf": [{"type": "array", "minItems": 1, "items": project_key}, tagged],
        },
        "environments": {
            "description": 'a list of environment keys, "*" or {tags: [...]}',
            # anyOf, as the alternatives exclude each other: the first that fits ends the
            # check (oneOf would try the others too), the commonest first.
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {**_KEY, "title": "environment key"}},
                {"const": "*"},
                tagged,
            ],
        },
        "store": {"type": "string"},
    }
    # oneOf before "required": a missing project is reported before a missing store.
    one_of = [{"required": ["project"]}, {"required": ["projects"]}]
    return _object(properties, ["environments", "store"], oneOf=one_of)


if __name__ == "__main__":  # pragma: no cover - prints the shipped file
    print(json.dumps(manifest_schema(), indent=2))
