"""The field table: the facts about each store config field, kept in its attrs metadata.

Each field's row (:func:`form`) says which formVariable it is, how a message names its type,
whether ldbulk keeps it secret, whether LaunchDarkly redacts it on read, and what a field holds
while its reference's variable is not set; a field without a default is required. The
converter, the manifest loader, drift, export and the sandbox read those facts through the
functions here, never the metadata itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, cast

import attrs

from ldbulk.errors import ConfigError


def form(
    api: str,
    kind: str = "a string",
    *,
    secret: bool = False,
    redacted: bool = False,
    placeholder: object = "unset",
) -> dict[str, object]:
    """One store config field's row of the field table, kept in its attrs metadata.

    ``api``: the formVariable's key in a ``config`` object (the converter's ``api`` key).
    ``kind``: the value's type as a message names it ("must be a port number"). ``secret``:
    ldbulk never shows the value, and a manifest must give it by reference. ``redacted``: the
    formVariable is ``isSecret``, so LaunchDarkly reads it back masked, and it is never
    compared (any other field is compared unless its answer is a mask: :func:`looks_masked`).
    A field is required when it has no default. ``placeholder``: a value a required field
    accepts, held while the variable of its reference is not set (see :func:`placeholder`).
    """
    return {
        "api": api,
        "kind": kind,
        "secret": secret,
        "redacted": redacted,
        "placeholder": placeholder,
    }


def api_name(field: attrs.Attribute[Any]) -> str:
    """The JSON key of an attrs field in LaunchDarkly's API: its ``api`` metadata, or the
    field's name in camelCase."""
    explicit = field.metadata.get("api")
    if explicit:
        return str(explicit)
    head, *rest = field.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def value_kind(field: attrs.Attribute[Any]) -> str:
    """How a message names the type of a store config field's value ("a port number")."""
    return str(field.metadata.get("kind", "a string"))


def is_secret(field: attrs.Attribute[Any]) -> bool:
    """Whether ldbulk keeps the field's value out of every repr, log and message (and a
    manifest may give it only by reference)."""
    return bool(field.metadata.get("secret"))


def redacted_on_read(field: attrs.Attribute[Any]) -> bool:
    """Whether LaunchDarkly masks the field when an integration is read back (``isSecret``)."""
    return bool(field.metadata.get("redacted"))


# How a masked value is told from a real one: three asterisks in a row. LaunchDarkly documents
# that it redacts secrets on read but neither which fields nor how; its answers show masks as a
# run of stars, alone (``********``) or between a few of the value's own characters
# (``ext********234``). No value ldbulk writes holds three stars in a row in a field it compares
# (host names, ports, table names, regions, role ARNs and external ids cannot hold a ``*``; a
# username or password that does is met by the equality check first). Two stars are left
# alone: they are too common a glob to read as a mask.
_MASK: Final = re.compile(r"\*{3,}")


def looks_masked(value: object) -> bool:
    """Whether a config value read back from LaunchDarkly is a mask, not a value: a string
    holding a run of three or more ``*``. What it stands for is unknown, not different."""
    return isinstance(value, str) and _MASK.search(value) is not None


def is_required(field: attrs.Attribute[Any]) -> bool:
    """Whether a config must give the field (it has no default)."""
    return field.default is attrs.NOTHING


def placeholder(field: attrs.Attribute[Any]) -> object:
    """What a config holds in a field whose reference's variable is not set (a read-only
    command needs no secret): a value the field accepts, its default when it has one. Such a
    field is in the config's ``unset``: never sent, compared or shown."""
    if field.default is not attrs.NOTHING:
        return field.default
    return field.metadata["placeholder"]


def form_fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    """The fields of a store config class that are the integration's formVariables (all but
    ``references``, which is ldbulk's own bookkeeping)."""
    return tuple(
        field for field in attrs.fields(cls) if field.name not in ("references", "unset")
    )


def check_field(field: attrs.Attribute[Any], value: object) -> tuple[object, str | None]:
    """``value`` converted as the config converts it, and what is wrong with it (None when
    nothing), worded to follow the field's name: for a loader that reports every bad field of
    a config, where the constructor stops at the first."""
    if field.converter is not None:
        value = cast(Callable[[object], object], field.converter)(value)
    rule = field.validator
    return value, rule.check(value) if isinstance(rule, Rule) else None


@attrs.frozen
class Rule:
    """A field validator made of a check that says what is wrong with a value (None when
    nothing). The constructor's error names the field first; :func:`check_field` gives the
    reason alone."""

    check: Callable[[Any], str | None]

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        reason = self.check(value)
        if reason is not None:
            raise ConfigError(f"{attribute.name}: {reason}")
