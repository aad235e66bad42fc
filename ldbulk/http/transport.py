"""How a request reaches LaunchDarkly: a small protocol, over aiohttp or answered in memory.

The client decides what to send and what an answer means; a transport only carries one
request and brings back ``(status, headers, body)`` (httpx's ``transport=``, gidgethub's
``abc.GitHubAPI``). :class:`AiohttpTransport` is the real one; :class:`MemoryTransport` answers
from a handler or from canned responses, so the client's decisions are tested without sockets.
"""

from __future__ import annotations

import asyncio
import inspect
import json as jsonlib
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ldbulk.api import sansio
from ldbulk.errors import ConfigError, RequestTimeout, ResponseFormatError, TransportError
from ldbulk.http.deadlines import Progress, stream, too_slow
from ldbulk.http.deadlines import Timeouts as Timeouts  # the transport's, re-exported

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024


class Transport(Protocol):
    """Carries one request and returns the answer, whatever its status.

    A failure to get an answer (connection, TLS, timeout, a body cut short) is raised as
    :class:`~ldbulk.errors.TransportError`; a status is never an exception here. Redirects
    are not followed: the token would go wherever they point.

    With a ``sink``, the body of a 2xx answer is fed to it as it arrives, with no cap
    on its size, and what the sink made of it comes back as the response's ``streamed``
    (the client asks this of the account's listing only).
    """

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        sink: sansio.BodySink | None = None,
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


class AiohttpTransport:
    """Requests over one aiohttp session, with TLS verification always on.

    ``ca_bundle`` (e.g. a corporate proxy's CA) replaces the system trust store (without it, the
    store as aiohttp loaded it when imported: ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` set by then
    are honoured); it never turns the checks off. ``connection_limit`` caps open connections (by
    default none: the pacer and the caller's concurrency bound the requests in flight),
    ``max_body_bytes`` the body read from any answer but one streamed into a sink. A streamed
    body (the account's listing, hundreds of thousands of integrations) is bounded by what it
    has received, not by ``timeouts.total`` alone: see :class:`Timeouts`. The session is opened
    by the first request and closed by :meth:`aclose`, so one transport can serve several
    ``async with Client`` blocks.
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, so sharing it is safe
        ca_bundle: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connection_limit: int | None = None,
    ) -> None:
        # Without a bundle, aiohttp's own verifying context (the system trust store, loaded once
        # when aiohttp is imported): loading the store again would cost each transport ~40 ms.
        self._ssl: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            try:
                self._ssl = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                reason = exc.strerror or str(exc)
                raise ConfigError(f"ca_bundle: cannot use {ca_bundle!r}: {reason}") from None
        self._timeouts = timeouts
        self._timeout = aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)
        # A streamed answer's whole time is the deadline that grows with it (see _stream).
        self._streaming_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_read=timeouts.total
        )
        self._max_body_bytes = max_body_bytes
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        # Requests in flight on each session; a session retired after a timeout is closed
        # once its last one ends.
        self._in_flight: dict[aiohttp.ClientSession, int] = {}

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every connection made with ``ca_bundle`` (certificate and host
        name always checked); None without one: aiohttp's verifying default is used."""
        return self._ssl if isinstance(self._ssl, ssl.SSLContext) else None

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session and its connections (harmless when none is open)."""
        sessions = set(self._in_flight)
        if self._session is not None:
            sessions.add(self._session)
        self._session = None
        self._in_flight.clear()
        for session in sessions:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        # Opened here rather than in __init__: a session belongs to the running event loop.
        # aiohttp's limit of 0 is none: a request the pacer let go must not queue for a
        # connection, where its time would count against its timeout.
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connection_limit or 0)
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
        sink: sansio.BodySink | None = None,
    ) -> sansio.RawResponse:
        """One HTTP exchange; aiohttp's and the socket's errors become ldbulk's.

        After a timeout, the connections kept open for the next requests are left to the
        requests already on them, and later requests open new ones: a link that went silent
        leaves every idle connection dead too (a middlebox forgot them), and after it heals
        each would cost a request its whole timeout, one after another.
        """
        session = self._session or self._open()
        self._in_flight[session] = self._in_flight.get(session, 0) + 1
        try:
            return await self._exchange(session, method, url, params, headers, body, sink)
        except RequestTimeout:
            if session is self._session:
                self._session = None  # retired: the next request opens a fresh one
            raise
        finally:
            left = self._in_flight.get(session, 0) - 1
            if left > 0:
                self._in_flight[session] = left
            else:
                self._in_flight.pop(session, None)
                if session is not self._session:
                    await session.close()

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        sink: sansio.BodySink | None,
    ) -> sansio.RawResponse:
        if sink is not None:
            return await self._streamed(session, method, url, params, headers, body, sink)
        try:
            # The session's own timeout (the request's ``total`` and ``connect``): nothing
            # built per request on the path every create takes.
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
            raise _transport_error(exc, method, url) from None

    async def _streamed(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        sink: sansio.BodySink,
    ) -> sansio.RawResponse:
        """:meth:`_exchange` of a request whose 2xx body goes to ``sink`` as it arrives, under
        a deadline that grows with what has arrived (see :class:`Timeouts`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        progress = Progress()
        try:
            async with asyncio.timeout_at(
                self._timeouts.streamed_deadline(started, 0)
            ) as deadline, session.request(
                method,
                url,
                params=params,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._streaming_timeout,
            ) as response:
                if 200 <= response.status < 300:
                    streamed = await stream(response, sink, progress, self._timeouts,
                                            started, deadline)  # fmt: skip
                    return sansio.RawResponse(
                        status=response.status, headers=response.headers, body=b"",
                        streamed=streamed,
                    )
                content = await self._read_capped(response)
                return sansio.RawResponse(
                    status=response.status, headers=response.headers, body=content
                )
        except TimeoutError as exc:
            path = _path_of(url)
            if progress.received:
                what = too_slow(self._timeouts, progress.received, loop.time() - started)
            else:
                what = sansio.describe_transport_error(exc, url)
            raise RequestTimeout(f"{method} {path}: {what}", method=method, path=path) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc, method, url) from None

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


def _transport_error(exc: BaseException, method: str, url: str) -> TransportError:
    """aiohttp's or the socket's error as ldbulk's. aiohttp wraps most socket errors, but not
    all of them on every path (a reset or an SSL error while the body is read can surface as
    the bare OSError)."""
    what = sansio.describe_transport_error(exc, url)
    path = _path_of(url)
    return TransportError(f"{method} {path}: {what}", method=method, path=path)


def _feed_whole(body: bytes, sink: sansio.BodySink) -> Any:
    """A body already in memory through ``sink``, in pieces as a network would bring it."""
    try:
        for start in range(0, len(body), _MEMORY_CHUNK):
            sink.feed(body[start : start + _MEMORY_CHUNK])
        return sink.close()
    except ResponseFormatError as exc:
        return exc


# What a MemoryTransport feeds a sink at a time: small, so tests cross many chunk boundaries.
_MEMORY_CHUNK: Final = 4096


# -- in memory ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SentRequest:
    """A request as a :class:`MemoryTransport` received it."""

    method: str
    url: str = attrs.field(repr=False)
    path: str  # path and query, e.g. ``/api/v2/projects?limit=100&offset=0``
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes | None = attrs.field(repr=False)

    def json(self) -> Any:
        """The body, decoded as JSON."""
        return None if self.body is None else jsonlib.loads(self.body)


Handler = Callable[[SentRequest], sansio.RawResponse | Awaitable[sansio.RawResponse]]

_NO_JSON: Final = object()


def canned(
    status: int = 200,
    *,
    json: Any = _NO_JSON,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> sansio.RawResponse:
    """A response to hand out: ``json`` is encoded (with its content type), else ``body``."""
    fields = CIMultiDict(headers or {})
    if json is not _NO_JSON:
        body = jsonlib.dumps(json).encode()
        fields.setdefault("Content-Type", "application/json")
    return sansio.RawResponse(status=status, headers=CIMultiDictProxy(fields), body=body)


@attrs.define
class _Route:
    method: str
    path: str | re.Pattern[str]
    answer: sansio.RawResponse | type[TransportError]
    repeat: bool

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        if isinstance(self.path, str):
            return path == self.path
        return self.path.fullmatch(path) is not None


class MemoryTransport:
    """A transport for tests: answers without a network, and records every request.

    With a ``handler``, every request is answered by calling it (it may be async, and may
    raise a :class:`~ldbulk.errors.TransportError`). Otherwise requests take the canned answers
    queued with :meth:`add` for their method and path (with query), in order; an answer added
    with ``repeat=True`` stays. A request nothing answers fails like a refused connection.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[SentRequest] = []
        self._handler = handler
        self._routes: list[_Route] = []

    def add(
        self,
        method: str,
        path: str | re.Pattern[str],
        status: int = 200,
        *,
        json: Any = _NO_JSON,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        error: type[TransportError] | None = None,
        repeat: bool = False,
    ) -> None:
        """Queue an answer for ``method`` and ``path`` (a string, or a pattern to match whole).

        The answer is built as :func:`canned` builds it; with ``error`` (e.g.
        :class:`~ldbulk.errors.RequestTimeout`), the request fails that way instead.
        """
        answer = error or canned(status, json=json, body=body, headers=headers)
        self._routes.append(_Route(method.upper(), path, answer, repeat))

    def sent(self, method: str, path: str) -> list[SentRequest]:
        """The requests received for one method and path (with query)."""
        return [r for r in self.requests if r.method == method and r.path == path]

    async def aclose(self) -> None:
        """Nothing to release."""

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        sink: sansio.BodySink | None = None,
    ) -> sansio.RawResponse:
        """Record the request, then answer it from the handler or the queue (through ``sink``
        as a streamed body, when one is given and the status is 2xx)."""
        answer = await self._answer(method, url, params=params, headers=headers, body=body)
        if sink is None or not 200 <= answer.status < 300:
            return answer
        streamed = _feed_whole(answer.body, sink)
        return attrs.evolve(answer, body=b"", streamed=streamed)

    async def _answer(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> sansio.RawResponse:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        request = SentRequest(
            method=method, url=url, path=_path_of(url), headers=dict(headers), body=body
        )
        self.requests.append(request)
        if self._handler is not None:
            answer = self._handler(request)
            return await answer if inspect.isawaitable(answer) else answer
        for index, route in enumerate(self._routes):
            if route.matches(method, request.path):
                if not route.repeat:
                    del self._routes[index]
                if isinstance(route.answer, sansio.RawResponse):
                    return route.answer
                what = "timed out" if issubclass(route.answer, RequestTimeout) else "lost"
                raise route.answer(
                    f"{method} {request.path}: {what} (in memory)",
                    method=method,
                    path=request.path,
                )
        raise TransportError(
            f"{method} {request.path}: connection refused (no answer queued in memory)",
            method=method,
            path=request.path,
        )
