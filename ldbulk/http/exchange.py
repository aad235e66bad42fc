"""The one path every request of a client takes: the pacer, 429s, retries, counts, transport.

:class:`~ldbulk.http.client.Client` says what to ask (one method per operation); an
:class:`Exchange` says how it goes out, and is the only place where pacing, waiting out 429s
and retrying happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ldbulk.api import sansio
from ldbulk.api.limits import parse_rate_limit
from ldbulk.errors import Stopped, TransportError
from ldbulk.http.meter import Meter
from ldbulk.http.pacer import Pacer
from ldbulk.http.retry import Retriable, RetryBudget, RetryContext, RetryPolicy
from ldbulk.http.scope import RequestScope
from ldbulk.http.transport import Transport

# The meters a request is counted in: the client's, and its run's when it has one.
_Meters = Sequence[Meter]

# The client's logger: what it logs is the client's requests, wherever the code lives.
log = logging.getLogger("ldbulk.http.client")


class Exchange:
    """Sends a client's requests: paced, 429s waited out, what is safe retried, all counted.

    ``meter`` counts every request over the client's life; the retry ``budget`` is shared by
    all of them. :meth:`open` and :meth:`aclose` follow the client's ``async with``.
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        transport: Transport,
        pacer: Pacer,
        policy: RetryPolicy,
    ) -> None:
        self._token = token
        self._base_url = base_url
        self._transport = transport
        self._pacer = pacer
        self._policy = policy
        self._budget = RetryBudget(policy)
        # Every request's headers, built once for each (beta, has_body): the same few for
        # thousands of requests. The transports only read them.
        self._headers = {
            (beta, has_body): sansio.request_headers(token, beta=beta, has_body=has_body)
            for beta in (False, True)
            for has_body in (False, True)
        }
        self._open = False
        self._closed = False
        self.meter = Meter()

    def __repr__(self) -> str:
        return f"Exchange(base_url={self._base_url!r})"

    @property
    def is_open(self) -> bool:
        """Whether requests may go out: opened, and not closed since."""
        return self._open

    def open(self) -> None:
        """Let requests go out (the client was entered)."""
        self._open, self._closed = True, False

    async def aclose(self) -> None:
        """Refuse further requests until opened again, and close the transport."""
        self._open, self._closed = False, True
        await self._transport.aclose()

    def retry_context(self, scope: RequestScope | None, *, on: Retriable = ()) -> RetryContext:
        """Attempts under the client's policy and budget, counted for the client and ``scope``,
        and ended by ``scope``'s stop signal."""
        stop, meters = self._counted_by(scope)
        return RetryContext(self._policy, self._budget, on=on, stop=stop, meters=meters)

    def _counted_by(self, scope: RequestScope | None) -> tuple[asyncio.Event | None, _Meters]:
        """The stop signal of ``scope``'s requests, and the meters that count them."""
        if scope is None:
            return None, (self.meter,)
        return scope.stop, (self.meter, scope.meter)

    async def __call__(
        self,
        route: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        beta: bool = True,
        idempotent: bool = True,
        scope: RequestScope | None = None,
        attempts: list[int] | None = None,
        sink: Callable[[], sansio.BodySink] | None = None,
    ) -> sansio.RawResponse:
        """Send one request through the pacer, waiting out 429s and retrying what is safe.

        A 429 means LaunchDarkly did not apply the request, so it is always sent again once the
        pacer's gate opens, until ``throttle_deadline_s``, and costs no attempt. Transport
        errors and 5xx are retried with backoff only when ``idempotent``: for a create, the
        caller must first find out whether it was applied. Once ``scope`` is stopped, nothing
        more is sent: a request still waiting raises :class:`~ldbulk.errors.Stopped`, and one
        in flight gets the scope's grace (:data:`~ldbulk.http.scope.STOP_GRACE_S`) to be
        answered before it is abandoned as a :class:`~ldbulk.errors.TransportError` (it may
        have been applied).
        ``attempts`` collects the status of each try (0 for no answer), for the callers that
        read a retry's answer differently. ``sink`` makes a fresh reader for each try's body
        (see :class:`~ldbulk.http.transport.Transport`): a body cut short is a transport error,
        retried like any other.
        """
        if not self._open:
            if self._closed:
                raise RuntimeError(
                    "this Client is closed: keep one open for the application's life, "
                    "inside 'async with Client(...) as client:'"
                )
            raise RuntimeError("use the Client inside 'async with Client(...) as client:'")
        tries = attempts if attempts is not None else []
        request = (route, method, path, params, body, beta, idempotent, scope, tries, sink)
        if scope is None:
            return await self._exchange(*request)
        if scope.given_up:
            raise Stopped("not sent: the run was stopped")
        in_flight = scope.entering()
        try:
            return await self._exchange(*request)
        except asyncio.CancelledError:
            if not in_flight.ended_by_stop():
                raise
            if not tries:
                raise Stopped("not sent: the run was stopped") from None
            # Sent, and no answer within the stop's grace: a write may have been applied.
            effect = "" if method == "GET" else " (it may have been applied)"
            raise TransportError(
                f"{method} {path}: abandoned at the stop, no answer within "
                f"{scope.grace_s:g} s{effect}",
                method=method,
                path=path,
            ) from None
        finally:
            scope.leaving(in_flight)

    async def _exchange(
        self,
        route: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        beta: bool,
        idempotent: bool,
        scope: RequestScope | None,
        attempts: list[int],
        sink: Callable[[], sansio.BodySink] | None,
    ) -> sansio.RawResponse:
        """:meth:`__call__`'s request, paced, 429s waited out, retried where safe."""
        # Encoded once, however many times the request is sent; bytes are JSON encoded already
        # (a caller sending one body to many targets encodes it once for all).
        if isinstance(body, bytes):
            data: bytes | None = body
        else:
            data = json.dumps(body).encode() if body is not None else None
        request = _Request(
            route=route,
            method=method,
            path=path,
            url=self._base_url + path,
            params=params,
            headers=self._headers[beta, data is not None],
            data=data,
            attempts=attempts,
            sink=sink,
        )
        loop = asyncio.get_running_loop()
        throttle_deadline = loop.time() + self._policy.throttle_deadline_s
        if not idempotent:
            # Sent once whatever happens (the caller decides about another try): one attempt,
            # without the retry loop's machinery on the path every create takes.
            stop, meters = self._counted_by(scope)
            return self._answer(
                await self._unthrottled(request, 1, stop, meters, throttle_deadline)
            )
        retrying = self.retry_context(scope, on=TransportError)
        async for attempt in retrying:
            with attempt:
                response = await self._unthrottled(request, attempt.num, retrying.stop,
                                                   retrying.meters, throttle_deadline)
                if response.status >= 500 and attempt.retry():
                    continue
                return self._answer(response)
        raise AssertionError("unreachable: every attempt returns, raises or is retried")

    def _answer(self, response: sansio.RawResponse) -> sansio.RawResponse:
        """The answer of the last try, as every reader gets it."""
        if response.status < 400:
            self._budget.earn()
        # Before anything reads it: an answer may quote the token it was sent.
        return sansio.without_secret(response, self._token)

    async def _unthrottled(
        self,
        request: _Request,
        attempt: int,
        stop: asyncio.Event | None,
        meters: _Meters,
        deadline: float,
    ) -> sansio.RawResponse:
        """One attempt: sent when the pacer allows (unless ``stop`` is set first), and again
        after each 429 (LaunchDarkly did not apply it) until ``deadline`` (loop time); its
        last answer. ``meters`` count it."""
        route = request.route
        while True:
            ticket = await self._pacer.acquire(route, stop=stop, meters=meters)
            try:
                response = await self._send(request, attempt)
            except BaseException:
                # No answer: the request no longer counts as in flight in any budget.
                self._pacer.forget(ticket)
                raise
            limits = parse_rate_limit(response.headers)
            self._pacer.observe(route, response.status, limits, ticket, meters=meters)
            if response.status != 429 or asyncio.get_running_loop().time() >= deadline:
                return response
            log.info("%s %s: rate limited, waiting for the window to reset", request.method,
                     request.path, extra=_fields(request, status=429))

    async def _send(self, request: _Request, attempt: int) -> sansio.RawResponse:
        """One exchange through the transport, logged, its status kept in the request's
        ``attempts``.

        A log record carries what a log collector filters on as fields (method, route, path,
        status, ms, attempt), not only inside its message."""
        method, path, attempts = request.method, request.path, request.attempts
        loop = asyncio.get_running_loop()
        sent = loop.time()
        # No answer yet: a try abandoned at a stop stays one without an answer.
        attempts.append(0)
        try:
            if request.sink is None:
                # No ``sink`` argument: a transport written before sinks still serves the rest.
                response = await self._transport.send(
                    method, request.url, params=request.params, headers=request.headers,
                    body=request.data,
                )
            else:
                response = await self._transport.send(
                    method, request.url, params=request.params, headers=request.headers,
                    body=request.data, sink=request.sink(),
                )
        except TransportError as exc:
            ms = round((loop.time() - sent) * 1000, 1)  # a time-out's shows the time given
            log.info("%s %s: %s (failure %d, %.0f ms)", method, path, exc, attempt, ms,
                     extra=_fields(request, attempt=attempt, error=str(exc), ms=ms))
            raise
        attempts[-1] = response.status
        # A 5xx is retried where that is safe, as a transport failure is: logged alike.
        level = logging.INFO if response.status >= 500 else logging.DEBUG
        if log.isEnabledFor(level):  # the hot path: no fields built for a record not shown
            ms = round((loop.time() - sent) * 1000, 1)
            log.log(level, "%s %s -> %d (%.0f ms)", method, path, response.status, ms,
                    extra=_fields(request, attempt=attempt, status=response.status, ms=ms))
        return response


class _Request(NamedTuple):
    """One request as every try sends it: encoded once. A named tuple, not an attrs class:
    one is made for every request, and a tuple is the cheapest to make."""

    route: str
    method: str
    path: str
    url: str
    params: Mapping[str, str] | None
    headers: Mapping[str, str]
    data: bytes | None
    # The status of each try (0 for no answer), for the callers that read a retry's answer
    # differently.
    attempts: list[int]
    # Makes a fresh reader for each try's body, or None to have it read whole.
    sink: Callable[[], sansio.BodySink] | None


def _fields(request: _Request, **more: object) -> dict[str, object]:
    """A request's log record fields: what a log collector filters on, beside the message."""
    return {"method": request.method, "route": request.route, "path": request.path, **more}
