"""The exceptions ldbulk raises, all under one root.

::

    LdbulkError
     ├── ConfigError            bad input given to ldbulk itself: a store config, a base URL,
     │                          a missing token. Raised before any request is sent.
     ├── ManifestError          (ldbulk.manifest) every problem of a set of manifests, each
     │                          with file, line and path.
     ├── PruneRefused           a prune's deletes were not consented to, or exceed the most
     │                          allowed: raised after the reads, before the first write.
     ├── ResponseFormatError    LaunchDarkly answered, but the body is not what the spec says.
     ├── Stopped                the request was never sent: its run was told to stop first.
     ├── TransportError         no HTTP answer at all: connect failure, reset, truncated body.
     │    └── RequestTimeout    the connect or total timeout ran out.
     └── HTTPStatusError        LaunchDarkly answered with an error status.
          ├── BadRequest        400
          ├── Unauthorized      401  the token is wrong for every request, not just this one
          ├── Forbidden         403  missing role permission, or a missing beta header
          ├── NotFound          404  unknown project, environment, integration key or id
          ├── Conflict          409
          ├── RateLimited       429  carries the parsed rate-limit state (when to come back)
          └── ServerError       5xx

Transport errors are kept apart from status errors because that is the retry boundary: after a
``TransportError`` on a create, LaunchDarkly may or may not have applied it; after an
``HTTPStatusError`` it answered and we know. Messages never contain a secret: they name fields
and routes, never values of configs or headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ldbulk.api.limits import RateLimitState


class LdbulkError(Exception):
    """Root of every exception ldbulk raises on purpose."""


class ConfigError(LdbulkError, ValueError):
    """Input given to ldbulk is invalid; nothing was sent."""


class PruneRefused(LdbulkError):
    """A prune would delete without consent, or more than allowed; nothing was written.

    ``deletes`` holds the (project, environment, integration key, id) of each integration it
    would have deleted."""

    def __init__(self, message: str, *, deletes: tuple[tuple[str, str, str, str], ...]) -> None:
        super().__init__(message)
        self.deletes = deletes


class ResponseFormatError(LdbulkError):
    """A response body does not match the schema LaunchDarkly documents."""


class Stopped(LdbulkError):
    """The request was not sent: the run it belongs to was stopped while it waited its turn."""


class TransportError(LdbulkError):
    """The request got no HTTP answer (connect error, reset, truncated body)."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class RequestTimeout(TransportError):
    """The connect or total timeout ran out before an answer arrived."""


class HTTPStatusError(LdbulkError):
    """LaunchDarkly answered with an error status.

    ``code``, ``message`` and ``request_id`` come from LaunchDarkly's error body
    ``{"code", "message", "id"}`` when it has one; a body that is not JSON (an HTML page from a
    proxy) leaves them empty or summarised, never raw.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        path: str,
        code: str = "",
        message: str = "",
        request_id: str | None = None,
        rate_limit: RateLimitState | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.code = code
        self.message = message
        self.request_id = request_id
        self.rate_limit = rate_limit
        detail = f"{code}: {message}" if code else message
        text = f"{method} {path} -> {status}" + (f" {detail}" if detail else "")
        if request_id:
            text += f" (request id {request_id})"
        super().__init__(text)


class BadRequest(HTTPStatusError):
    """400: LaunchDarkly rejected the request body."""


class Unauthorized(HTTPStatusError):
    """401: the access token is missing, invalid or revoked."""


class Forbidden(HTTPStatusError):
    """403: the token's role lacks permission, or the beta header was missing."""


class NotFound(HTTPStatusError):
    """404: the project, environment, integration key or integration id does not exist."""


class Conflict(HTTPStatusError):
    """409: a concurrent change, or an integration of that key already exists there."""


class RateLimited(HTTPStatusError):
    """429: a rate limit was hit; ``rate_limit`` says when the window resets."""


class ServerError(HTTPStatusError):
    """5xx: LaunchDarkly (or a proxy in front of it) failed."""


_BY_STATUS: dict[int, type[HTTPStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def status_error_class(status: int) -> type[HTTPStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, HTTPStatusError)
