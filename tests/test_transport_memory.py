"""The in-memory transport the client's tests run on: answers in order, records every request."""

from __future__ import annotations

import re

import pytest

from ldbulk import Client, RequestTimeout, TransportError
from ldbulk.api import sansio
from ldbulk.http.transport import MemoryTransport, SentRequest, canned

URL = "https://app.launchdarkly.com/api/v2/x"


async def get(transport: MemoryTransport, url: str = URL) -> sansio.RawResponse:
    return await transport.send("GET", url, params=None, headers={}, body=None)


async def test_queued_answers_are_given_in_order_and_a_repeated_one_stays() -> None:
    transport = MemoryTransport()
    transport.add("GET", "/api/v2/x", 503)
    transport.add("GET", "/api/v2/x", 200, json={"n": 1}, repeat=True)
    statuses = [(await get(transport)).status for _ in range(3)]
    assert statuses == [503, 200, 200]


async def test_a_json_answer_has_its_content_type_and_headers_are_case_insensitive() -> None:
    transport = MemoryTransport()
    transport.add("GET", "/api/v2/x", json={"a": 1}, headers={"X-Ratelimit-Reset": "5"})
    response = await get(transport)
    assert response.body == b'{"a": 1}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-ratelimit-reset"] == "5"


async def test_a_pattern_matches_the_whole_path_and_query() -> None:
    transport = MemoryTransport()
    transport.add("POST", re.compile(r"/api/v2/[^/]+"), 201, repeat=True)
    response = await transport.send("POST", URL, params={"a": "b"}, headers={}, body=b"{}")
    assert response.status == 201
    with pytest.raises(TransportError):
        await transport.send("POST", URL + "/deeper", params=None, headers={}, body=b"{}")


async def test_every_request_is_recorded_with_its_query_headers_and_body() -> None:
    transport = MemoryTransport()
    transport.add("PATCH", "/api/v2/x?limit=1", 200)
    await transport.send(
        "PATCH", URL, params={"limit": "1"}, headers={"Authorization": "t"}, body=b"[1]"
    )
    (request,) = transport.sent("PATCH", "/api/v2/x?limit=1")
    assert request.url == URL + "?limit=1"
    assert request.headers == {"Authorization": "t"}
    assert request.json() == [1]
    assert transport.requests == [request]


@pytest.mark.parametrize("error", [TransportError, RequestTimeout])
async def test_a_request_can_fail_with_a_transport_error(error: type[TransportError]) -> None:
    transport = MemoryTransport()
    transport.add("GET", "/api/v2/x", error=error)
    with pytest.raises(error) as info:
        await get(transport)
    assert (info.value.method, info.value.path) == ("GET", "/api/v2/x")


async def test_a_request_nothing_answers_fails_like_a_refused_connection() -> None:
    transport = MemoryTransport()
    with pytest.raises(TransportError, match="no answer queued"):
        await get(transport)
    assert len(transport.requests) == 1


async def test_a_handler_answers_every_request_sync_or_async() -> None:
    def sync(request: SentRequest) -> sansio.RawResponse:
        return canned(200, json={"path": request.path})

    async def later(request: SentRequest) -> sansio.RawResponse:
        return canned(204)

    assert (await get(MemoryTransport(sync))).body == b'{"path": "/api/v2/x"}'
    assert (await get(MemoryTransport(later))).status == 204


async def test_a_client_closes_the_transport_it_was_given() -> None:
    closed: list[bool] = []

    class Recording(MemoryTransport):
        async def aclose(self) -> None:
            closed.append(True)

    async with Client("api-x", transport=Recording()):
        pass
    assert closed == [True]
