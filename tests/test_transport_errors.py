"""Transport failures on loopback: the message names the host, the port and the cause in words."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ldbulk import Client, RetryPolicy, TransportError

TOKEN = "api-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
ONCE = RetryPolicy(max_attempts=1)


async def failure(base_url: str) -> str:
    async with Client(TOKEN, base_url=base_url, retry=ONCE) as client:
        with pytest.raises(TransportError) as info:
            await client.list_integrations()
    message = str(info.value)
    assert TOKEN not in message and "Authorization" not in message
    return message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def plain_http_port() -> AsyncIterator[int]:
    """An HTTP server without TLS on loopback."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_a_closed_port_is_connection_refused_naming_host_and_port() -> None:
    port = closed_port()
    message = await failure(f"http://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}: connection refused" in message
    assert message.startswith("GET /api/v2/integration-capabilities/big-segment-store: ")


async def test_an_unresolvable_host_is_name_not_found() -> None:
    message = await failure("https://nonexistent.invalid")
    assert "nonexistent.invalid:443: name not found" in message


async def test_https_to_a_plain_http_port_is_a_tls_error_with_a_hint(
    plain_http_port: int,
) -> None:
    message = await failure(f"https://127.0.0.1:{plain_http_port}")
    assert f"127.0.0.1:{plain_http_port}: TLS: wrong version number" in message
    assert "plain HTTP" in message
