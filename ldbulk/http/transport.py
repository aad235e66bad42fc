"""How a request reaches LaunchDarkly: a small protocol, over aiohttp or answered in memory.

The client decides what to send and what an answer means; a transport only carries one
request and brings back ``(status, headers, body)`` (httpx's ``transport=``, gidgethub's
``abc.GitHubAPI``). :class:`AiohttpTransport` is the real one; :class:`MemoryTransport` answers
from a handler or from canned responses, so the client's decisions are tested without sockets.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Final, Protocol
from urllib.parse import urlsplit

import aiohttp
import attrs

from ldbulk.api import sansio
from ldbulk.errors import ConfigError, RequestTimeout, ResponseFormatError, TransportError

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024


class Transport(Protocol):
    """Carries one request and returns the answer, whatever its status.

    A failure to get an answer (connection, TLS, timeout, a body cut short) is raised as
    :class:`~ldbulk.errors.TransportError`; a status is never an exception here. Redirects
    are not followed: the token would go wherever they point.
    """

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> sansio.RawResponse:
        """Send one request to ``url`` (with ``params`` as its query) and return the answer."""
        ...

    async def aclose(self) -> None:
        """Release connections; a later :meth:`send` may open new ones."""
        ...


def _path_of(url: str) -> str:
    """The path and query of ``url``: what an error names, never the host's credentials."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-request timeouts in seconds."""

    connect: float = 10.0
    total: float = 60.0


class AiohttpTransport:
    """Requests over one aiohttp session, with TLS verification always on.

    ``ca_bundle`` (e.g. a corporate proxy's CA) replaces the system trust store; it never
    turns the checks off. ``connection_limit`` caps open connections, ``max_body_bytes`` the
    body read from any answer. The session is opened by the first request and closed by
    :meth:`aclose`, so one transport can serve several ``async with Client`` blocks.
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts = Timeouts(),
        ca_bundle: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connection_limit: int = 100,
    ) -> None:
        try:
            self._ssl = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"ca_bundle: cannot use {ca_bundle!r}: {reason}") from None
        self._timeout = aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)
        self._max_body_bytes = max_body_bytes
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of every connection (certificate and host name always checked)."""
        return self._ssl

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session and its connections (harmless when none is open)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        # Opened here rather than in __init__: a session belongs to the running event loop.
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connection_limit)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> sansio.RawResponse:
        """One HTTP exchange; aiohttp's and the socket's errors become ldbulk's."""
        session = self._session or self._open()
        try:
            async with session.request(
                method, url, params=params, data=body, headers=headers, allow_redirects=False
            ) as response:
                content = await self._read_capped(response)
                return sansio.RawResponse(
                    status=response.status, headers=response.headers, body=content
                )
        except TimeoutError as exc:
            what = sansio.describe_transport_error(exc, url)
            path = _path_of(url)
            raise RequestTimeout(f"{method} {path}: {what}", method=method, path=path) from None
        except (aiohttp.ClientError, OSError) as exc:
            # aiohttp wraps most socket errors, but not all of them on every path (a reset or
            # an SSL error while the body is read can surface as the bare OSError).
            what = sansio.describe_transport_error(exc, url)
            path = _path_of(url)
            raise TransportError(f"{method} {path}: {what}", method=method, path=path) from None

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared <= self._max_body_bytes:
            # The common case, read in one go; aiohttp stops at the declared length.
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise ResponseFormatError(f"response body larger than {self._max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
