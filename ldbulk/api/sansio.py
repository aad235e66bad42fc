"""The decisions of the HTTP exchange, without any I/O.

Building URLs and headers, and turning ``(status, headers, body)`` into a value or an exception,
are plain functions here, so they are tested synchronously against recorded responses. Only
:mod:`ldbulk.http.client` touches the network.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import json
import socket
import ssl
from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import attrs

from ldbulk._version import __version__
from ldbulk.api.converter import structure
from ldbulk.api.limits import parse_rate_limit
from ldbulk.api.listing import lean_integration
from ldbulk.api.models import ErrorBody, Integration
from ldbulk.errors import ConfigError, HTTPStatusError, ResponseFormatError, status_error_class
from ldbulk.text import REDACTED, printable, redact

T = TypeVar("T")

INSTANCES: Final = {
    "commercial": "https://app.launchdarkly.com",
    "federal": "https://app.launchdarkly.us",
    "eu": "https://app.eu.launchdarkly.com",
}
Instance = Literal["commercial", "federal", "eu"]

# The most of a server's error message kept in memory; reports show far less.
MAX_MESSAGE_CHARS: Final = 64 * 1024

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
    # Checked first, and the URL not quoted: it would land in messages, reprs and reports.
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "base URL: credentials in the URL are refused (they would be shown wherever the "
            "URL is); the access token goes in LD_ACCESS_TOKEN or --token-file"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL: {base_url!r} is not an http(s) URL with a host")
    # Every route starts with /api/v2, so a base URL ending in it asks for /api/v2/api/v2/...
    # and every request answers 404. A path prefix (a proxy's) is fine, that suffix is not.
    if parts.path.rstrip("/").lower().endswith(("/api/v2", "/api")):
        origin = f"{parts.scheme}://{parts.netloc}"
        raise ConfigError(
            f"base URL: {base_url!r} ends in the API path, so every request would answer 404; "
            f"give the origin only, e.g. {origin} (ldbulk adds /api/v2/... itself)"
        )
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


class BodySink(Protocol):
    """Reads a success body as it arrives, instead of the transport holding it whole.

    A transport given one feeds it every chunk of a body whose status is 2xx, then
    closes it; what :meth:`close` returns (or the :class:`~ldbulk.errors.ResponseFormatError`
    either raised) becomes the response's ``streamed``, and ``body`` stays empty.
    """

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the body."""
        ...

    def close(self) -> Any:
        """The body has ended: what was read from it."""
        ...


@attrs.frozen(kw_only=True)
class RawResponse:
    """What came back: status, headers (case-insensitive mapping) and the body bytes.

    ``streamed``: when a :class:`BodySink` read the body, what it made of it, or the
    :class:`~ldbulk.errors.ResponseFormatError` it raised (kept, so the exchange still sees
    the headers and counts the answer; :func:`decode_streamed` raises it).
    """

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    streamed: Any = attrs.field(default=None, repr=False)


# The fields of an error body that error_from_response reads, and so may show.
_ERROR_FIELDS: Final = ("code", "message", "id")


def without_secret(response: RawResponse, secret: str) -> RawResponse:
    """``response`` with ``secret`` (the access token) in its body replaced by ``***``, for
    every reader after it: in the bytes wherever it stands, even inside a longer word (a
    token is long and random: found there, it is still the token); in an error body's fields
    as whole occurrences first (:func:`ldbulk.text.redact`).

    A server, or a proxy on the way, may quote what it was sent, the Authorization header
    included (a 401 saying which token it refused); the error's message then reaches the
    report, the journal, JUnit, Markdown and the logs. The bytes are searched, and an error
    body's ``code``, ``message`` and ``id`` also as decoded JSON, where ``\\u0061pi-...`` is
    the token again. A streamed body is not here: a listing's reader never quotes a value.
    """
    if not secret:
        return response
    body = response.body
    if response.status >= 400:
        body = _error_body_without(body, secret)
    raw = secret.encode()
    if raw in body:
        body = body.replace(raw, REDACTED.encode())
    return response if body is response.body else attrs.evolve(response, body=body)


def _error_body_without(body: bytes, secret: str) -> bytes:
    """An error body whose fields :func:`error_from_response` reads hold ``secret`` nowhere,
    re-encoded only when one did."""
    try:
        data = json.loads(body)
    except _NOT_JSON:
        return body
    if not isinstance(data, dict):
        return body
    read = {key: value for key in _ERROR_FIELDS if isinstance(value := data.get(key), str)}
    if not any(secret in value for value in read.values()):
        return body
    redacted = {key: redact(value, (secret,)) for key, value in read.items()}
    try:
        return json.dumps({**data, **redacted}).encode()
    except (ValueError, RecursionError):
        # Nested past what the encoder takes: the fields read are all that must survive.
        return json.dumps(redacted).encode()


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
        # The spec defines `code` and `message`; `id` is LaunchDarkly's own addition, which the
        # spec leaves open (any type). A field of another type is left out, rather than cost
        # the others: the code and message are what a reader of the report needs.
        fields = {k: v for k in _ERROR_FIELDS if isinstance(v := data.get(k), str)}
        if fields:
            error = structure(fields, ErrorBody, what="error body")
        else:
            error = ErrorBody(message="error body in an unexpected shape")
    cls = status_error_class(response.status)
    rate_limit = parse_rate_limit(response.headers) if response.status == 429 else None
    # Code and id are escaped here, at the source. The message is kept whole and raw: it may
    # quote a secret the caller sent, which the engine redacts before it escapes and shortens
    # it (escaped or cut first, a secret would no longer match, and part of it would show).
    # Only a hostile size is cut here; every output escapes what it shows.
    return cls(
        status=response.status,
        method=method,
        path=path,
        code=printable(error.code),
        message=error.message[:MAX_MESSAGE_CHARS],
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


def decode_lean(method: str, path: str, response: RawResponse) -> Integration:
    """A success response read as a lean integration (:func:`~ldbulk.api.listing.lean_integration`),
    or the exception its status calls for."""
    return lean_integration(decode_json(method, path, response), what=f"{method} {path}")


def decode_streamed(method: str, path: str, response: RawResponse) -> Any:
    """What a :class:`BodySink` read from a 2xx response; raises for an error status, an
    answer that was not streamed (a 3xx), or what the sink found wrong with the body."""
    if response.status >= 400:
        raise error_from_response(method, path, response)
    content_type = response.headers.get("Content-Type", "")
    if isinstance(response.streamed, ResponseFormatError):
        kind = content_type.split(";")[0].strip().lower()
        if kind and not kind.endswith("json"):
            # An HTML maintenance page, say: what it is tells more than where JSON broke.
            raise ResponseFormatError(
                f"{method} {path} -> {response.status}: non-JSON body ({kind})"
            ) from None
        raise response.streamed
    if response.streamed is None:
        summary = _summarise(response.body, content_type)
        raise ResponseFormatError(f"{method} {path} -> {response.status}: {summary}")
    return response.streamed


def expect_no_content(method: str, path: str, response: RawResponse) -> None:
    """Accept a 2xx without a body (a delete's 204); raise for an error status."""
    if response.status >= 400:
        raise error_from_response(method, path, response)


# Causes of a failed exchange, by errno, in words; and what to check, where that is clear.
_ERRNO_WORDS: Final = {
    errno.ECONNREFUSED: (
        "connection refused",
        "nothing listens on that port, or a firewall refuses it: check the base URL's port",
    ),
    errno.ECONNRESET: ("connection reset", "by the server or a proxy on the way"),
    errno.ECONNABORTED: ("connection aborted", ""),
    errno.EPIPE: ("connection closed while the request was being sent", ""),
    errno.ENETUNREACH: ("network unreachable", "check this machine's network and proxy"),
    errno.EHOSTUNREACH: ("host unreachable", "check this machine's network and proxy"),
    errno.ETIMEDOUT: ("timed out", ""),
}
_TLS_HINTS: Final = {
    "WRONG_VERSION_NUMBER": "the port answers without TLS: is it a plain HTTP port?",
    "UNEXPECTED_EOF_WHILE_READING": "the server or a proxy hung up during the TLS handshake",
}
_CERTIFICATE_HINT: Final = (
    "behind a TLS-inspecting proxy, give its CA certificate as the CA bundle (--ca-bundle)"
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps: aiohttp keeps the socket or TLS error as the cause."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is seen for seen in found) or len(found) > 20:
            continue
        found.append(current)
        wrapped = [getattr(current, name, None) for name in ("os_error", "certificate_error")]
        pending += [w for w in wrapped if isinstance(w, BaseException)]
        pending += [current.__cause__, current.__context__]
    return found


def _cause(exc: BaseException) -> tuple[str, str]:
    """(cause, hint) of a failed exchange, from the most telling error in the chain."""
    chain = _chain(exc)
    # Most specific first: an SSLError is an OSError too, with an errno of its own (1).
    # aiohttp's wrappers are SSL errors too, without OpenSSL's details: look for the original.
    tls = [error for error in chain if isinstance(error, ssl.SSLError)]
    if any(isinstance(error, ssl.SSLCertVerificationError) for error in tls):
        why = [m for error in tls if isinstance(m := getattr(error, "verify_message", None), str)]
        detail = f": {why[0]}" if why and why[0] else ""
        return f"TLS: certificate verify failed{detail}", _CERTIFICATE_HINT
    reasons = [reason for error in tls if isinstance(reason := getattr(error, "reason", None), str)]
    if reasons:
        return f"TLS: {reasons[0].lower().replace('_', ' ')}", _TLS_HINTS.get(reasons[0], "")
    if tls:
        return f"TLS: {type(tls[-1]).__name__}", ""
    for error in chain:
        if isinstance(error, socket.gaierror):
            if error.errno == socket.EAI_AGAIN:
                return "name not found: no DNS answer for now", "is DNS reachable from here?"
            return "name not found", "check the host name of the base URL"
    for error in chain:
        if isinstance(error, OSError) and error.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[error.errno]
    for error in chain:
        if isinstance(error, TimeoutError):
            return "timed out", ""
    # Nothing better known (a disconnect, a cut-short body): aiohttp's words, which carry
    # no header. Cut, since a message of a wrapped error can be long.
    words = str(exc).strip()
    return (f"{type(exc).__name__}: {words}"[:300] if words else type(exc).__name__), ""


def describe_transport_error(exc: BaseException, base_url: str) -> str:
    """A transport failure in words: the host and port, the cause, and a hint where one helps.

    For example ``127.0.0.1:1: connection refused (nothing listens on that port, ...)`` rather
    than the name of aiohttp's exception class. Never mentions a header, so never the token.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cause, hint = _cause(exc)
    return printable(f"{where}: {cause}" + (f" ({hint})" if hint else ""))
