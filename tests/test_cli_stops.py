"""SIGTERM ends ``ldbulk apply`` promptly whatever the link does, and the deadline flags bound
each answer: the real command line in its own process, against loopback servers that accept
and never answer, or answer without end."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_cli import stopped

TOKEN = "api-0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
LIST = "/api/v2/integration-capabilities/big-segment-store"
# The goal is 2 s from the signal to the exit; a loaded 2-core machine gets some slack.
EXIT_BOUND_S = 5.0


def _manifest(tmp_path: Path, environments: int) -> Path:
    lines = "".join(
        f"  - {{project: web, environments: [e{i}], store: r}}\n" for i in range(environments)
    )
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n" + lines
    )
    return manifest


def _apply(url: str, *args: str) -> subprocess.Popen[str]:
    env = os.environ | {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URI": url}
    return subprocess.Popen(
        [sys.executable, "-m", "ldbulk", "apply", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sigterm_ends_it_within_the_bound(apply: subprocess.Popen[str]) -> None:
    signalled = time.monotonic()
    stderr = stopped(apply)
    assert apply.returncode == 143, stderr
    assert time.monotonic() - signalled < EXIT_BOUND_S, stderr


def _outcomes(report: Path) -> list[str]:
    return sorted(row["outcome"] for row in json.loads(report.read_text())["results"])


def test_sigterm_while_the_first_listing_gets_no_answer_exits_within_the_bound(
    tmp_path: Path,
) -> None:
    """The link accepts the connection and never answers: SIGTERM still ends the run, with
    every target skipped, well within the 2-s goal (asserted with slack for a loaded box)."""
    report = tmp_path / "r.json"
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(30)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        apply = _apply(url, str(_manifest(tmp_path, 3)), "--report", str(report))
        connection, _ = silent.accept()  # the listing is on its way: nothing will answer it
        with connection:
            time.sleep(0.5)
            _sigterm_ends_it_within_the_bound(apply)
    assert _outcomes(report) == ["skipped"] * 3


class _Account(BaseHTTPRequestHandler):
    """Lists the integrations; a create is applied and then never answered while the link is
    silent (``server.silent`` set), or answered 201."""

    server: _Server

    def do_GET(self) -> None:
        items = [
            {"_id": f"id-{e}", "integrationKey": "redis", "projectKey": "web",
             "environmentKey": e, "on": False, "tags": [], "name": "", "version": 1,
             "_links": {}}
            for e in sorted(self.server.created)
        ]  # fmt: skip
        self.server.gets += 1
        self._answer(200, {"items": items, "_links": {}})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        environment = self.path.split("/")[-2]
        self.server.created.add(environment)
        if self.server.silent.is_set():
            self.server.posted.set()
            self.server.healed.wait()  # applied; the answer never leaves while silent
            return
        self._answer(201, {"_id": f"id-{environment}", "integrationKey": "redis",
                           "projectKey": "web", "environmentKey": environment, "on": False,
                           "tags": [], "name": "", "version": 1, "_links": {}})  # fmt: skip

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Account)
        self.created: set[str] = set()
        self.gets = 0
        self.silent = threading.Event()
        self.posted = threading.Event()
        self.healed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def _account() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.healed.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("targets", [1, 3])
def test_sigterm_while_a_create_gets_no_answer_exits_within_the_bound_and_resume_settles_it(
    tmp_path: Path, targets: int
) -> None:
    """A create applied and never answered: SIGTERM ends the run within the bound (goal: 2 s),
    the create reported failed as unknown, the others skipped; the resumed run settles it with
    its one listing and creates nothing twice."""
    report, journal = tmp_path / "r.json", tmp_path / "run.journal"
    manifest = str(_manifest(tmp_path, targets))
    with _account() as account:
        account.silent.set()
        apply = _apply(account.url, manifest, "--report", str(report), "--journal", str(journal))
        assert account.posted.wait(30)
        time.sleep(0.5)
        _sigterm_ends_it_within_the_bound(apply)
        assert _outcomes(report) == ["failed"] + ["skipped"] * (targets - 1)
        rows = json.loads(report.read_text())["results"]
        (failed,) = [row for row in rows if row["outcome"] == "failed"]
        assert "unknown" in failed["error"]["message"]

        account.silent.clear()
        account.healed.set()
        gets_before = account.gets
        resumed = _apply(account.url, manifest, "--resume", str(journal), "--create-only",
                         "--report", str(report))  # fmt: skip
        _, stderr = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, stderr
        rows = json.loads(report.read_text())["results"]
        outcomes = {row["environment"]: row["outcome"] for row in rows}
        assert outcomes[failed["environment"]] == "exists"
        assert sorted(outcomes.values()).count("created") == targets - 1
        assert account.gets - gets_before == 1
        assert len(account.created) == targets


def test_request_timeout_flag_bounds_each_answer_from_a_silent_link(tmp_path: Path) -> None:
    """``--request-timeout``: a silent link fails each try after that long, not after the
    default 20 s; the run ends with the API's failure (exit 1), its message naming it."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = os.environ | {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URI": url}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "ldbulk", "plan", str(_manifest(tmp_path, 1)),
             "--request-timeout", "0.3", "--listing-deadline", "5"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "timed out" in result.stderr
    # Five tries of 0.3 s and their backoffs; the default would take five times 20 s.
    assert took < 60, result.stderr


class _Streaming(ThreadingHTTPServer):
    """Answers every listing at once with a body that never ends: ``piece`` after ``piece``
    of JSON whitespace, one every ``every_s``; ``started`` is set once one is under way."""

    daemon_threads = True

    def __init__(self, piece: bytes, every_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _Stream)
        self.piece, self.every_s = piece, every_s
        self.started = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Stream(BaseHTTPRequestHandler):
    server: _Streaming

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()  # no length: the body runs until the connection closes
        with contextlib.suppress(ConnectionError):
            self.wfile.write(b'{"items": [')
            self.wfile.flush()
            self.server.started.set()
            while True:
                time.sleep(self.server.every_s)
                self.wfile.write(self.server.piece)
                self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def _streaming(piece: bytes, every_s: float) -> Iterator[_Streaming]:
    server = _Streaming(piece, every_s)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_while_the_listing_drips_exits_within_the_bound(tmp_path: Path) -> None:
    """A listing whose body comes a byte a second: each byte well within the read timeout,
    the whole far from its deadline; SIGTERM still ends the run within the bound."""
    report = tmp_path / "r.json"
    with _streaming(b" ", every_s=1.0) as server:
        apply = _apply(server.url, str(_manifest(tmp_path, 3)), "--report", str(report))
        assert server.started.wait(30)
        time.sleep(1.5)
        _sigterm_ends_it_within_the_bound(apply)
    assert _outcomes(report) == ["skipped"] * 3


def test_listing_deadline_flag_caps_a_listing_that_never_ends(tmp_path: Path) -> None:
    """``--listing-deadline``: a listing that keeps coming far faster than the minimum rate is
    cut at that cap (the default, 600 s, would outlast the test), and every target ends
    failed with the reason."""
    report = tmp_path / "r.json"
    with _streaming(b" " * 65536, every_s=0.05) as server:
        apply = _apply(server.url, str(_manifest(tmp_path, 2)), "--report", str(report),
                       "--listing-deadline", "1")  # fmt: skip
        try:
            _, stderr = apply.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            apply.kill()  # the cap did not hold: end the run rather than leave it behind
            apply.communicate()
            raise
    assert apply.returncode == 1, stderr
    rows = json.loads(report.read_text())["results"]
    assert [row["outcome"] for row in rows] == ["failed", "failed"]
    for row in rows:
        assert "end within 1 s" in row["error"]["message"]
