"""A fault-injecting reverse proxy for tests: the real client on one side, the sandbox on the other.

::

    plan = Seeded(7, [(0.1, reset_after())], methods={"POST"})
    async with Sandbox(...) as sandbox, FaultProxy(sandbox.url, plan) as proxy:
        async with Client(sandbox.token, base_url=proxy.url) as client:
            ...

Every request the proxy accepts is numbered in arrival order and shown to a *plan*, a callable
that returns the :class:`Fault` to inject or ``None`` to pass the request through untouched.
Plans are deterministic: :class:`Seeded` draws from a seeded RNG in arrival order, and
:class:`Script` injects by position. The faults:

- ``reset_before()``: the connection is cut before anything is forwarded (never reached the server);
- ``reset_after()``: forwarded, answered, and the answer lost (for a POST: commit-then-drop);
- ``slow(delay_s)``: the answer is held back, past the client's timeout; ``before=True`` holds
  the request back instead, so a client that gives up first means the server never sees it;
- ``server_error(status)``: a 5xx with an HTML page, as a load balancer sends, not forwarded;
- ``throttle(...)``: a 429, with ``Retry-After``, with ``X-Ratelimit-Reset`` (epoch ms), or bare.

:meth:`FaultProxy.down_after` takes the proxy off the air mid-run: the listening socket closes,
open connections are reset, and new ones are refused until the outage ends (after a number of
seconds, or at :meth:`FaultProxy.come_back`), when it listens again on the same port.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
from aiohttp import web

# Hop-by-hop and framing headers: aiohttp sets its own on each side of the proxy.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)

ERROR_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class Kind(enum.Enum):
    """What the proxy does to one request."""

    RESET_BEFORE = "reset_before"
    RESET_AFTER = "reset_after"
    SLOW = "slow"
    SERVER_ERROR = "server_error"
    THROTTLE = "throttle"
    OUTAGE = "outage"  # the request was cut because the proxy went down


@dataclass(frozen=True)
class Fault:
    """One injected fault; build them with the functions below."""

    kind: Kind
    status: int = 0
    delay_s: float = 0.0
    before: bool = False
    retry_after: str | None = None
    reset_in_s: float | None = None


def reset_before() -> Fault:
    """Cut the connection before forwarding: the server never sees the request."""
    return Fault(kind=Kind.RESET_BEFORE)


def reset_after() -> Fault:
    """Forward, wait for the server's answer, then cut the connection instead of answering."""
    return Fault(kind=Kind.RESET_AFTER)


def slow(delay_s: float, *, before: bool = False) -> Fault:
    """Hold the answer back (or, with ``before``, the request) for ``delay_s`` seconds."""
    return Fault(kind=Kind.SLOW, delay_s=delay_s, before=before)


def server_error(status: int = 502) -> Fault:
    """Answer with a 5xx HTML error page, as a load balancer in front of the API does."""
    return Fault(kind=Kind.SERVER_ERROR, status=status)


def throttle(*, retry_after: str | None = None, reset_in_s: float | None = None) -> Fault:
    """Answer 429 with ``Retry-After``, with ``X-Ratelimit-Reset`` that far ahead, or bare."""
    return Fault(kind=Kind.THROTTLE, status=429, retry_after=retry_after, reset_in_s=reset_in_s)


@dataclass(frozen=True)
class Seen:
    """A request as a plan sees it: its arrival number (from 0), method and path."""

    index: int
    method: str
    path: str


Plan = Callable[[Seen], Fault | None]


def _matches(seen: Seen, methods: Collection[str] | None, paths: str | None) -> bool:
    if methods is not None and seen.method not in methods:
        return False
    return paths is None or seen.path.startswith(paths)


class Seeded:
    """Each matching request draws at most one fault: ``(probability, fault)`` pairs, in order.

    Draws happen in arrival order from ``random.Random(seed)``, so a seed fixes the sequence of
    faults (which request gets which still depends on how concurrent requests interleave).
    """

    def __init__(
        self,
        seed: int,
        faults: Sequence[tuple[float, Fault]],
        *,
        methods: Collection[str] | None = None,
        paths: str | None = None,
        skip_first: int = 0,
    ) -> None:
        assert sum(p for p, _ in faults) <= 1.0
        self._rng = random.Random(seed)
        self._faults = list(faults)
        self._methods = methods
        self._paths = paths
        self._skip_first = skip_first

    def __call__(self, seen: Seen) -> Fault | None:
        if seen.index < self._skip_first or not _matches(seen, self._methods, self._paths):
            return None
        draw = self._rng.random()
        for probability, fault in self._faults:
            if draw < probability:
                return fault
            draw -= probability
        return None


class Script:
    """Faults by position among the matching requests (0 is the first matching request)."""

    def __init__(
        self,
        faults: Mapping[int, Fault],
        *,
        methods: Collection[str] | None = None,
        paths: str | None = None,
    ) -> None:
        self._faults = dict(faults)
        self._methods = methods
        self._paths = paths
        self._position = 0

    @classmethod
    def bursts(
        cls,
        starts: Sequence[int],
        length: int,
        make: Callable[[int], Fault],
        *,
        methods: Collection[str] | None = None,
        paths: str | None = None,
    ) -> Script:
        """``length`` consecutive faults from each start; ``make(i)`` builds the i-th of a burst."""
        faults = {start + i: make(i) for start in starts for i in range(length)}
        return cls(faults, methods=methods, paths=paths)

    def __call__(self, seen: Seen) -> Fault | None:
        if not _matches(seen, self._methods, self._paths):
            return None
        position = self._position
        self._position += 1
        return self._faults.get(position)

    @property
    def planned(self) -> int:
        """How many faults the script holds."""
        return len(self._faults)


def first_of(*plans: Plan) -> Plan:
    """A plan that asks each plan in turn (every one of them sees every request)."""

    def plan(seen: Seen) -> Fault | None:
        chosen = None
        for each in plans:
            fault = each(seen)
            if chosen is None:
                chosen = fault
        return chosen

    return plan


@dataclass
class Record:
    """What happened to one request at the proxy."""

    index: int
    method: str
    path: str
    fault: Kind | None
    upstream_status: int | None = None


@dataclass
class _Outage:
    after: int
    seconds: float | None
    task: asyncio.Task[None] | None = field(default=None)


class FaultProxy:
    """A reverse proxy on a loopback port in front of ``upstream`` that injects faults."""

    def __init__(self, upstream: str, plan: Plan | None = None, *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self.plan: Plan = plan if plan is not None else (lambda seen: None)
        self.host = host
        self.port = 0
        self.log: list[Record] = []
        self.outages = 0
        self.back = asyncio.Event()  # set while listening
        self._web = web.Server(self._handle, handler_cancellation=True)
        self._server: asyncio.base_events.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._outage: _Outage | None = None
        self._down = False

    @property
    def url(self) -> str:
        """The base URL to give the client."""
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False
        )
        await self._listen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._outage is not None and self._outage.task is not None:
            self._outage.task.cancel()
            await asyncio.gather(self._outage.task, return_exceptions=True)
        await self._stop_listening()
        await self._web.shutdown(0.1)
        if self._session is not None:
            await self._session.close()

    # -- introspection ---------------------------------------------------------------------

    def count(self, kind: Kind | None, *, method: str | None = None) -> int:
        """Requests that got ``kind`` (None: passed through), optionally of one method."""
        return sum(
            1
            for record in self.log
            if record.fault is kind and (method is None or record.method == method)
        )

    def upstream_statuses(self, method: str) -> Counter[int]:
        """The statuses the server answered to the forwarded requests of ``method``."""
        return Counter(
            record.upstream_status
            for record in self.log
            if record.method == method and record.upstream_status is not None
        )

    # -- outages ---------------------------------------------------------------------------

    def down_after(self, requests: int, *, seconds: float | None) -> None:
        """Go down when request number ``requests`` (from 0) arrives; that request is cut too.

        Back after ``seconds``, or at :meth:`come_back` when ``seconds`` is None.
        """
        self._outage = _Outage(after=requests, seconds=seconds)

    async def come_back(self) -> None:
        """End the outage now: listen again on the same port."""
        if self._outage is not None and self._outage.task is not None:
            await self._outage.task
        await self._listen()

    async def _go_down(self, seconds: float | None) -> None:
        await self._stop_listening()
        self.outages += 1
        if seconds is not None:
            await asyncio.sleep(seconds)
            await self._listen()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._web, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._down = False
        self.back.set()

    async def _stop_listening(self) -> None:
        self._down = True
        self.back.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Open keep-alive connections would keep working through a closed listener: reset them.
        for handler in self._web.connections:
            if handler.transport is not None:
                handler.transport.abort()

    # -- the path of every request ---------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        seen = Seen(index=len(self.log), method=request.method, path=request.path)
        outage = self._outage
        if self._down or (
            outage is not None and outage.task is None and seen.index >= outage.after
        ):
            self.log.append(Record(seen.index, seen.method, seen.path, Kind.OUTAGE))
            if outage is not None and outage.task is None:
                outage.task = asyncio.create_task(self._go_down(outage.seconds))
            return self._cut(request)
        fault = self.plan(seen)
        record = Record(seen.index, seen.method, seen.path, None if fault is None else fault.kind)
        self.log.append(record)
        if fault is None:
            return await self._forward(request, record)
        if fault.kind is Kind.RESET_BEFORE:
            return self._cut(request)
        if fault.kind is Kind.SERVER_ERROR:
            page = ERROR_PAGE.format(status=fault.status, reason=_reason(fault.status))
            return web.Response(status=fault.status, text=page, content_type="text/html")
        if fault.kind is Kind.THROTTLE:
            return _throttled(fault)
        if fault.kind is Kind.SLOW and fault.before:
            # The client gives up first: its disconnect cancels this handler before forwarding.
            await asyncio.sleep(fault.delay_s)
            return await self._forward(request, record)
        response = await self._forward(request, record)
        if fault.kind is Kind.SLOW:
            await asyncio.sleep(fault.delay_s)
            return response
        return self._cut(request)  # RESET_AFTER: the server answered, the client never hears

    async def _forward(self, request: web.BaseRequest, record: Record) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            content = await upstream.read()
            record.upstream_status = upstream.status
            answer_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED
            }
            return web.Response(status=upstream.status, body=content, headers=answer_headers)

    @staticmethod
    def _cut(request: web.BaseRequest) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        # The transport is gone; aiohttp discards whatever is returned.
        return web.Response(status=500)


def _reason(status: int) -> str:
    return {
        502: "Bad Gateway",
        503: "Service Temporarily Unavailable",
        504: "Gateway Time-out",
    }.get(status, "Internal Server Error")


def _throttled(fault: Fault) -> web.Response:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    if fault.reset_in_s is not None:
        headers["X-Ratelimit-Reset"] = str(int((time.time() + fault.reset_in_s) * 1000))
        headers["X-Ratelimit-Route-Remaining"] = "0"
    body = b'{"code":"rate_limited","message":"You\'ve exceeded the API rate limit.","id":"x"}'
    return web.Response(status=429, body=body, headers=headers, content_type="application/json")
