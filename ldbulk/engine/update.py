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

from typing import Any

import attrs

from ldbulk.api.models import Integration, Target
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
    wanted = target.config.known_values()
    current_config = integration.config or {}
    operations: list[dict[str, Any]] = [
        {"op": "test", "path": "/version", "value": integration.version}
    ]
    for field in fields:
        if field.startswith("config."):
            name = field.removeprefix("config.")
            # "replace" needs the member to exist; "add" sets one that does not.
            op = "replace" if name in current_config else "add"
            operations.append({"op": op, "path": f"/config/{name}", "value": wanted[name]})
        elif field == "on":
            operations.append({"op": "replace", "path": "/on", "value": target.on})
        elif field == "tags":
            operations.append(
                {"op": "replace", "path": "/tags", "value": list(target.written_tags)}
            )
        elif field == "name":
            operations.append({"op": "replace", "path": "/name", "value": target.name})
        else:  # pragma: no cover - compare names only the fields above
            raise AssertionError(f"no patch for {field}")
    return Update(operations=tuple(operations), fields=tuple(fields))
