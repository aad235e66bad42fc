"""A store's ``config``, once the schema has checked its keys and types, built into its model:
references resolved in place of values, and each value judged by the model's own check, every
bad field reported, not only the first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ldbulk.api.fields import api_name, check_field, form_fields, is_secret, placeholder, value_kind
from ldbulk.api.models import CONFIG_CLASSES, IntegrationKey, StoreConfig
from ldbulk.errors import ConfigError
from ldbulk.manifest.nodes import NodePath, Tree
from ldbulk.manifest.references import Resolver, UnsetVariable, UnusableReference, is_reference

# The shortest secret (a Redis password, a DynamoDB external id) a manifest may reference.
MIN_SECRET_LENGTH: Final = 8


def read_config(
    tree: Tree,
    resolver: Resolver,
    integration: IntegrationKey,
    config: Mapping[str, object],
    path: NodePath,
) -> StoreConfig | None:
    """The config of a store of ``integration``; None after a problem."""
    cls = CONFIG_CLASSES[integration]
    values: dict[str, Any] = {}
    references: dict[str, str] = {}
    unset: set[str] = set()
    for field in form_fields(cls):
        at = (*path, api_name(field))
        if api_name(field) not in config or at in tree.bad:
            continue  # missing, or the schema said what is wrong
        value = config[api_name(field)]
        reference = value if isinstance(value, str) and is_reference(value) else None
        if reference is not None:
            references[field.name] = reference  # a config with a bad field is never built
            try:
                value = _referenced_value(resolver, field, reference)
            except UnsetVariable:
                values[field.name] = placeholder(field)
                unset.add(field.name)
                continue
            except UnusableReference as exc:
                tree.note(at, str(exc))
                continue
        # Each field on its own, so every bad field of a config is reported, not only the
        # first the constructor trips on.
        values[field.name], reason = check_field(field, value)
        if reason is not None:
            if reference is not None:
                reason = _scrub(reason, (value, values[field.name]), reference)
            tree.note(at, reason)
    if path in tree.bad:
        return None
    try:
        return cls(**values, references=references, unset=unset)
    except ConfigError:
        # Every field passed its own check above; this only guards against a model
        # validator that looks at several fields together.
        tree.note(path, "invalid config")
        return None


def _referenced_value(resolver: Resolver, field: attrs.Attribute[Any], text: str) -> object:
    """The value of a reference, as the field takes it; :class:`UnusableReference` if none."""
    value = resolver.resolve(text)
    if is_secret(field) and 0 < len(value) < MIN_SECRET_LENGTH:  # empty: the field's own check
        # Every message that quotes a secret hides its whole occurrences: a secret of a few
        # characters is too easily a word of its own in a server's error, and too easily guessed.
        raise UnusableReference(
            f"the value of {text} is a secret shorter than {MIN_SECRET_LENGTH} characters: "
            "too short to guess hard or to hide in messages without hiding ordinary words"
        )
    if field.type is bool:
        # A variable or a file holds text: "true" or "false" is the boolean.
        if value.strip().lower() not in ("true", "false"):
            raise UnusableReference(f"the value of {text} must be {value_kind(field)}")
        return value.strip().lower() == "true"
    return value


def _scrub(message: str, values: Iterable[object], reference: str) -> str:
    """A validator's message about a value that came from a reference, with the value replaced
    by the reference: the value may be a secret put in the wrong field."""
    for value in values:
        message = message.replace(repr(value), reference)
    if any(str(value) and str(value) in message for value in values):
        # The value shows in some other form: give up on the validator's wording.
        return f"the value of {reference} is not valid here"
    return message if reference in message else f"{message} (from {reference})"
