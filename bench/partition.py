"""The partition scenario: the link to LaunchDarkly goes silent mid-run, then heals.

``ldbulk apply --report`` (the real command line, :mod:`bench.cli_run`) reaches the sandbox
through :class:`SilentLink`, a TCP relay on loopback. A moment into the run the link goes
silent: connections are still accepted, and nothing is answered; what was sent on a
connection open at that moment, or opened during the silence, is swallowed for good, as a
middlebox that dropped its state does. After the silence, new connections reach the sandbox
again. Every target must be created once, and the run must be over soon after the heal: within
one request timeout plus a rate-limit window, the promise the goal holds it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

import attrs

from bench.client import pairs_of
from bench.manifest import write_manifest
from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import CLIENT_TIMEOUT_S, log

# The goal: the run is over this long after the link heals, at most.
OVER_AFTER_HEAL_S: Final = 40.0


@attrs.frozen(kw_only=True)
class PartitionSizes:
    """How big the partition scenario is."""

    targets: int
    environments: int
    route_limit: int
    window_s: float
    silent_after_s: float  # after the run's first connection
    silence_s: float
    # The CLI's --request-timeout; None for its default (the full run measures the default).
    request_timeout_s: float | None


# Two windows of creates: the first window's go before the silence, the second's into it.
FULL_PARTITION: Final = PartitionSizes(
    targets=200, environments=100, route_limit=100, window_s=10.0, silent_after_s=2.0,
    silence_s=70.0, request_timeout_s=None,
)  # fmt: skip
# Seconds in all: the windows, the silence and the request timeout scaled down together.
SMOKE_PARTITION: Final = PartitionSizes(
    targets=8, environments=8, route_limit=4, window_s=1.0, silent_after_s=0.05,
    silence_s=1.0, request_timeout_s=0.5,
)  # fmt: skip


class SilentLink:
    """A TCP relay to ``upstream_port`` that goes silent for ``silence_s``, ``silent_after_s``
    after its first connection, in a thread of its own (the command runs in a subprocess)."""

    def __init__(self, upstream_port: int, *, silent_after_s: float, silence_s: float) -> None:
        self._upstream_port = upstream_port
        self._silent_after_s = silent_after_s
        self._silence_s = silence_s
        self.port = 0
        self.silent_from: float | None = None  # epoch seconds
        self.healed_at: float | None = None
        self.swallowed = 0  # connections cut off by the silence
        self._held: set[tuple[object, ...]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SilentLink:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _close(self) -> None:
        """End the relays still open (those the silence swallowed)."""
        current = asyncio.current_task()
        relays = [task for task in asyncio.all_tasks() if task is not current]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    @property
    def silent(self) -> bool:
        now = time.time()
        return self.silent_from is not None and self.silent_from <= now and (
            self.healed_at is None or now < self.healed_at
        )

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio's server holds a connection's reader weakly: a relay waiting on a silent one
        # for a minute would be collected, and its connection with it.
        held = (reader, writer, asyncio.current_task())
        self._held.add(held)
        # Cancelled when the link closes: asyncio's server would log that as an error.
        with contextlib.suppress(asyncio.CancelledError):
            await self._connection(reader, writer)
        self._held.discard(held)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.silent_from is None:
            self.silent_from = time.time() + self._silent_after_s
            self.healed_at = self.silent_from + self._silence_s
        if self.silent:
            await self._swallow(reader, writer)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        cut = asyncio.Event()
        pipes = [self._pipe(reader, up_writer, cut), self._pipe(up_reader, writer, cut)]
        await asyncio.gather(*pipes, self._cut_at_silence(cut))
        for stream in (writer, up_writer):
            stream.close()

    async def _cut_at_silence(self, cut: asyncio.Event) -> None:
        assert self.silent_from is not None
        if time.time() >= self.silent_from:
            return  # opened after the heal: it stays open
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cut.wait(), max(0.0, self.silent_from - time.time()))
        if not cut.is_set():
            self.swallowed += 1
            cut.set()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        """Copy until the connection ends; once cut, read on and let nothing through (the
        peer sees a connection that is open and silent)."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if not cut.is_set():
                    sink.write(data)
                    await sink.drain()
        cut.set()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.swallowed += 1
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass
        writer.close()


def scenario_partition(sizes: PartitionSizes) -> dict[str, Any]:
    """Run ``ldbulk apply`` through a link that goes silent, then heals; what it took."""
    log(f"partition: {sizes.targets} creates, the link silent for {sizes.silence_s:g} s")
    spec = SandboxSpec(projects=max(1, sizes.targets // sizes.environments),
                       environments=sizes.environments, route_limit=sizes.route_limit,
                       window_s=sizes.window_s)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, SandboxProcess(spec) as sandbox:
        directory = Path(folder)
        manifest = write_manifest(
            directory / "m.yaml",
        pairs_of({"targets": sizes.targets, "environments": sizes.environments}),
        )
        port = int(sandbox.url.rsplit(":", 1)[1])
        with SilentLink(port, silent_after_s=sizes.silent_after_s,
                        silence_s=sizes.silence_s) as link:  # fmt: skip
            measured = _apply(sandbox, link, manifest, directory, sizes)
        stored = sandbox.stats()["integrations"]
        assert link.healed_at is not None and link.silent_from is not None
        ended = measured["started_epoch"] + measured["elapsed_s"]
    return {
        "targets": sizes.targets,
        "route_limit": sizes.route_limit,
        "window_s": sizes.window_s,
        "silent_after_s": sizes.silent_after_s,
        "silence_s": sizes.silence_s,
        "request_timeout_s": sizes.request_timeout_s,
        "exit_code": measured["exit_code"],
        "created": measured["created"],
        "integrations": stored,
        "swallowed_connections": link.swallowed,
        "elapsed_s": measured["elapsed_s"],
        "over_after_heal_s": ended - link.healed_at,
    }


def _apply(
    sandbox: SandboxProcess,
    link: SilentLink,
    manifest: Path,
    directory: Path,
    sizes: PartitionSizes,
) -> dict[str, Any]:
    report = directory / "r.json"
    argv = ["apply", str(manifest), "--report", str(report), "--no-progress",
            "--base-uri", f"http://127.0.0.1:{link.port}"]  # fmt: skip
    if sizes.request_timeout_s is not None:
        argv += ["--request-timeout", str(sizes.request_timeout_s)]
    out = directory / "run.json"
    spec = {"argv": argv, "out": str(out)}
    completed = subprocess.run(  # noqa: S603 - this interpreter, the benchmark's own spec
        [sys.executable, "-m", "bench.cli_run", json.dumps(spec)],
        env=sandbox.client_env(),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )
    if not out.exists():
        raise RuntimeError(f"apply gave no measurement: {sandbox.scrub(completed.stderr)[-2000:]}")
    measured: dict[str, Any] = json.loads(out.read_text())
    outcomes = [row["outcome"] for row in json.loads(report.read_text())["results"]]
    measured["created"] = outcomes.count("created")
    return measured


def partition_goals(result: dict[str, Any], goal: Any) -> None:
    """Every target created once, and the run over soon after the heal."""
    created = result["created"] == result["targets"] == result["integrations"]
    goal(
        "partition",
        "every target created once",
        created,
        f"{result['created']} created, {result['integrations']} stored, "
        f"{result['targets']} targets",
    )
    after = result["over_after_heal_s"]
    # A run that gave up during the silence is over early, and has not recovered at all.
    measured = f"{after:.1f} s" if after >= 0 else f"gave up {-after:.1f} s before the heal"
    goal(
        "partition",
        f"over within {OVER_AFTER_HEAL_S:g} s of the heal, every target created",
        created and after <= OVER_AFTER_HEAL_S,
        measured,
    )


def partition_markdown(result: dict[str, Any], table: Any) -> list[str]:
    """The partition section: one row."""
    timeout = result["request_timeout_s"]
    out = [
        f"## Partition: {result['targets']} creates, the link silent for "
        f"{result['silence_s']:g} s",
        "",
        "`ldbulk apply --report` reaches the sandbox (route limit "
        f"{result['route_limit']} per {result['window_s']:g} s) through a relay that, "
        f"{result['silent_after_s']:g} s after the run's first connection, goes silent: "
        "connections accepted, nothing answered, what was sent swallowed for good. Then new "
        "connections get through again. Request timeout: "
        + ("the default" if timeout is None else f"{timeout:g} s")
        + ".",
        "",
    ]
    row = [
        str(result["exit_code"]), f"{result['created']}/{result['targets']}",
        str(result["integrations"]), str(result["swallowed_connections"]),
        f"{result['elapsed_s']:.1f}", f"{result['over_after_heal_s']:.1f}",
    ]  # fmt: skip
    out += table(
        ["exit", "created", "stored", "connections swallowed", "elapsed s", "over after heal s"],
        [row],
    )
    out.append("")
    return out
