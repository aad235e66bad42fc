"""The JSON Patch that brings an existing integration to what its target asks for: a pure
decision, no I/O.

The patch writes only the fields that differ (:func:`~ldbulk.engine.drift.compare`), and starts
with a ``test`` of the version it was computed from: if anyone changed the integration since it
was read, LaunchDarkly refuses the whole patch (409) instead of applying it over their change,
and the engine reads it again. Fields LaunchDarkly masks on read (the Redis password, and any
value it answered masked: see :mod:`ldbulk.engine.drift`) cannot be compared, so they are
written only when asked to (``rotate_secrets``). An update also writes the ownership tag, so
what ldbulk has written is what a later prune may delete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ldbulk.api.models import CONFIG_CLASSES, Integration, Target, api_name, form_fields
from ldbulk.engine.drift import Drift, compare


@attrs.frozen(kw_only=True)
class Update:
    """One integration's patch, and the fields it writes (names only: never values)."""

    # The operations carry the values written, secrets included when rotating: never shown.
    operations: tuple[dict[str, Any], ...] = attrs.field(repr=False)
    fields: tuple[str, ...]


def update_for(
    target: Target,
    integration: Integration,
    *,
    rotate_secrets: bool = False,
    drift: Drift | None = None,
) -> Update | None:
    """The patch ``integration`` (read by id) needs to match ``target``; None when it matches.

    A difference in the ownership tag alone is no reason to write (an integration made by hand
    and named by a manifest stays as it is until something else changes), but every write adds
    the tag.
    """
    if drift is None:  # a caller that shows the drift too has compared already
        drift = compare(target, integration)
    fields = [change.field for change in drift.changes]
    if rotate_secrets:
        fields += [f"config.{name}" for name in drift.uncompared]
    if not fields:
        return None
    if "tags" not in fields and target.ownership_tag not in integration.tags:
        fields.append("tags")
    # Only known values: a field whose reference was not set is never compared, so never
    # written (its placeholder is no value).
    current_config = integration.config or {}
    patch = tuple(_operation(field, current_config) for field in fields)
    return Update(operations=operations(target, patch, integration.version), fields=tuple(fields))


def _operation(field: str, current_config: Mapping[str, Any]) -> tuple[str, str]:
    """The (op, path) that writes ``field`` ("config.host", "on", "tags", "name")."""
    if field.startswith("config."):
        name = field.removeprefix("config.")
        # "replace" needs the member to exist; "add" sets one that does not.
        return ("replace" if name in current_config else "add", f"/config/{name}")
    if field in ("on", "tags", "name"):
        return ("replace", f"/{field}")
    raise AssertionError(f"no patch for {field}")  # pragma: no cover - compare names no other


def operations(
    target: Target, patch: Iterable[tuple[str, str]], version: int
) -> tuple[dict[str, Any], ...]:
    """The JSON Patch that writes ``target``'s values at each (op, path) of ``patch``, after a
    ``test`` that the integration is still at ``version``. :class:`ValueError` for a path that
    names no value ldbulk writes."""
    written: list[dict[str, Any]] = [{"op": "test", "path": "/version", "value": version}]
    for op, path in patch:
        written.append({"op": op, "path": path, "value": _value(target, path)})
    return tuple(written)


def check_patch(patch: Iterable[tuple[str, str]], integration_key: str) -> None:
    """Raise :class:`ValueError` unless each (op, path) is one ldbulk would send for an
    integration of ``integration_key``."""
    config = CONFIG_CLASSES.get(integration_key)
    names = {api_name(field) for field in form_fields(config)} if config else set()
    for op, path in patch:
        name = path.removeprefix("/config/")
        if op not in ("add", "replace") or not (
            path in ("/on", "/tags", "/name") or (path.startswith("/config/") and name in names)
        ):
            raise ValueError(f"{op} {path} is not an operation ldbulk sends")


def _value(target: Target, path: str) -> Any:
    if path.startswith("/config/"):
        return target.config.known_values()[path.removeprefix("/config/")]
    if path == "/on":
        return target.on
    if path == "/tags":
        return list(target.written_tags)
    if path == "/name":
        return target.name
    raise ValueError(f"no value of a target is at {path}")
