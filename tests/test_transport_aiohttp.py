"""The aiohttp transport against servers on a loopback port: what it sends, what it reads, and
how aiohttp's and the socket's failures become ldbulk's errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from ldbulk import (
    Client,
    RequestTimeout,
    ResponseFormatError,
    RetryPolicy,
    Timeouts,
    TransportError,
)
from ldbulk.http.scope import RequestScope
from ldbulk.http.transport import AiohttpTransport

TOKEN = "api-5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
LIST = "/api/v2/integration-capabilities/big-segment-store"
LISTING = {"items": [], "_links": {"self": {"href": "/api/v2/integration-capabilities"}}}
FAST = RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.001)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A loopback server answering every request with ``handler``, and the requests it saw."""
    seen: list[web.Request] = []

    async def recording(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_serving(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that reads one request head and then does what ``answer`` does; and how many
    connections it accepted."""
    accepted: list[int] = []

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await reader.readuntil(b"\r\n\r\n")
        await answer(reader, writer)

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()


async def json_listing(request: web.Request) -> web.StreamResponse:
    return web.json_response(LISTING)


# -- what goes out -------------------------------------------------------------------------


async def test_sends_method_url_query_headers_and_body_as_given() -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        return web.json_response({"body": (await request.read()).decode()}, status=201)

    async with serving(echo) as (url, seen), AiohttpTransport() as transport:
        response = await transport.send(
            "POST",
            url + "/api/v2/x",
            params={"limit": "100", "offset": "0"},
            headers={"Authorization": TOKEN, "Content-Type": "application/json"},
            body=b'{"on": true}',
        )
    assert response.status == 201
    assert json.loads(response.body) == {"body": '{"on": true}'}
    assert response.headers["content-type"].startswith("application/json")
    (request,) = seen
    assert (request.method, request.path_qs) == ("POST", "/api/v2/x?limit=100&offset=0")
    assert request.headers["Authorization"] == TOKEN


async def test_a_redirect_is_returned_not_followed() -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        if request.path == "/elsewhere":
            return web.json_response(LISTING)
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async with serving(redirect) as (url, seen), AiohttpTransport() as transport:
        response = await transport.send("GET", url + LIST, params=None, headers={}, body=None)
    # The token must not follow a redirect to wherever it points.
    assert response.status == 302
    assert [request.path for request in seen] == [LIST]


# -- what comes back -----------------------------------------------------------------------


async def test_a_body_over_max_body_bytes_raises_cleanly_and_is_not_retried() -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        return web.json_response({"_id": "y" * 2048})

    async with serving(big) as (url, seen):
        async with Client(TOKEN, base_url=url, retry=FAST, max_body_bytes=1024) as ld:
            with pytest.raises(ResponseFormatError, match="larger than 1024 bytes"):
                await ld.get_integration("p", "e", "redis", "0123")
    assert len(seen) == 1


def listed(count: int) -> dict[str, object]:
    """A listing of ``count`` integrations, each with the links and status the API sends."""
    return {
        "_links": {"self": {"href": LIST, "type": "application/json"}},
        "items": [
            {
                "_links": {"self": {"href": f"{LIST}/p/env-{i}/redis/{i:024x}"}},
                "_id": f"{i:024x}",
                "integrationKey": "redis",
                "projectKey": "p",
                "environmentKey": f"env-{i}",
                "tags": ["managed-by-ldbulk"],
                "version": 2,
                "_status": {"available": True, "lastSync": 1700000000000},
            }
            for i in range(count)
        ],
    }


@pytest.mark.parametrize("lean", [False, True], ids=["whole", "lean"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_the_listing_has_no_body_cap(lean: bool, chunked: bool) -> None:
    body = json.dumps(listed(300)).encode()

    async def many(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, content_type="application/json")
        stream = web.StreamResponse(headers={"Content-Type": "application/json"})
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        for start in range(0, len(body), 1000):
            await stream.write(body[start : start + 1000])
        await stream.write_eof()
        return stream

    async with serving(many) as (url, seen):
        async with Client(TOKEN, base_url=url, retry=FAST, max_body_bytes=1024) as ld:
            integrations = await ld.list_integrations(lean=lean)
    assert len(body) > 50 * 1024
    assert [i.environment_key for i in integrations] == [f"env-{i}" for i in range(300)]
    assert all(i.version == 2 and i.tags == ("managed-by-ldbulk",) for i in integrations)
    # Lean keeps ids and keys; whole keeps the status too.
    assert all((i.status is None) is lean and (not i.links) is lean for i in integrations)
    assert len(seen) == 1


async def test_a_listing_cut_short_is_retried_like_any_lost_answer() -> None:
    body = json.dumps(listed(50)).encode()
    tries = 0

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal tries
        tries += 1
        # The first answer promises the whole body and stops half-way; the second is whole.
        sent = body[: len(body) // 2] if tries == 1 else body
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        writer.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + sent)
        await writer.drain()
        writer.close()

    async with raw_serving(cut) as (url, _):
        async with Client(TOKEN, base_url=url, retry=FAST) as ld:
            integrations = await ld.list_integrations(lean=True)
            assert ld.stats.retries == 1
    assert len(integrations) == 50 and tries == 2


async def test_a_listing_that_is_not_json_is_a_response_format_error_not_retried() -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"items": [{"_id": "a",,]}', content_type="application/json")

    async with serving(broken) as (url, seen):
        async with Client(TOKEN, base_url=url, retry=FAST) as ld:
            with pytest.raises(ResponseFormatError, match="not a complete JSON body") as caught:
                await ld.list_integrations(lean=True)
    assert len(seen) == 1
    assert '"a"' not in str(caught.value)  # the body is never quoted


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of an answer."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close without a word."""
    writer.close()


async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Promise a body, then send half of it and close."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 50)
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("answer", [reset, hang_up, cut_short], ids=lambda f: f.__name__)
async def test_a_lost_answer_is_a_transport_error_naming_the_request_not_the_token(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> None:
    async with raw_serving(answer) as (url, _), AiohttpTransport() as transport:
        with pytest.raises(TransportError) as info:
            await transport.send(
                "GET", url + LIST, params=None, headers={"Authorization": TOKEN}, body=None
            )
    assert not isinstance(info.value, RequestTimeout)
    assert (info.value.method, info.value.path) == ("GET", LIST)
    assert str(info.value).startswith(f"GET {LIST}: 127.0.0.1:")
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


# -- timeouts and the connection limit -----------------------------------------------------


@asynccontextmanager
async def held() -> AsyncIterator[tuple[str, asyncio.Event, asyncio.Event]]:
    """A server that answers only once released: its URL, 'a request arrived', 'release'."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def wait(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response(LISTING)

    async with serving(wait) as (url, _):
        try:
            yield url, arrived, release
        finally:
            release.set()


async def test_the_total_timeout_applies_to_a_request() -> None:
    async with held() as (url, _, _):
        transport = AiohttpTransport(timeouts=Timeouts(connect=30.0, total=0.2))
        async with transport:
            with pytest.raises(RequestTimeout, match="timed out"):
                await transport.send("GET", url + LIST, params=None, headers={}, body=None)


async def test_the_connect_timeout_covers_waiting_for_a_connection_beyond_the_limit() -> None:
    async with held() as (url, arrived, release):
        transport = AiohttpTransport(timeouts=Timeouts(connect=0.2, total=30.0), connection_limit=1)
        async with transport:
            first = asyncio.ensure_future(
                transport.send("GET", url + LIST, params=None, headers={}, body=None)
            )
            await arrived.wait()
            # The only connection is busy: the second request waits for it, past its connect
            # timeout.
            with pytest.raises(RequestTimeout):
                await transport.send("GET", url + LIST, params=None, headers={}, body=None)
            release.set()
            assert (await first).status == 200


async def test_a_transport_serves_again_after_it_was_closed() -> None:
    async with serving(json_listing) as (url, seen):
        client = Client(TOKEN, base_url=url, retry=FAST)
        for _ in range(2):
            async with client:
                assert await client.list_integrations() == []
    assert len(seen) == 2


def dripping(every_s: float, *, piece: bytes = b" ") -> Handler:
    """A listing whose body comes ``piece`` by ``piece``, one every ``every_s``, never ending:
    each wait for more is shorter than the read timeout."""

    async def drip(request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(headers={"Content-Type": "application/json"})
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        await stream.write(b'{"items": [')
        try:
            while True:
                await asyncio.sleep(every_s)
                await stream.write(piece)
        except ConnectionResetError:  # the client gave up, as it should
            return stream

    return drip


# Each read comes well within ``total``; the body's pace is what must end it.
DRIP_TIMEOUTS = Timeouts(connect=2.0, total=0.5, listing=30.0, listing_min_rate=1024.0)


async def test_a_listing_that_drips_ends_as_a_timeout_naming_what_it_received() -> None:
    async with asyncio.timeout(20), serving(dripping(0.1)) as (url, _):
        retry = RetryPolicy(max_attempts=1)
        async with Client(TOKEN, base_url=url, retry=retry, timeouts=DRIP_TIMEOUTS) as client:
            with pytest.raises(RequestTimeout, match=r"answer too slow: \d+ bytes in"):
                await client.list_integrations()


async def test_a_listing_that_streams_without_end_ends_at_the_listing_deadline() -> None:
    # Fast enough to earn more time with every piece: only the cap on the whole ends it.
    timeouts = Timeouts(connect=2.0, total=0.5, listing=1.0, listing_min_rate=1.0)
    item = {"_id": "i", "integrationKey": "redis", "projectKey": "p", "environmentKey": "e"}
    piece = json.dumps(item).encode() + b","
    async with asyncio.timeout(20), serving(dripping(0.01, piece=piece)) as (url, _):
        retry = RetryPolicy(max_attempts=1)
        async with Client(TOKEN, base_url=url, retry=retry, timeouts=timeouts) as client:
            with pytest.raises(RequestTimeout, match="end within 1 s"):
                await client.list_integrations()


def test_a_streamed_answer_earns_time_with_what_it_brings_up_to_the_cap() -> None:
    timeouts = Timeouts(total=20.0, listing=600.0, listing_min_rate=1000.0)
    assert timeouts.streamed_deadline(100.0, 0) == 120.0
    assert timeouts.streamed_deadline(100.0, 10_000) == 130.0
    assert timeouts.streamed_deadline(100.0, 10**9) == 700.0


async def test_after_a_timeout_later_requests_open_new_connections_not_the_idle_dead_ones() -> None:
    # Two connections answer one request each and stay open; then the link goes silent on
    # them (a middlebox forgot them): nothing more is answered on either. New ones answer.
    silent = asyncio.Event()
    body = json.dumps(LISTING).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        after_silence = silent.is_set()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                if silent.is_set() and not after_silence:
                    await asyncio.Event().wait()  # this connection is dead for good
                writer.write(answer)
                await writer.drain()
                await reader.readuntil(b"\r\n\r\n")

    timeouts = Timeouts(connect=2.0, total=0.3)
    async with asyncio.timeout(20), raw_serving(keep_alive) as (url, accepted):
        async with AiohttpTransport(timeouts=timeouts) as transport:

            async def get() -> int:
                response = await transport.send("GET", url + LIST, params=None, headers={},
                                                body=None)  # fmt: skip
                return response.status

            assert await asyncio.gather(get(), get()) == [200, 200]
            assert len(accepted) == 2
            silent.set()
            with pytest.raises(RequestTimeout):
                await get()
            assert await get() == 200
            assert len(accepted) == 3


async def test_a_stop_abandons_a_listing_whose_body_is_still_dripping() -> None:
    # Each piece comes within the read timeout, and the deadline is far: only the stop ends it.
    timeouts = Timeouts(connect=2.0, total=5.0, listing=600.0, listing_min_rate=1.0)
    scope = RequestScope(grace_s=0.2)
    async with asyncio.timeout(20), serving(dripping(0.1)) as (url, _):
        async with Client(TOKEN, base_url=url, retry=FAST, timeouts=timeouts) as client:
            asyncio.get_running_loop().call_later(0.5, scope.stop.set)
            with pytest.raises(TransportError, match="abandoned at the stop"):
                await client.list_integrations(scope=scope)


async def test_a_page_of_projects_that_drips_ends_within_the_request_timeout() -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(headers={"Content-Type": "application/json"})
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await stream.write(b'{"items": [')
            while True:
                await asyncio.sleep(0.1)
                await stream.write(b" ")
        return stream

    timeouts = Timeouts(connect=2.0, total=0.5)
    async with asyncio.timeout(20), serving(drip) as (url, _):
        retry = RetryPolicy(max_attempts=1)
        async with Client(TOKEN, base_url=url, retry=retry, timeouts=timeouts) as client:
            with pytest.raises(RequestTimeout):
                [project async for project in client.projects()]
