"""What store an integration read by id belongs to: its shape, everything but where it is.

Decisions only, no I/O: :func:`shape_of` turns one integration into a :class:`Shape` (or the
reason a manifest cannot describe it), and a shape goes to and from the plain data the export's
partial file keeps of it (:meth:`Shape.to_data`, :meth:`Shape.from_data`), so an interrupted
export resumes without reading an integration again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ldbulk.api.models import (
    CONFIG_CLASSES,
    DEFAULT_OWNERSHIP_TAG,
    KEY_PATTERN,
    Integration,
    api_name,
    check_field,
    form_fields,
    is_required,
    is_secret,
    looks_masked,
)


@attrs.frozen(kw_only=True)
class SkippedIntegration:
    """An integration the manifest cannot describe, and why (the reason holds no secret)."""

    project: str
    environment: str
    integration: str
    reason: str


@attrs.frozen(kw_only=True)
class Shape:
    """What makes an integration's store: everything but its project and environment."""

    integration: str
    # The non-secret formVariables present, (API name, value as a manifest writes it), in the
    # field table's order.
    config: tuple[tuple[str, object], ...]
    # Each secret formVariable (API name) and whether the integration has it set; and each
    # other one read back masked, by reference too, with a digest of its mask: masks tell
    # stores apart, and a digest does so without keeping the mask anywhere, the partial file
    # included.
    secrets: tuple[tuple[str, bool], ...]
    masked: tuple[tuple[str, str], ...] = ()
    on: bool
    tags: tuple[str, ...]
    name: str | None  # a name template

    @property
    def connection(self) -> tuple[object, ...]:
        """What one credential goes with: the integration key and the non-secret config."""
        return (self.integration, self.config, self.masked)

    def order(self) -> str:
        """A total order that does not depend on the listing's."""
        return json.dumps(attrs.astuple(self))

    def to_data(self) -> dict[str, Any]:
        """The shape as JSON data (no secret in it: secrets are only ever "set" or not)."""
        return attrs.asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Shape:
        """The shape :meth:`to_data` wrote (JSON lists back to the tuples it compares by)."""
        return cls(
            integration=str(data["integration"]),
            config=tuple((str(key), value) for key, value in data["config"]),
            secrets=tuple((str(key), bool(is_set)) for key, is_set in data["secrets"]),
            masked=tuple((str(key), str(digest)) for key, digest in data["masked"]),
            on=bool(data["on"]),
            tags=tuple(str(tag) for tag in data["tags"]),
            name=None if data["name"] is None else str(data["name"]),
        )


def shape_of(integration: Integration) -> Shape | str:
    """The store an integration read by id belongs to, or why a manifest cannot describe it."""
    if integration.config is None:
        return "LaunchDarkly's answer carried no config"
    config: list[tuple[str, object]] = []
    secrets: list[tuple[str, bool]] = []
    masked: list[tuple[str, str]] = []
    # Keys outside the field table are left out: a manifest has no way to write them.
    for field in form_fields(CONFIG_CLASSES[integration.integration_key]):
        key = api_name(field)
        value = integration.config.get(key)
        if is_secret(field):
            # Whether it is set is all that is kept, never the value (masked on read anyway
            # for the password). A required secret is always a reference.
            secrets.append((key, bool(value) or is_required(field)))
            continue
        if looks_masked(value):  # unknown: the user sets it, as a secret
            secrets.append((key, True))
            masked.append((key, hashlib.sha256(str(value).encode()).hexdigest()[:16]))
            continue
        if value is None:
            if is_required(field):
                return f"config has no {key}"
            continue
        converted, reason = check_field(field, value)
        if reason is not None:
            return f"config {key}: {reason}"
        if isinstance(converted, str) and "${" in converted:
            return f'config {key} holds "${{", which a manifest reads as a reference'
        config.append((key, converted))
    # The ownership tag is not the manifest's to write: apply adds it to everything it writes.
    tags = tuple(sorted(set(integration.tags) - {DEFAULT_OWNERSHIP_TAG}))
    bad_tags = [tag for tag in tags if not KEY_PATTERN.fullmatch(tag)]
    if bad_tags:
        return f"tag {bad_tags[0]!r} is not one a manifest can write"
    return Shape(
        integration=integration.integration_key,
        config=tuple(config),
        secrets=tuple(secrets),
        masked=tuple(masked),
        on=integration.on,
        tags=tags,
        name=_template(integration.name, integration.project_key, integration.environment_key),
    )


def _template(name: str, project: str, environment: str) -> str | None:
    """A name template that renders ``name`` back for this project and environment: each key
    standing alone (not inside a longer word) becomes its placeholder, braces are doubled."""
    if not name:
        return None
    keys = sorted({project, environment}, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, keys)) + r")(?![A-Za-z0-9])"
    )
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(name):
        parts.append(_escape_braces(name[last : match.start()]))
        parts.append("{project}" if match.group() == project else "{environment}")
        last = match.end()
    parts.append(_escape_braces(name[last:]))
    return "".join(parts)


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")
