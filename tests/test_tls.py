"""TLS: verification is always on; a CA bundle replaces the trust store, never the checks."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from ldbulk.errors import ConfigError, TransportError
from ldbulk.http.client import Client
from ldbulk.http.transport import AiohttpTransport

LISTING = {"items": [], "_links": {"self": {"href": "/api/v2/integration-capabilities"}}}


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def https_url(authority: trustme.CA) -> AsyncIterator[str]:
    """A tiny HTTPS server on loopback with a certificate from a private CA."""

    async def listing(request: web.Request) -> web.Response:
        return web.json_response(LISTING)

    app = web.Application()
    app.router.add_get("/api/v2/integration-capabilities/big-segment-store", listing)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_certificate_from_an_unknown_authority_is_refused(https_url: str) -> None:
    async with Client("api-x", base_url=https_url) as client:
        with pytest.raises(TransportError) as info:
            await client.list_integrations()
    # The message says why, where, and what to do about a TLS-inspecting proxy.
    host_port = https_url.removeprefix("https://")
    assert f"{host_port}: TLS: certificate verify failed" in str(info.value)
    assert "--ca-bundle" in str(info.value)


async def test_a_ca_bundle_lets_a_private_authority_be_verified(
    https_url: str, authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    async with Client("api-x", base_url=https_url, ca_bundle=str(bundle)) as client:
        assert await client.list_integrations() == []


async def test_the_bundle_does_not_switch_off_hostname_checks(
    authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    context = AiohttpTransport(ca_bundle=str(bundle)).ssl_context
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_an_unusable_ca_bundle_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_text(content)
    with pytest.raises(ConfigError, match="ca_bundle"):
        Client("api-x", base_url="https://localhost:1", ca_bundle=str(bundle))
