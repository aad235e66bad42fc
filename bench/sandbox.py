"""The sandbox as a separate process: start it, read its stats, reset it, stop it.

The sandbox runs as ``python -m ldbulk sandbox`` so that its CPU time and memory never count
towards the client being measured. Its token is read from the start line and kept in memory:
it is handed to clients through the environment and never printed or written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from types import TracebackType
from typing import Any, Final

import attrs

from ldbulk.sandbox.cli import read_start_line

_START_TIMEOUT_S: Final = 30.0


@attrs.frozen(kw_only=True)
class SandboxSpec:
    """The sandbox options a scenario needs (a subset of ``ldbulk sandbox``'s flags)."""

    projects: int
    environments: int
    route_limit: int | None = None
    window_s: float = 10.0
    latency_ms: float = 0.0

    def argv(self) -> list[str]:
        """The command line that starts this sandbox on a free loopback port."""
        argv = [
            sys.executable, "-m", "ldbulk", "sandbox", "--port", "0",
            "--projects", str(self.projects), "--environments", str(self.environments),
            "--window-s", str(self.window_s), "--latency-ms", str(self.latency_ms),
        ]  # fmt: skip
        if self.route_limit is not None:
            argv += ["--route-limit", str(self.route_limit)]
        return argv


class SandboxProcess:
    """A running ``ldbulk sandbox`` subprocess, as a context manager."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.url = ""
        self.token = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SandboxProcess:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            self.spec.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._process = process
        assert process.stdout is not None
        # The start line is the only thing the sandbox prints; readline blocks until it comes
        # or the process dies (then it returns "").
        line = process.stdout.readline().strip()
        announced = read_start_line(line)
        if announced is None:
            self._stop()
            raise RuntimeError(f"the sandbox did not start (exit code {process.returncode})")
        self.url, self.token = announced
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    @property
    def pid(self) -> int:
        """The sandbox's process id."""
        assert self._process is not None
        return self._process.pid

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``: requests by route and status, 429s, integrations stored."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/stats")
        return result

    def reset(self) -> None:
        """``POST /_sandbox/reset``: no integrations, no counts, fresh rate-limit windows."""
        self._call("POST", "/_sandbox/reset")

    def client_env(self) -> dict[str, str]:
        """The environment of a client subprocess: where the sandbox is, and its token."""
        env = dict(os.environ)
        env["LD_ACCESS_TOKEN"] = self.token
        env["BENCH_SANDBOX_URL"] = self.url
        return env

    def scrub(self, text: str) -> str:
        """``text`` with the token blanked out, for error messages."""
        return text.replace(self.token, "<token>") if self.token else text
