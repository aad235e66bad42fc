"""What LaunchDarkly answers: integrations with their status and access, projects,
environments, pages of them, and error bodies.

Read-only value classes, structured by :mod:`ldbulk.api.converter`; field names are Python style
unless ``metadata={"api": ...}`` names the API's key (``_id``, ``_links`` ...). What ldbulk sends
(store configs, the create request, targets) is in :mod:`ldbulk.api.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Generic, TypeVar

import attrs


def _redact_mapping(value: Mapping[str, Any] | None) -> str:
    """Repr of a config read back from the API: its keys only, values may be secrets."""
    if value is None:
        return "None"
    return "{" + ", ".join(f"{key!r}: ..." for key in value) + "}"


@attrs.frozen(kw_only=True)
class Link:
    """A link to a related resource."""

    href: str | None = None
    type: str | None = None


@attrs.frozen(kw_only=True)
class StoreIntegrationError:
    """One synchronisation error LaunchDarkly saw while writing to the store."""

    status_code: int | None = None
    message: str | None = None
    timestamp: int | None = None


@attrs.frozen(kw_only=True)
class StoreStatus:
    """Connection status of a persistent store (the spec's ``BigSegmentStoreStatus``)."""

    available: bool | None = None
    potentially_stale: bool | None = None
    last_sync: int | None = None
    last_error: int | None = None
    errors: tuple[StoreIntegrationError, ...] = ()


@attrs.frozen(kw_only=True)
class AccessReason:
    """The policy statement that allowed or denied an action."""

    effect: str
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    # The spec spells this one key in snake case, unlike every other field.
    role_name: str | None = attrs.field(default=None, metadata={"api": "role_name"})


@attrs.frozen(kw_only=True)
class AccessDecision:
    """One action the caller may (or may not) take on the resource, and why."""

    action: str
    reason: AccessReason


@attrs.frozen(kw_only=True)
class Access:
    """Which actions the caller's token is allowed and denied on the resource."""

    denied: tuple[AccessDecision, ...] = ()
    allowed: tuple[AccessDecision, ...] = ()


@attrs.frozen(kw_only=True)
class Integration:
    """A persistent store integration (the spec's ``BigSegmentStoreIntegration``).

    ``config`` is present only when the integration was read by id; LaunchDarkly redacts its
    secrets, and ``repr`` shows only its keys.
    """

    id: str = attrs.field(metadata={"api": "_id"})
    integration_key: str
    project_key: str
    environment_key: str
    on: bool = False
    tags: tuple[str, ...] = ()
    name: str = ""
    version: int = 0
    config: Mapping[str, Any] | None = attrs.field(default=None, repr=_redact_mapping)
    status: StoreStatus | None = attrs.field(default=None, metadata={"api": "_status"})
    access: Access | None = attrs.field(default=None, metadata={"api": "_access"})
    links: Mapping[str, Link] = attrs.field(factory=dict, repr=False, metadata={"api": "_links"})


@attrs.frozen(kw_only=True)
class IntegrationCollection:
    """The list-all answer (the spec's ``BigSegmentStoreIntegrationCollection``)."""

    items: tuple[Integration, ...] = ()
    links: Mapping[str, Link] = attrs.field(factory=dict, repr=False, metadata={"api": "_links"})


@attrs.frozen(kw_only=True)
class ErrorBody:
    """LaunchDarkly's error body ``{"code", "message", "id"}``."""

    code: str = ""
    message: str = ""
    id: str | None = None


@attrs.frozen(kw_only=True)
class Project:
    """A LaunchDarkly project, with only the fields ldbulk uses."""

    id: str = attrs.field(metadata={"api": "_id"})
    key: str
    name: str = ""
    tags: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Environment:
    """A LaunchDarkly environment, with only the fields ldbulk uses.

    The API's item also carries the environment's SDK and mobile keys; they are deliberately not
    modelled, so they cannot end up in a log or a report.
    """

    id: str = attrs.field(metadata={"api": "_id"})
    key: str
    name: str = ""
    tags: tuple[str, ...] = ()


T = TypeVar("T")

# A page's `_links`: pagination follows its `next`, so the converter keeps a malformed `next` an
# error, where it drops any other member of `_links` that is not a link.
PageLinks = Annotated[Mapping[str, Link], "followed by pagination"]


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a paginated collection (projects, environments)."""

    items: tuple[T, ...] = ()
    total_count: int | None = None
    links: PageLinks = attrs.field(factory=dict, repr=False, metadata={"api": "_links"})

    @property
    def next_href(self) -> str | None:
        """Where the next page is, or None on the last page."""
        link = self.links.get("next")
        return link.href if link else None
