"""The aiohttp adapter's mapping, with aiohttp's own answers and exceptions mocked at the
session (aioresponses): what it sends, how it hands back status, headers and body, and which of
ldbulk's errors each aiohttp failure becomes. Real sockets are in test_transport_aiohttp."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL as Url

from ldbulk import RequestTimeout, ResponseFormatError, TransportError
from ldbulk.http.transport import AiohttpTransport

URL = "https://app.launchdarkly.com/api/v2/integration-capabilities/big-segment-store/p/e/redis"
HEADERS = {"Authorization": "api-test", "LD-API-Version": "beta"}


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    async with AiohttpTransport(max_body_bytes=64) as opened:
        yield opened


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as mock:
        yield mock


async def test_the_request_goes_as_given_and_the_answer_comes_back_whole(
    transport: AiohttpTransport, mocked: aioresponses
) -> None:
    mocked.post(URL, status=201, payload={"_id": "i-1"},
                headers={"X-Ratelimit-Route-Remaining": "9"})
    body = json.dumps({"config": {"host": "h"}}).encode()
    answer = await transport.send("POST", URL, params=None, headers=HEADERS, body=body)
    assert answer.status == 201
    assert answer.headers["x-ratelimit-route-remaining"] == "9"  # case-insensitive
    assert json.loads(answer.body) == {"_id": "i-1"}
    [call] = mocked.requests[("POST", Url(URL))]
    assert call.kwargs["data"] == body
    assert call.kwargs["headers"] == HEADERS
    assert call.kwargs["allow_redirects"] is False


async def test_an_error_status_is_an_answer_not_an_exception(
    transport: AiohttpTransport, mocked: aioresponses
) -> None:
    mocked.get(URL, status=503, body=b"busy")
    answer = await transport.send("GET", URL, params=None, headers=HEADERS, body=None)
    assert (answer.status, answer.body) == (503, b"busy")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ClientConnectionError("connection reset"), TransportError),
        (aiohttp.ServerDisconnectedError(), TransportError),
        (ConnectionResetError(104, "Connection reset by peer"), TransportError),
        (TimeoutError(), RequestTimeout),
    ],
)
async def test_aiohttp_failures_become_ldbulk_transport_errors_naming_the_request(
    transport: AiohttpTransport, mocked: aioresponses, raised: Exception, expected: type
) -> None:
    mocked.get(URL, exception=raised)
    with pytest.raises(expected) as caught:
        await transport.send("GET", URL, params=None, headers=HEADERS, body=None)
    assert isinstance(caught.value, TransportError)
    assert re.match(r"GET /api/v2/integration-capabilities/big-segment-store/p/e/redis: ",
                    str(caught.value))
    assert "api-test" not in str(caught.value)


async def test_a_body_over_the_cap_is_refused_not_read_whole(
    transport: AiohttpTransport, mocked: aioresponses
) -> None:
    mocked.get(URL, status=200, body=b"x" * 65)
    with pytest.raises(ResponseFormatError, match="larger than 64 bytes"):
        await transport.send("GET", URL, params=None, headers=HEADERS, body=None)
