"""``check`` against a peer that is not Redis (an SSH server, a web server, anything): it says
so in its own words and never prints what the peer sent, which could be anything (a banner
naming its software, a page quoting a secret), into output people read and CI keeps."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ldbulk.api.models import DynamoDBConfig, RedisConfig
from ldbulk.check import StepResult, check_stores

SSH_BANNER = b"SSH-2.0-OpenSSH_8.9p1 peer-said-this-7f3a\r\n"
HTTP_ANSWER = b"HTTP/1.1 400 Bad Request\r\nServer: peer-said-this-7f3a\r\n\r\n"
BINARY = b"\x15\x03\x01\x00\x02\x02\x50 peer-said-this-7f3a\r\n"
# RESP framing, but a bulk string that is not UTF-8 where Redis answers in text.
BAD_TEXT = b"+peer-said-this-7f3a \xff\xfe\r\n"
MARK = "peer-said-this-7f3a"


async def serve(payload: bytes, *, first: bool) -> tuple[asyncio.Server, int]:
    """A peer that sends ``payload``, at once (``first``: an SSH server speaks first) or once
    it was sent something, then keeps the connection open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not first:
            await reader.read(1)
        writer.write(payload)
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


@pytest.mark.parametrize(
    ("payload", "first"),
    [(SSH_BANNER, True), (HTTP_ANSWER, False), (BINARY, False), (BAD_TEXT, False)],
    ids=["ssh-banner", "http", "binary", "not-utf8"],
)
async def test_a_peer_that_is_not_redis_is_named_so_and_nothing_it_sent_is_shown(
    payload: bytes, first: bool
) -> None:
    server, port = await serve(payload, first=first)
    async with server:
        config = RedisConfig(host="127.0.0.1", port=port, password="pw-1e5d")
        (result,) = await check_stores([config], timeout_s=3)
    assert not result.ok
    failed = [step for step in result.steps if step.result is StepResult.FAILED]
    assert len(failed) == 1
    assert failed[0].message.startswith("not a Redis server: it answered with ")
    assert "bytes that are not RESP" in failed[0].message
    shown = json.dumps(result.to_json()) + repr(result) + str(result.reason)
    assert MARK not in shown and "SSH-2.0" not in shown and "HTTP/1.1" not in shown


def test_the_check_command_prints_no_byte_of_an_ssh_banner(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def banner_server() -> None:
        while not stop.is_set():
            try:
                peer, _ = listener.accept()
            except TimeoutError:
                continue
            with peer:
                peer.sendall(SSH_BANNER)
                peer.settimeout(5)
                with contextlib.suppress(OSError):
                    while peer.recv(4096):
                        pass

    thread = threading.Thread(target=banner_server, daemon=True)
    thread.start()
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nstores:\n"
        f"  r: {{integration: redis, config: {{host: 127.0.0.1, port: {port}, password: ''}}}}\n"
        "targets:\n  - {project: p, environments: [e], store: r}\n"
    )
    try:
        for output in ("text", "json"):
            result = subprocess.run(
                [sys.executable, "-m", "ldbulk", "check", str(manifest), "-o", output],
                capture_output=True, text=True, timeout=60, check=False,
                env={k: v for k, v in os.environ.items() if not k.startswith("LD_")},
            )
            assert result.returncode == 1, result.stdout + result.stderr
            assert "Traceback" not in result.stderr
            assert "not a Redis server" in result.stdout
            assert MARK not in result.stdout + result.stderr
            assert "SSH-2.0" not in result.stdout + result.stderr
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


class _NotAws(http.server.BaseHTTPRequestHandler):
    """An endpoint that is not AWS: DynamoDB's calls get an HTML 400, the others a 200 whose
    body is no XML (a proxy's login page, say); both quote something."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        dynamodb = "DynamoDB" in self.headers.get("X-Amz-Target", "")
        body = f"<html>{MARK}</html>".encode()
        self.send_response(400 if dynamodb else 200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_an_endpoint_that_is_not_aws_is_named_so_and_nothing_it_sent_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_CONFIG_FILE", "/nonexistent"),
                        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
                        ("AWS_EC2_METADATA_DISABLED", "true")]:
        monkeypatch.setenv(name, value)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = DynamoDBConfig(
            table_name="t", region="us-east-1",
            role_arn="arn:aws:iam::123456789012:role/ld", external_id="ext-3c9d",
        )
        (result,) = await check_stores(
            [config], timeout_s=5, aws_endpoint_url=f"http://127.0.0.1:{server.server_port}"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    messages = {step.name: step.message for step in result.steps}
    assert messages["describe_table"] == (
        "not an AWS answer: HTTP 400 without an AWS error code"
    ), messages
    shown = json.dumps(result.to_json()) + repr(result) + str(result.reason)
    assert MARK not in shown and "<html>" not in shown
