"""How an existing integration differs from its target: a pure comparison, no I/O.

LaunchDarkly returns an integration's ``config`` only when it is read by id, and redacts the
formVariables it marks secret (the Redis password). It documents that secrets are redacted on
read, but not which fields count as secret, and servers mask more than the formVariables say
(the DynamoDB external id, typed ``generated``, comes back as ``ext********234``). So a value is
taken as masked from the answer itself (:func:`~ldbulk.api.fields.looks_masked`), whatever its
field, as well as from the field table: a masked value is unknown, not different. Such fields
cannot be compared, and are named as such rather than taken to match; they are written only on
request (``--rotate-secrets``). Every other field is compared as LaunchDarkly stores it (the
port as a string). What is shown never holds a secret or a value that came from a ``${...}``
reference: the wanted side shows the reference, the current side passes through the target's
``redact``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ldbulk.api.models import (
    Integration,
    Target,
    api_name,
    form_fields,
    is_secret,
    looks_masked,
    redacted_on_read,
)

HIDDEN: Final = "(hidden)"


@attrs.frozen(kw_only=True)
class FieldChange:
    """One field that differs: its API name, and both sides as they may be shown."""

    field: str
    current: str
    wanted: str

    def __str__(self) -> str:
        return f"{self.field}: {self.current} → {self.wanted}"


@attrs.frozen(kw_only=True)
class Drift:
    """The fields that differ, those that could not be compared (masked on read: known secret,
    or answered masked), and those whose reference was not set when the manifest was loaded
    (API name, reference)."""

    changes: tuple[FieldChange, ...] = ()
    uncompared: tuple[str, ...] = ()
    unset: tuple[tuple[str, str], ...] = ()


def compare(target: Target, integration: Integration) -> Drift:
    """How ``integration`` (read by id) differs from what ``target`` asks for."""
    config = target.config
    wanted = config.known_values()
    current: Mapping[str, Any] = integration.config or {}
    changes: list[FieldChange] = []
    uncompared: list[str] = []
    unset: list[tuple[str, str]] = []
    for field in form_fields(type(config)):
        name = api_name(field)
        if field.name in config.unset:
            # No value to compare with: say so rather than take it to match (a field redacted
            # on read is never compared anyway, nor written without one).
            if not redacted_on_read(field):
                unset.append((name, config.references[field.name]))
            continue
        have = current.get(name)
        # Unknown, not different: a mask says nothing of the value behind it. A value that is
        # exactly the wanted one matches, stars and all (a password may hold "***"); a field
        # known to be redacted is never compared. Nothing to write without a wanted value.
        if redacted_on_read(field) or (have != wanted[name] and looks_masked(have)):
            if wanted[name]:
                uncompared.append(name)
            continue
        if have == wanted[name]:
            continue
        reference = config.references.get(field.name)
        shown = reference or (HIDDEN if is_secret(field) else _show(wanted[name]))
        was = HIDDEN if is_secret(field) else config.redact(_show(have))
        changes.append(FieldChange(field=f"config.{name}", current=was, wanted=shown))
    # The ownership tag is ldbulk's bookkeeping, not the manifest's: its absence is no drift
    # (an integration made by hand plans unchanged), and every write adds it.
    owner = target.ownership_tag
    for name, have, want in (
        ("on", integration.on, target.on),
        ("tags", sorted(set(integration.tags) - {owner}), sorted(set(target.tags) - {owner})),
    ):
        if have != want:
            changes.append(
                FieldChange(field=name, current=config.redact(_show(have)), wanted=_show(want))
            )
    # No name template in the manifest: the name is not managed, whatever it is.
    if target.name is not None and integration.name != target.name:
        changes.append(
            FieldChange(
                field="name", current=config.redact(_show(integration.name)), wanted=target.name
            )
        )
    return Drift(changes=tuple(changes), uncompared=tuple(uncompared), unset=tuple(unset))


def _show(value: object) -> str:
    # LaunchDarkly keeps a field the manifest leaves out as "": shown as such, never as an
    # empty side that reads like a cut line.
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
