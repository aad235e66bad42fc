"""A store's ``config`` mapping, read into a :class:`~ldbulk.api.models.RedisConfig` or
:class:`~ldbulk.api.models.DynamoDBConfig`.

What each field is (its formVariable name, its type as a message names it, whether it is
secret, whether it is required) comes from the models' field table; the models' own checks
judge each value. Here: which YAML values a field takes, references resolved in place of
values, and every bad field reported, not only the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from yaml.nodes import Node, ScalarNode

from ldbulk.api.models import (
    CONFIG_CLASSES,
    IntegrationKey,
    StoreConfig,
    api_name,
    check_field,
    form_fields,
    is_required,
    is_secret,
    placeholder,
    value_kind,
)
from ldbulk.errors import ConfigError
from ldbulk.manifest.nodes import INT, STR, NodeReader, child_path
from ldbulk.manifest.references import Resolver, UnsetVariable, UnusableReference, is_reference

# What a field read from a reference whose variable is not set holds until the config is built.
_UNSET = object()


def read_config(
    reader: NodeReader, resolver: Resolver, integration: IntegrationKey, node: Node, path: str
) -> StoreConfig | None:
    """The config of a store of ``integration``; None after a problem."""
    entries = reader.mapping(node, path)
    if entries is None:
        return None
    cls = CONFIG_CLASSES[integration]
    fields = {api_name(field): field for field in form_fields(cls)}
    required = [key for key, field in fields.items() if is_required(field)]
    reader.keys(node, entries, path, tuple(fields), required=required)
    values: dict[str, Any] = {}
    references: dict[str, str] = {}
    unset: set[str] = set()
    ok = not any(key not in entries for key in required)
    for key, field in fields.items():
        if key not in entries:
            continue
        value_node, key_path = entries[key][1], child_path(path, key)
        read = _read_value(reader, resolver, field, value_node, key_path)
        if read is None:
            ok = False
            continue
        value, reference = read
        if value is _UNSET and reference is not None:
            values[field.name] = placeholder(field)
            references[field.name] = reference
            unset.add(field.name)
            continue
        # Each field on its own, so every bad field of a config is reported, not only the
        # first the constructor trips on.
        values[field.name], reason = check_field(field, value)
        if reason is not None:
            if reference is not None:
                reason = _scrub(reason, (value, values[field.name]), reference)
            reader.add(value_node, key_path, reason)
            ok = False
        elif reference is not None:
            references[field.name] = reference
    if not ok:
        return None
    try:
        return cls(**values, references=references, unset=unset)
    except ConfigError:
        # Every field passed its own check above; this only guards against a model
        # validator that looks at several fields together.
        reader.add(node, path, "invalid config")
        return None


def _read_value(
    reader: NodeReader, resolver: Resolver, field: attrs.Attribute[Any], node: Node, path: str
) -> tuple[object, str | None] | None:
    """A config value and the reference it came from; None after a problem."""
    expected = value_kind(field)
    if not isinstance(node, ScalarNode):
        reader.add(node, path, f"must be {expected}, got {reader.kind(node)}")
        return None
    if node.tag == STR and is_reference(str(node.value)):
        return _referenced_value(reader, resolver, field, node, path)
    if is_secret(field):
        # An optional secret may be left empty (a Redis without a password).
        if not is_required(field) and node.tag == STR and node.value == "":
            return "", None
        reader.add(
            node,
            path,
            f"{api_name(field)} must be a ${{VAR}} or ${{file:PATH}} reference: "
            "secrets do not belong in a manifest",
        )
        return None
    if field.type is int and node.tag == INT:
        ok, number = reader.scalar(node, path)
        return (number, None) if ok else None
    if field.type is bool:
        flag = reader.boolean(node, path)
        return None if flag is None else (flag, None)
    if node.tag != STR:
        reader.add(node, path, f"must be {expected}, got {reader.kind(node)}")
        return None
    return str(node.value), None


def _referenced_value(
    reader: NodeReader, resolver: Resolver, field: attrs.Attribute[Any], node: Node, path: str
) -> tuple[object, str] | None:
    """The value of a reference, as the field takes it, and the reference; None after a
    problem."""
    text = str(node.value)
    try:
        value = resolver.resolve(text)
    except UnsetVariable:
        return _UNSET, text
    except UnusableReference as exc:
        reader.add(node, path, str(exc))
        return None
    if field.type is bool:
        # A variable or a file holds text: "true" or "false" is the boolean.
        if value.strip().lower() not in ("true", "false"):
            reader.add(node, path, f"the value of {text} must be {value_kind(field)}")
            return None
        return value.strip().lower() == "true", text
    return value, text


def _scrub(message: str, values: Iterable[object], reference: str) -> str:
    """A validator's message about a value that came from a reference, with the value replaced
    by the reference: the value may be a secret put in the wrong field."""
    for value in values:
        message = message.replace(repr(value), reference)
    if any(str(value) and str(value) in message for value in values):
        # The value shows in some other form: give up on the validator's wording.
        return f"the value of {reference} is not valid here"
    return message if reference in message else f"{message} (from {reference})"
