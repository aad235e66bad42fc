"""The sandbox as a separate process: start it, read its stats, reset it, stop it.

The sandbox runs as ``python -m ldbulk sandbox`` so that its CPU time and memory never count
towards the client being measured. Its token is read from the start line and kept in memory:
it is handed to clients through the environment and never printed or written.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from types import TracebackType
from typing import Any

import attrs

from ldbulk.sandbox.launch import LaunchedSandbox, launch_sandbox


@attrs.frozen(kw_only=True)
class SandboxSpec:
    """The sandbox options a scenario needs (a subset of ``ldbulk sandbox``'s flags)."""

    projects: int
    environments: int
    route_limit: int | None = None
    window_s: float = 10.0
    latency_ms: float = 0.0
    background_rate: int = 0
    seed_integrations: int = 0
    # Odds that a create is stored and its answer lost (the connection cut), with a fixed seed.
    drop_after_commit: float = 0.0
    # Seconds the sandbox's clock runs ahead of the client's (negative: behind).
    clock_offset_s: float = 0.0

    def args(self) -> list[str]:
        """The ``ldbulk sandbox`` options of this sandbox (it takes a free loopback port)."""
        args = [
            "--projects", str(self.projects), "--environments", str(self.environments),
            "--window-s", str(self.window_s), "--latency-ms", str(self.latency_ms),
        ]  # fmt: skip
        if self.route_limit is not None:
            args += ["--route-limit", str(self.route_limit)]
        if self.background_rate:
            args += ["--background-rate", str(self.background_rate)]
        if self.seed_integrations:
            args += ["--seed-integrations", str(self.seed_integrations)]
        if self.drop_after_commit:
            args += ["--drop-after-commit", str(self.drop_after_commit), "--seed", "7"]
        if self.clock_offset_s:
            args += ["--clock-offset", str(self.clock_offset_s)]
        return args


class SandboxProcess:
    """A running ``ldbulk sandbox`` subprocess, as a context manager."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.url = ""
        self.token = ""
        self._stack = contextlib.ExitStack()
        self._launched: LaunchedSandbox | None = None

    def __enter__(self) -> SandboxProcess:
        launched = self._stack.enter_context(
            launch_sandbox(*self.spec.args(), stderr=subprocess.DEVNULL)
        )
        self._launched = launched
        self.url, self.token = launched.url, launched.token
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
        self._launched = None

    @property
    def pid(self) -> int:
        """The sandbox's process id."""
        assert self._launched is not None
        return self._launched.pid

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
