"""The grid: ldbulk's real command line against the physical bound, over sizes, limits,
latencies and the phase of the window a run starts in; the peers beside it on a few cells.

Each cell is one ``ldbulk apply --report`` run (:mod:`bench.cli_run`) of a generated manifest
(:mod:`bench.manifest`) against a sandbox with that route limit and latency, reset before the
run (fresh budgets, no integrations). The run starts ``phase_s`` into a window. Judged per cell,
the criteria of the benchmark's goals: windows used = the minimum; no 429 when the run starts in
a fresh window (<= 1% otherwise); the last create settled within two round trips + 0.5 s of the
earliest possible moment (:func:`bound_s`: every window's budget sent at its start, answered
one round trip later, the last window's creates at the rate the sandbox serves them).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from bench.client import pairs_of
from bench.manifest import write_manifest
from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import (
    CLIENT_TIMEOUT_S,
    ENVIRONMENTS,
    ideal_s,
    log,
    run_client,
    sandbox_counts,
)

# What a run may take beyond the bound: the listing's and the first create's round trips
# (ldbulk learns the budget from an answer before fanning out), and half a second.
ALLOWANCE_RTTS: Final = 2
ALLOWANCE_S: Final = 0.5
# Beyond this share of 429s a run that did not start in a fresh window misses the goal.
MAX_THROTTLED_SHARE: Final = 0.01
# The interpreter's start and ldbulk's imports before a cell's process can wait for its phase.
STARTUP_S: Final = 2.5


@attrs.frozen(kw_only=True)
class Cell:
    """One point of the grid."""

    creates: int
    limit: int
    latency_ms: float
    phase_s: float

    @property
    def rtt_s(self) -> float:
        """One round trip: the sandbox's added latency (loopback adds well under 1 ms)."""
        return self.latency_ms / 1000


@attrs.frozen(kw_only=True)
class GridSizes:
    """The grid's axes, its window length, and the cells the peers also run."""

    creates: tuple[int, ...]
    limits: tuple[int, ...]
    latencies_ms: tuple[float, ...]
    phases_s: tuple[float, ...]
    window_s: float
    peer_cells: tuple[Cell, ...] = ()
    peers: tuple[str, ...] = ("terraform", "gather", "official")
    # The bare loop's runs that measure how fast the sandbox serves; the fastest counts.
    serve_runs: int = 3

    def cells(self) -> list[Cell]:
        """Every combination of the axes."""
        return [
            Cell(creates=n, limit=limit, latency_ms=latency, phase_s=phase)
            for n, limit, latency, phase in itertools.product(
                self.creates, self.limits, self.latencies_ms, self.phases_s
            )
        ]


# "At a window start" is 50 ms in, so that no clock jitter lands the start in the window before.
FULL_GRID: Final = GridSizes(
    creates=(200, 1000),
    limits=(50, 200, 1000),
    latencies_ms=(50.0, 300.0),
    phases_s=(0.05, 6.5),
    window_s=10.0,
    peer_cells=(
        Cell(creates=200, limit=200, latency_ms=50.0, phase_s=0.05),
        Cell(creates=200, limit=200, latency_ms=300.0, phase_s=0.05),
    ),
)

# One tiny cell on 1-second windows: keeps the machinery working; its numbers mean nothing.
SMOKE_GRID: Final = GridSizes(
    creates=(20,), limits=(10,), latencies_ms=(5.0,), phases_s=(0.05,), window_s=1.0,
    serve_runs=1,
)


def bound_s(
    cell: Cell, started_epoch: float, window_s: float, serve_per_s: float = math.inf
) -> float:
    """The earliest moment, from the start, that the cell's last create can be settled.

    The windows' bound, plus the time a server answering ``serve_per_s`` creates a second
    takes to answer the last window's creates: the sandbox is one Python process on one core,
    so 1,000 creates sent at once take it a while to serve, whoever sends them.
    """
    windows = ideal_s(started_epoch, cell.creates, cell.limit, window_s, cell.rtt_s)
    return windows + last_batch(cell) / serve_per_s


def last_batch(cell: Cell) -> int:
    """The creates the last window takes (every window before it takes a whole budget)."""
    return cell.creates - (windows_min(cell) - 1) * cell.limit


def windows_min(cell: Cell) -> int:
    """The fewest windows the creates fit in (a fresh first window has its whole budget)."""
    return math.ceil(cell.creates / cell.limit)


def windows_used(started_epoch: float, settled_epoch: float, rtt_s: float, window_s: float) -> int:
    """The windows from the start's to the last create's admission.

    The sandbox admits a request when it arrives and answers a round trip later, so the last
    admission is no later than ``settled - rtt``.
    """
    first = math.floor(started_epoch / window_s)
    last = math.floor((settled_epoch - rtt_s) / window_s)
    return max(last - first + 1, 1)


def allowance_s(cell: Cell) -> float:
    """What the goal allows beyond the bound: two round trips and half a second."""
    return ALLOWANCE_RTTS * cell.rtt_s + ALLOWANCE_S


def verdict(row: dict[str, Any]) -> dict[str, bool]:
    """The cell's three criteria, and whether all are met."""
    if row["fresh"]:
        throttled_ok = row["throttled"] == 0
    else:
        throttled_ok = row["throttled_share"] <= MAX_THROTTLED_SHARE
    checks = {
        "windows": row["windows_used"] <= row["windows_min"],
        "throttled": throttled_ok,
        "time": row["excess_s"] <= row["allowance_s"],
        "created": row["integrations"] == row["creates"],
    }
    return checks | {"met": all(checks.values())}


def measured_row(
    cell: Cell,
    contender: str,
    started: float,
    settled: float,
    window_s: float,
    serve_per_s: float = math.inf,
) -> dict[str, Any]:
    """The timing part of a row: elapsed, bound (and its serving part), excess and windows."""
    bound = bound_s(cell, started, window_s, serve_per_s)
    elapsed = settled - started
    return {
        "contender": contender,
        **attrs.asdict(cell),
        "phase_actual_s": started % window_s,
        "elapsed_s": elapsed,
        "bound_s": bound,
        "serve_s": last_batch(cell) / serve_per_s,
        "ratio": elapsed / bound,
        "excess_s": elapsed - bound,
        "allowance_s": allowance_s(cell),
        "windows_used": windows_used(started, settled, cell.rtt_s, window_s),
        "windows_min": windows_min(cell),
        # Every cell starts on a reset sandbox: nothing spent in the window it starts in.
        "fresh": True,
    }


def next_cell(cells: Sequence[Cell], now: float, window_s: float) -> Cell:
    """The cell whose phase comes soonest after a process started now could wait for it."""

    def wait(cell: Cell) -> float:
        ready = now + STARTUP_S
        return (cell.phase_s - ready) % window_s

    return min(cells, key=wait)


def _apply_argv(manifest: Path, url: str, report: Path, journal: Path) -> list[str]:
    return [
        "apply", str(manifest), "--base-uri", url, "--report", str(report),
        "--journal", str(journal), "--no-progress",
    ]  # fmt: skip


def run_cli(sandbox: SandboxProcess, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run :mod:`bench.cli_run` with ``spec`` in a subprocess; its measurement."""
    out = workdir / "cli-run.json"
    out.unlink(missing_ok=True)
    process = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.cli_run", json.dumps(spec | {"out": str(out)})],
        env=sandbox.client_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"bench.cli_run exited {process.returncode}:\n" + sandbox.scrub(process.stderr)[-4000:]
        )
    line: dict[str, Any] = json.loads(out.read_text())
    if line["exit_code"] not in (0, 1):  # 1: some target failed, which the row shows
        raise RuntimeError(
            f"ldbulk {spec['argv'][0]} exited {line['exit_code']}:\n"
            + sandbox.scrub(process.stderr)[-4000:]
        )
    return line


def ldbulk_cell(
    sandbox: SandboxProcess,
    cell: Cell,
    window_s: float,
    workdir: Path,
    serve_per_s: float = math.inf,
) -> dict[str, Any]:
    """One cell: ``ldbulk apply --report`` of ``cell.creates`` targets at the cell's phase."""
    manifest = write_manifest(
        workdir / f"grid-{cell.creates}.yaml",
        pairs_of({"targets": cell.creates, "environments": ENVIRONMENTS}),
    )
    journal = workdir / "grid.journal"
    argv = _apply_argv(manifest, sandbox.url, workdir / "grid-report.json", journal)
    sandbox.reset()
    before = sandbox.stats()
    line = run_cli(
        sandbox,
        {"argv": argv, "window_s": window_s, "phase_s": cell.phase_s, "journal": str(journal)},
        workdir,
    )
    counts = sandbox_counts(before, sandbox.stats())
    settled = line["settled_epoch"] or line["started_epoch"] + line["elapsed_s"]
    row = measured_row(cell, "ldbulk", line["started_epoch"], settled, window_s, serve_per_s)
    row |= _counted(cell, counts) | {
        "exit_code": line["exit_code"],
        "process_s": line["elapsed_s"],
        "cpu_s": line["cpu_s"],
        "peak_rss_mb": line["peak_rss_kb"] / 1024,
    }
    return row | {"verdict": verdict(row)}


def peer_cell(
    sandbox: SandboxProcess,
    cell: Cell,
    contender: str,
    window_s: float,
    serve_per_s: float = math.inf,
) -> dict[str, Any]:
    """One cell run by a peer (:mod:`bench.client`), started at the cell's phase."""
    sandbox.reset()
    before = sandbox.stats()
    line = run_client(
        sandbox,
        {
            "contender": contender,
            "targets": cell.creates,
            "environments": ENVIRONMENTS,
            "align_window_s": window_s,
            "align_offset_s": cell.phase_s,
        },
    )
    counts = sandbox_counts(before, sandbox.stats())
    started = line["started_epoch"]
    settled = started + line["elapsed_s"]
    row = measured_row(cell, contender, started, settled, window_s, serve_per_s)
    row |= _counted(cell, counts) | {"cpu_s": line["cpu_s"]}
    return row | {"verdict": verdict(row)}


def _counted(cell: Cell, counts: dict[str, int]) -> dict[str, Any]:
    return counts | {
        "creates": cell.creates,
        "throttled_share": counts["throttled"] / max(counts["requests"], 1),
    }


def expected_s(sizes: GridSizes, peers: Iterable[str]) -> float:
    """A rough forecast of the grid's duration: each cell's bound, plus start-up and the wait
    for its phase (half a window on average), plus the peers' runs."""
    total = 0.0
    for cell in sizes.cells():
        total += ideal_s(cell.phase_s, cell.creates, cell.limit, sizes.window_s, cell.rtt_s)
        total += STARTUP_S + sizes.window_s / 2
    for cell in sizes.peer_cells:
        for peer in peers:
            # The sequential peers send one create per round trip; the rate-limited one 20/s.
            per_create = 0.05 if peer == "gather" else cell.rtt_s + 0.002
            total += cell.creates * per_create + STARTUP_S + sizes.window_s / 2
    return total


def _peers(sizes: GridSizes) -> list[str]:
    available = []
    for peer in sizes.peers:
        if peer == "official" and importlib.util.find_spec("launchdarkly_api") is None:
            log("grid: official peer skipped, launchdarkly-api is not installed")
            continue
        available.append(peer)
    return available


def serve_rate(creates: int, runs: int) -> float:
    """How many creates a second the sandbox answers, all sent at once by the bare aiohttp
    loop (no limit, no added latency): the fastest of ``runs`` runs."""
    spec = SandboxSpec(projects=math.ceil(creates / ENVIRONMENTS), environments=ENVIRONMENTS)
    fastest = math.inf
    with SandboxProcess(spec) as sandbox:
        for _ in range(runs):
            sandbox.reset()
            line = run_client(
                sandbox,
                {
                    "contender": "bare_aiohttp",
                    "targets": creates,
                    "environments": ENVIRONMENTS,
                    "concurrency": creates,
                },
            )
            if line["created"] != creates:
                raise RuntimeError(f"the bare loop created {line['created']} of {creates}")
            fastest = min(fastest, line["elapsed_s"])
    return creates / fastest


def _group(
    sizes: GridSizes,
    limit: int,
    latency_ms: float,
    peers: Sequence[str],
    workdir: Path,
    serve_per_s: float,
) -> list[dict[str, Any]]:
    """The cells of one route limit and latency, against one sandbox reset between runs."""
    spec = SandboxSpec(
        projects=math.ceil(max(sizes.creates) / ENVIRONMENTS),
        environments=ENVIRONMENTS,
        route_limit=limit,
        window_s=sizes.window_s,
        latency_ms=latency_ms,
    )
    todo = [c for c in sizes.cells() if (c.limit, c.latency_ms) == (limit, latency_ms)]
    rows = []
    with SandboxProcess(spec) as sandbox:
        while todo:
            cell = next_cell(todo, time.time(), sizes.window_s)
            todo.remove(cell)
            log(f"grid: ldbulk, {_label(cell)}")
            rows.append(ldbulk_cell(sandbox, cell, sizes.window_s, workdir, serve_per_s))
        for cell in sizes.peer_cells:
            if (cell.limit, cell.latency_ms) != (limit, latency_ms):
                continue
            for peer in peers:
                log(f"grid: {peer}, {_label(cell)}")
                rows.append(peer_cell(sandbox, cell, peer, sizes.window_s, serve_per_s))
    return rows


def _label(cell: Cell) -> str:
    return (
        f"{cell.creates} creates, limit {cell.limit}, {cell.latency_ms:g} ms, "
        f"phase {cell.phase_s:g} s"
    )


def scenario_grid(sizes: GridSizes) -> dict[str, Any]:
    """Run every cell (and the peers' cells); the rows and the grid's axes."""
    peers = _peers(sizes) if sizes.peer_cells else []
    forecast = expected_s(sizes, peers)
    log(f"grid: {len(sizes.cells())} cells, expected about {forecast / 60:.0f} min")
    started = time.perf_counter()
    serve_per_s = serve_rate(max(sizes.creates), sizes.serve_runs)
    log(f"grid: the sandbox serves {serve_per_s:,.0f} creates/s")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ldbulk-grid-") as folder:
        for limit, latency_ms in itertools.product(sizes.limits, sizes.latencies_ms):
            rows += _group(sizes, limit, latency_ms, peers, Path(folder), serve_per_s)
    return {
        "window_s": sizes.window_s,
        "serve_per_s": serve_per_s,
        "allowance": f"{ALLOWANCE_RTTS} round trips + {ALLOWANCE_S:g} s",
        "expected_s": forecast,
        "took_s": time.perf_counter() - started,
        "rows": rows,
    }
