"""The path of every API request, as aiohttp middlewares, outermost first.

The order is the one LaunchDarkly's documentation implies: authentication (401), rate limits
(429, only for authenticated requests, and a throttled request is never applied), the beta
header (403), then the injected latency and faults, then the operation itself, whose
:class:`ApiError` becomes its error answer. :func:`accounting` wraps them all: it counts every
answer by route and status (a cut connection as ``dropped``) and records responses.
:func:`unmatched`, outermost, answers what no route serves: 405 with ``Allow`` for a known
path asked with another method, 404 otherwise, both in LaunchDarkly's error shape.

Only the API routes take this path: ``/_sandbox`` and unknown paths pass through each
middleware untouched. Faults draw from the sandbox's one ``random.Random(seed)``, so a
sequential run with the same seed meets the same faults.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import secrets
from collections.abc import Callable, Mapping

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractRoute

from ldbulk.sandbox.limits import FixedWindowLimiter
from ldbulk.sandbox.options import RecordedResponse, SandboxStats
from ldbulk.sandbox.responses import ApiError, Dropped, error_response


@attrs.frozen
class ApiRoute:
    """An API route: its stats key (``"METHOD pattern"``) and whether it is a beta resource."""

    key: str
    beta: bool


# The API routes by the aiohttp route that serves them; anything else is not the API.
Routes = Mapping[AbstractRoute, ApiRoute]


@attrs.define
class Counters:
    """What the middlewares count, from start or the last :meth:`clear`."""

    by_route: dict[tuple[str, str], int] = attrs.field(factory=dict)
    total: int = 0
    throttled: int = 0
    faults: int = 0
    dropped: int = 0

    def count(self, route: str, status: str) -> None:
        """One answer (or ``"dropped"``) on ``route``."""
        key = (route, status)
        self.by_route[key] = self.by_route.get(key, 0) + 1
        self.total += 1

    def clear(self) -> None:
        """Back to zero (the middlewares keep counting into this same object)."""
        self.by_route.clear()
        self.total = self.throttled = self.faults = self.dropped = 0

    def stats(self, *, integrations: int) -> SandboxStats:
        """The counts as :class:`SandboxStats`."""
        requests: dict[str, dict[str, int]] = {}
        for (route, status), count in self.by_route.items():
            requests.setdefault(route, {})[status] = count
        return SandboxStats(
            requests=requests,
            total=self.total,
            throttled=self.throttled,
            faults=self.faults,
            dropped=self.dropped,
            integrations=integrations,
        )


def accounting(
    routes: Routes, counters: Counters, responses: list[RecordedResponse] | None
) -> Middleware:
    """Count every API answer by route and status, and record it when ``responses`` is a list."""

    @web.middleware
    async def account(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = routes.get(request.match_info.route)
        if route is None:
            return await handler(request)
        try:
            response = await handler(request)
        except Dropped:
            counters.count(route.key, "dropped")
            counters.dropped += 1
            # The transport is gone; aiohttp discards whatever is returned.
            return web.Response(status=500)
        counters.count(route.key, str(response.status))
        if responses is not None and isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b""
            responses.append(
                RecordedResponse(
                    method=request.method, route=route.key, status=response.status, body=body
                )
            )
        return response

    return account


def authentication(routes: Routes, token: str, *, echo_token: bool = False) -> Middleware:
    """401 unless the ``Authorization`` header is the raw token (no ``Bearer``); with
    ``echo_token``, the 401's message quotes the header it was sent."""
    expected = token.encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        sent = request.headers.get("Authorization", "")
        if request.match_info.route in routes and not secrets.compare_digest(
            sent.encode(), expected
        ):
            message = "Invalid access token"
            if echo_token:
                message += f": Authorization: {sent!r} is not a valid token"
            return error_response(401, "unauthorized", message)
        return await handler(request)

    return authenticate


def rate_limits(
    routes: Routes, limiter: FixedWindowLimiter, counters: Counters, *, retry_after: bool
) -> Middleware:
    """429 past a budget; every answer of a limited route carries the rate-limit headers."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = routes.get(request.match_info.route)
        if route is None or not limiter.enabled:
            return await handler(request)
        # Authentication ran first: the header is the one accepted token.
        decision = limiter.admit(route.key, request.headers.get("Authorization", ""))
        headers = decision.headers
        response: web.StreamResponse
        if decision.allowed:
            response = await handler(request)
        else:
            counters.throttled += 1
            if retry_after:
                headers["Retry-After"] = str(decision.retry_after_s)
            response = error_response(
                429, "rate_limited", "You've exceeded the API rate limit. Try again later."
            )
        response.headers.update(headers)
        return response

    return limit


def beta_header(routes: Routes) -> Middleware:
    """403 for a beta route without ``LD-API-Version: beta``."""

    @web.middleware
    async def require_beta(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = routes.get(request.match_info.route)
        if route is not None and route.beta and request.headers.get("LD-API-Version") != "beta":
            return error_response(
                403,
                "forbidden",
                "This is a beta resource: send the header 'LD-API-Version: beta' to use it",
            )
        return await handler(request)

    return require_beta


def faults(
    routes: Routes,
    rng: random.Random,
    counters: Counters,
    *,
    latency_ms: float,
    fault_rate: float,
) -> Middleware:
    """The added latency, then with probability ``fault_rate`` a 5xx instead of the operation."""

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route not in routes:
            return await handler(request)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if fault_rate and rng.random() < fault_rate:
            counters.faults += 1
            status = rng.choice((500, 502, 503))
            return error_response(
                status, "internal_server_error", "Injected fault: the request was not applied"
            )
        return await handler(request)

    return inject


def server_date(clock: Callable[[], float]) -> Middleware:
    """Every answer's ``Date`` (RFC 9110, 6.6.1) read from the server's own ``clock``.

    aiohttp would send the machine's time; the sandbox's clock may be a test's fake one, or
    skewed on purpose, and a client reads the resets against the ``Date`` beside them."""

    @web.middleware
    async def date(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers["Date"] = email.utils.formatdate(clock(), usegmt=True)
        return response

    return date


@web.middleware
async def unmatched(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request no route serves gets LaunchDarkly's error shape, not aiohttp's plain text.

    A known path asked with another method is a 405 naming the methods it takes in ``Allow``
    (RFC 9110; LaunchDarkly documents 405 "Method not allowed"); an unknown path is a 404.
    """
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        response = error_response(405, "method_not_allowed", "Method not allowed")
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPNotFound:
        return error_response(404, "not_found", "Invalid resource identifier")


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An :class:`ApiError` raised by an operation becomes its error answer."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
