"""Hostile responses: whatever comes back, the result is a value or an ldbulk error, never a hang.

Property-based tests (hypothesis) feed random statuses, headers and bodies to the sans-I/O
decoders and the rate-limit parser; then the real client meets such responses from small
servers on a loopback port (huge bodies, bodies cut off mid-way, absurd rate-limit headers), and
the engine is run against random answers to check that every target still ends with an outcome.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import RATE_LIMIT_HEADERS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from ldbulk.api import sansio
from ldbulk.api.limits import MAX_WAIT_S, RateLimitState, parse_rate_limit
from ldbulk.api.models import Integration, IntegrationCollection, RedisConfig, Target
from ldbulk.engine.provision import Provisioner
from ldbulk.engine.report import Outcome
from ldbulk.errors import (
    HTTPStatusError,
    LdbulkError,
    ResponseFormatError,
    TransportError,
)
from ldbulk.http.client import Client, Timeouts
from ldbulk.http.pacer import Pacer
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport

SAMPLES = Path(__file__).parent / "samples"
TOKEN = "api-hostile-test-token"
QUICK = RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.005)
REDIS = RedisConfig(host="redis.internal", password="redis-secret-value")
PATH = sansio.integration_path("proj", "env", "redis")
EPOCH = 1_800_000_000.0

# -- strategies ---------------------------------------------------------------------------

RATE_HEADERS = [*RATE_LIMIT_HEADERS, "Retry-After", "Content-Type"]

# What a header value can be: numbers of any size and sign, floats, dates, words, nothing.
# Only what HTTP can carry in a header (latin-1, no line breaks), so servers can send it too.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
header_values = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.integers(10**300, 10**400).map(str),  # more digits than a float can hold
    st.integers(0, 4_000_000_000_000).map(str),  # plausible epoch ms, past and future
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            " 7 ",
            "1e400",
            "-1e400",
            "nan",
            "inf",
            "0x10",
            "1_000",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "text/html; charset=utf-8",
            "application/json",
            "application/json; charset=utf-16",
        ]
    ),
    header_text,
)
headers_strategy = st.dictionaries(st.sampled_from(RATE_HEADERS), header_values, max_size=6).map(
    CIMultiDict
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["items", "_id", "_links", "code", "message", "id", "config", "x"])
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


VALID_BODIES = [
    _sample("integration_collection.json"),
    _sample("integration_created_redis.json"),
    _sample("integration_single.json"),
    _sample("error_409.json"),
    _sample("error_429.json"),
]
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(VALID_BODIES),
    # Truncated JSON: a valid body cut anywhere.
    st.tuples(st.sampled_from(VALID_BODIES), st.integers(0, 2000)).map(lambda p: p[0][: p[1]]),
    st.just(_sample("error_502.html")),
    st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.text(max_size=50).map(lambda text: text.encode("utf-16")),
    st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),  # deep nesting
    st.integers(1, 200_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.just(b"1" * 5000),  # an integer with more digits than Python converts by default
)
statuses = st.integers(100, 599)


def response(status: int, headers: Mapping[str, str], body: bytes) -> sansio.RawResponse:
    return sansio.RawResponse(status=status, headers=headers, body=body)


# -- the sans-I/O decoders ------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=statuses,
    headers=headers_strategy,
    body=bodies,
    cls=st.sampled_from([Integration, IntegrationCollection]),
)
def test_decode_returns_a_value_or_raises_an_ldbulk_error(
    status: int, headers: CIMultiDict[str], body: bytes, cls: type[Any]
) -> None:
    try:
        value = sansio.decode("GET", PATH, response(status, headers, body), cls)
    except LdbulkError as exc:
        if status >= 400:
            assert isinstance(exc, HTTPStatusError) and exc.status == status
        else:
            assert isinstance(exc, ResponseFormatError)
    else:
        assert status < 400 and isinstance(value, cls)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.integers(400, 599), headers=headers_strategy, body=bodies)
def test_an_error_response_always_becomes_a_status_error_with_a_short_message(
    status: int, headers: CIMultiDict[str], body: bytes
) -> None:
    error = sansio.error_from_response("POST", PATH, response(status, headers, body))
    assert isinstance(error, HTTPStatusError)
    assert error.status == status
    assert len(error.message) <= 500
    assert (error.rate_limit is not None) == (status == 429)
    str(error)  # the message renders


@given(page=st.sampled_from([_sample("error_502.html")]), status=st.sampled_from([502, 503, 504]))
def test_an_html_error_page_is_summarised_not_quoted(page: bytes, status: int) -> None:
    headers = CIMultiDict({"Content-Type": "text/html"})
    error = sansio.error_from_response("GET", PATH, response(status, headers, page))
    assert "<" not in str(error)
    assert "text/html" in error.message and str(len(page)) in error.message


def _check_state(state: RateLimitState, now: float) -> None:
    for value in (
        state.global_limit,
        state.global_remaining,
        state.route_limit,
        state.route_remaining,
        state.reset_ms,
        state.token_limit,
        state.token_remaining,
        state.token_reset_ms,
    ):
        assert value is None or value >= 0
    if state.retry_after_s is not None:
        assert 0 <= state.retry_after_s <= MAX_WAIT_S
    resume = state.resume_at(now)
    assert math.isfinite(resume)
    assert resume <= now + MAX_WAIT_S


@settings(max_examples=500)
@given(headers=headers_strategy)
def test_rate_limit_headers_parse_to_bounded_waits_whatever_their_values(
    headers: CIMultiDict[str],
) -> None:
    _check_state(parse_rate_limit(headers, now=EPOCH), EPOCH)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(headers=headers_strategy, status=st.sampled_from([200, 201, 429, 503]))
def test_the_pacer_never_closes_its_gate_for_longer_than_the_maximum_wait(
    headers: CIMultiDict[str], status: int
) -> None:
    async def observe() -> float | None:
        pacer = Pacer(wall_clock=lambda: EPOCH, jitter_s=0.25)
        pacer.observe(sansio.ROUTE_CREATE, status, parse_rate_limit(headers, now=EPOCH))
        return pacer.paused_until_epoch

    paused_until = asyncio.run(observe())
    if status != 429:
        assert paused_until is None
    elif paused_until is not None:  # a reset already past closes nothing
        assert paused_until <= EPOCH + MAX_WAIT_S + 0.25


# -- the real client against hostile servers -----------------------------------------------

Handler = Callable[[web.BaseRequest], Any]


def url_of(server: asyncio.AbstractServer) -> str:
    """The base URL of a server listening on a loopback port."""
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """An aiohttp server on a loopback port answering every request with ``handler``."""
    server = web.Server(handler)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, "127.0.0.1", 0)
    try:
        yield url_of(listener)
    finally:
        listener.close()
        await server.shutdown(0.1)


@asynccontextmanager
async def raw_serving(reply: bytes) -> AsyncIterator[str]:
    """A server that answers any request with exactly ``reply`` and closes the connection."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield url_of(server)
    finally:
        server.close()


def client(url: str, **options: Any) -> Client:
    options.setdefault("retry", QUICK)
    options.setdefault("timeouts", Timeouts(connect=2.0, total=5.0))
    return Client(TOKEN, base_url=url, **options)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_beyond_max_body_bytes_is_a_response_format_error(chunked: bool) -> None:
    async def huge(request: web.BaseRequest) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=b"[" + b"0," * 50_000 + b"0]", content_type="application/json")
        stream = web.StreamResponse()
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        for _ in range(100):
            await stream.write(b" " * 1024)
        await stream.write_eof()
        return stream

    # A read by id: the account's listing alone is streamed, without a cap.
    async with asyncio.timeout(10), serving(huge) as url:
        async with client(url, max_body_bytes=4096) as api:
            with pytest.raises(ResponseFormatError, match="larger than 4096 bytes"):
                await api.get_integration("p", "e", "redis", "0123")


@pytest.mark.parametrize(
    "reply",
    [
        # Content-Length promises more than is sent before the connection closes.
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        b'{"items": [',
        # A chunked body whose last chunk never comes.
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'b\r\n{"items": [\r\n',
        # A chunk header that is not hexadecimal.
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        # Not HTTP at all.
        b"SSH-2.0-OpenSSH_9.6\r\n",
    ],
    ids=["short-content-length", "unterminated-chunks", "bad-chunk-size", "not-http"],
)
async def test_a_body_that_stops_midway_is_a_transport_error(reply: bytes) -> None:
    async with asyncio.timeout(10), raw_serving(reply) as url:
        async with client(url) as api:
            with pytest.raises(TransportError):
                await api.list_integrations()


ABSURD_WAITS = [
    {"Retry-After": "99999999"},
    {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    {"X-Ratelimit-Reset": "99999999999999999"},
    {"X-Ratelimit-Reset": "9" * 400},
    {"X-Ratelimit-Reset": "-5", "Retry-After": "-5"},
    {"X-Ratelimit-Auth-Token-Reset": "4102444800000", "X-Ratelimit-Auth-Token-Remaining": "0"},
    {"X-Ratelimit-Route-Remaining": "0", "X-Ratelimit-Reset": "99999999999999999"},
]


@pytest.mark.looptime
@pytest.mark.parametrize(
    "headers", ABSURD_WAITS, ids=lambda h: ",".join(f"{k}={v[:12]}" for k, v in h.items())
)
@pytest.mark.parametrize("status", [429, 201])
async def test_absurd_rate_limit_headers_hold_the_client_back_no_longer_than_max_wait(
    headers: dict[str, str], status: int
) -> None:
    """A 429 (or a spent budget) with a wild reset: the client waits at most MAX_WAIT_S."""
    created = json.loads(_sample("integration_created_redis.json"))
    loop = asyncio.get_running_loop()
    mock = MemoryTransport()
    mock.add("POST", PATH, status, headers=headers, json=created)
    mock.add("POST", PATH, 201, json=created, repeat=True)
    async with Client(TOKEN, retry=QUICK, transport=mock) as api:
        start = loop.time()
        # The absurd answer is learned (and a 429 resent); then one more request.
        first = await api.create_integration("proj", "env", REDIS)
        second = await api.create_integration("proj", "env", REDIS)
        waited = loop.time() - start
        throttled = api.stats.throttled
    assert isinstance(first, Integration) and isinstance(second, Integration)
    assert throttled == (1 if status == 429 else 0)
    assert waited <= MAX_WAIT_S + 1.0


ZERO_LIMITS = [
    {"X-Ratelimit-Global-Limit": "0", "X-Ratelimit-Global-Remaining": "0"},
    {"X-Ratelimit-Route-Limit": "0", "X-Ratelimit-Route-Remaining": "0"},
    {"X-Ratelimit-Auth-Token-Limit": "0", "X-Ratelimit-Auth-Token-Remaining": "0"},
    {"X-Ratelimit-Route-Limit": "0", "X-Ratelimit-Route-Remaining": "5"},
]


@pytest.mark.looptime
@pytest.mark.parametrize("headers", ZERO_LIMITS, ids=lambda h: ",".join(h)[:40])
async def test_a_limit_of_zero_does_not_park_requests_forever(headers: dict[str, str]) -> None:
    """No request could ever meet a limit of 0: the pacer waits out the window once, at most."""
    pacer = Pacer(wall_clock=lambda: EPOCH)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(10 * MAX_WAIT_S):  # loop time: a hang fails, fast
        for _ in range(10):
            pacer.observe(sansio.ROUTE_CREATE, 200, parse_rate_limit(headers, now=EPOCH))
            await pacer.acquire(sansio.ROUTE_CREATE)
    assert loop.time() - start <= MAX_WAIT_S * 10


# -- the engine against random answers -----------------------------------------------------

ENGINE_TARGETS = [
    Target(project="proj", environment=f"env-{i}", config=REDIS, on=True) for i in range(3)
]
EMPTY_LIST = json.dumps({"_links": {}, "items": []}).encode()
# Statuses a server may send with a body; 429 is left out here because its wait is the
# pacer's (bounded by MAX_WAIT_S, tested above with a fake clock), and real seconds would pass.
answer_statuses = st.integers(200, 599).filter(lambda s: s not in (204, 205, 304, 429))
# Budgets (Limit/Remaining) are left out too: honouring them costs real seconds per example
# (one 10 s window); their bounds are tested above with a fake clock.
answer_headers = st.dictionaries(
    st.sampled_from(["Content-Type", "X-Ratelimit-Reset", "X-Ratelimit-Auth-Token-Reset"]),
    header_values,
    max_size=3,
)


async def _engine_against(
    status: int, headers: dict[str, str], body: bytes, hostile_listing: bool
) -> list[Outcome]:
    listings = 0

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal listings
        await request.read()
        if request.method == "GET":
            listings += 1
            if listings == 1 or not hostile_listing:
                return web.Response(body=EMPTY_LIST, content_type="application/json")
        return web.Response(status=status, headers=headers, body=body)

    async with asyncio.timeout(10), serving(answer) as url:
        async with client(url, timeouts=Timeouts(connect=2.0, total=2.0)) as api:
            report = await Provisioner(api, concurrency=2).run(ENGINE_TARGETS)
    assert [r.key for r in report.results] == [t.key for t in ENGINE_TARGETS]
    return [r.outcome for r in report.results]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    status=answer_statuses,
    headers=answer_headers,
    body=bodies,
    hostile_listing=st.booleans(),
)
# A listing nested without end: read as it streams in, it once took tens of GB.
@example(
    status=502, headers={}, body=b'{"a":' * 200_000 + b"1" + b"}" * 200_000, hostile_listing=True
)
def test_no_answer_to_a_create_makes_the_engine_hang_or_crash(
    status: int, headers: dict[str, str], body: bytes, hostile_listing: bool
) -> None:
    outcomes = asyncio.run(_engine_against(status, headers, body, hostile_listing))
    assert len(outcomes) == len(ENGINE_TARGETS)
    if status >= 500 or status == 409:
        # The create's fate is unknown and the list never shows it: never reported created.
        assert Outcome.CREATED not in outcomes
