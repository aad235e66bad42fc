"""The decisions of the HTTP exchange, without any I/O.

Building URLs and headers, and turning ``(status, headers, body)`` into a value or an exception,
are plain functions here, so they are tested synchronously against recorded responses. Only
:mod:`ldbulk.client` touches the network.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

import attrs

from ldbulk._version import __version__
from ldbulk.converter import structure
from ldbulk.errors import ConfigError, HTTPStatusError, ResponseFormatError, status_error_class
from ldbulk.models import ErrorBody
from ldbulk.ratelimit import parse_rate_limit
from ldbulk.text import printable

T = TypeVar("T")

INSTANCES: Final = {
    "commercial": "https://app.launchdarkly.com",
    "federal": "https://app.launchdarkly.us",
    "eu": "https://app.eu.launchdarkly.com",
}
Instance = Literal["commercial", "federal", "eu"]

BIG_SEGMENT_STORE: Final = "/api/v2/integration-capabilities/big-segment-store"

# Route keys: LaunchDarkly's route-level limits count per verb and URL pattern.
_ONE = "{projectKey}/{environmentKey}/{integrationKey}"
ROUTE_LIST: Final = f"GET {BIG_SEGMENT_STORE}"
ROUTE_CREATE: Final = f"POST {BIG_SEGMENT_STORE}/{_ONE}"
ROUTE_GET: Final = f"GET {BIG_SEGMENT_STORE}/{_ONE}/{{id}}"
ROUTE_PATCH: Final = f"PATCH {BIG_SEGMENT_STORE}/{_ONE}/{{id}}"
ROUTE_DELETE: Final = f"DELETE {BIG_SEGMENT_STORE}/{_ONE}/{{id}}"
ROUTE_PROJECTS: Final = "GET /api/v2/projects"
ROUTE_ENVIRONMENTS: Final = "GET /api/v2/projects/{projectKey}/environments"


def resolve_base_url(base_url: str | None, instance: Instance = "commercial") -> str:
    """The API origin to talk to: an explicit URL wins over the instance shortcut.

    Plain http is refused unless the host is loopback: the access token travels in a header,
    and must not cross a network in clear.
    """
    if base_url is None:
        if instance not in INSTANCES:
            raise ConfigError(
                f"instance: {instance!r} is not one of {', '.join(sorted(INSTANCES))}"
            )
        return INSTANCES[instance]
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL: {base_url!r} is not an http(s) URL with a host")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL: plain http is only allowed for loopback hosts, not {parts.hostname!r}; "
            "use https"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def segment(value: str) -> str:
    """One URL path segment, escaped (keys are user input from manifests).

    Cached: a run escapes the same project keys over and over.
    """
    # Escaping cannot protect these: URL normalisation removes "." and ".." segments even when
    # percent-encoded, and an empty one collapses, so the request would reach another route.
    if value in ("", ".", ".."):
        raise ConfigError(f"{value!r} cannot be a project, environment or integration key")
    return quote(value, safe="")


def integration_path(
    project: str, environment: str, integration_key: str, integration_id: str | None = None
) -> str:
    """Path of a create (no id) or of one integration (with id)."""
    parts = [project, environment, integration_key]
    if integration_id is not None:
        parts.append(integration_id)
    return "/".join([BIG_SEGMENT_STORE, *map(segment, parts)])


def request_headers(token: str, *, beta: bool, has_body: bool) -> dict[str, str]:
    """The headers of every request: raw token (no "Bearer"), beta opt-in, agent."""
    headers = {
        "Authorization": token,
        "User-Agent": f"ldbulk/{__version__}",
        "Accept": "application/json",
    }
    if beta:
        headers["LD-API-Version"] = "beta"
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


# What json.loads raises for a body that is not JSON. RecursionError: nesting deeper than the
# decoder's recursion limit ("[[[[..."), which a broken proxy or a hostile server can send.
_NOT_JSON: Final = (ValueError, UnicodeDecodeError, RecursionError)


@attrs.frozen(kw_only=True)
class RawResponse:
    """What came back: status, headers (case-insensitive mapping) and the body bytes."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)


def _summarise(body: bytes, content_type: str) -> str:
    """A short, printable description of a body that is not LaunchDarkly JSON."""
    if not body:
        return "empty body"
    kind = content_type.split(";")[0].strip() or "unknown content type"
    return f"non-JSON body ({kind}, {len(body)} bytes)"


def error_from_response(method: str, path: str, response: RawResponse) -> HTTPStatusError:
    """The exception for an error response, with LaunchDarkly's code/message/id when present."""
    content_type = response.headers.get("Content-Type", "")
    error = ErrorBody(message=_summarise(response.body, content_type))
    try:
        data = json.loads(response.body)
    except _NOT_JSON:
        data = None
    if isinstance(data, dict):
        try:
            error = structure(data, ErrorBody, what="error body")
        except ResponseFormatError:
            error = ErrorBody(message="error body in an unexpected shape")
    cls = status_error_class(response.status)
    rate_limit = parse_rate_limit(response.headers) if response.status == 429 else None
    # Escaped here, at the source: the exception's text goes on to terminals, logs and reports.
    return cls(
        status=response.status,
        method=method,
        path=path,
        code=printable(error.code),
        message=printable(error.message[:500]),
        request_id=None if error.id is None else printable(error.id),
        rate_limit=rate_limit,
    )


def decode_json(method: str, path: str, response: RawResponse) -> Any:
    """The JSON of a success response; raises for an error status or a body that is not JSON."""
    if response.status >= 400:
        raise error_from_response(method, path, response)
    try:
        return json.loads(response.body)
    except _NOT_JSON:
        raise ResponseFormatError(
            f"{method} {path} -> {response.status}: "
            f"{_summarise(response.body, response.headers.get('Content-Type', ''))}"
        ) from None


def decode(method: str, path: str, response: RawResponse, cls: type[T]) -> T:
    """A success response structured into ``cls``, or the exception its status calls for."""
    return structure(decode_json(method, path, response), cls, what=f"{method} {path}")


def expect_no_content(method: str, path: str, response: RawResponse) -> None:
    """Accept a 2xx without a body (a delete's 204); raise for an error status."""
    if response.status >= 400:
        raise error_from_response(method, path, response)
