"""CPU per create against the floor: ldbulk's library and its command line, each beside a bare
aiohttp loop sending the same creates with the same number in flight.

CPU is the client process's only (the sandbox serves from a process of its own, unrated). The
library and the bare loop are measured inside :mod:`bench.client` (``time.process_time`` over
the run, imports excluded). The command line is measured whole, as a user pays for it: the
``ldbulk apply`` process's user and system time from start to exit (start-up, imports, the
manifest, the account's listing and the report included). Each cell is the median of
``repeats`` runs, the contenders alternating so drift in the machine's speed hits them alike.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs

from bench.cli_scale import ldbulk_command, measure
from bench.client import pairs_of
from bench.manifest import write_manifest
from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import ENVIRONMENTS, log, run_client, sandbox_counts

# The goals: CPU per create within these multiples of the bare loop's.
LIBRARY_RATIO: Final = 1.3
CLI_RATIO: Final = 1.5


@attrs.frozen(kw_only=True)
class CpuSizes:
    """How many creates each cell sends, at which counts in flight, how many times."""

    library_targets: int
    cli_targets: int
    concurrencies: tuple[int, ...]
    repeats: int


FULL_CPU: Final = CpuSizes(
    library_targets=5_000, cli_targets=20_000, concurrencies=(32, 512), repeats=5
)
SMOKE_CPU: Final = CpuSizes(library_targets=200, cli_targets=200, concurrencies=(8,), repeats=1)


def _library_run(sandbox: SandboxProcess, contender: str, targets: int, in_flight: int) -> float:
    """One client run; its CPU seconds per create the sandbox received."""
    sandbox.reset()
    before = sandbox.stats()
    spec = {"contender": contender, "targets": targets, "environments": ENVIRONMENTS,
            "concurrency": in_flight}  # fmt: skip
    line = run_client(sandbox, spec)
    creates = sandbox_counts(before, sandbox.stats())["creates_sent"]
    return float(line["cpu_s"]) / max(creates, 1)


def _cli_run(sandbox: SandboxProcess, manifest: Path, in_flight: int) -> float:
    """One ``ldbulk apply`` process; its whole CPU seconds per create the sandbox received."""
    sandbox.reset()
    before = sandbox.stats()
    argv = [*ldbulk_command(), "apply", str(manifest), "--base-uri", sandbox.url,
            "--concurrency", str(in_flight), "--no-progress"]  # fmt: skip
    row = measure(argv, sandbox.client_env())
    if row["exit_code"] != 0:
        raise RuntimeError("ldbulk apply failed:\n" + sandbox.scrub(row["stderr_tail"]))
    creates = sandbox_counts(before, sandbox.stats())["creates_sent"]
    return float(row["cpu_s"]) / max(creates, 1)


def _row(what: str, in_flight: int, targets: int, ours: list[float], bare: list[float]) -> dict[
    str, Any
]:
    ours_ms, bare_ms = statistics.median(ours) * 1000, statistics.median(bare) * 1000
    return {
        "what": what,
        "in_flight": in_flight,
        "targets": targets,
        "ms_per_create": ours_ms,
        "bare_ms_per_create": bare_ms,
        "ratio": ours_ms / bare_ms,
        "goal": LIBRARY_RATIO if what == "library" else CLI_RATIO,
        "runs_ms": [value * 1000 for value in ours],
        "bare_runs_ms": [value * 1000 for value in bare],
    }


def scenario_cpu(sizes: CpuSizes) -> dict[str, Any]:
    """The CPU table: a row per (library or command line, count in flight)."""
    targets = max(sizes.library_targets, sizes.cli_targets)
    spec = SandboxSpec(projects=math.ceil(targets / ENVIRONMENTS), environments=ENVIRONMENTS)
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ldbulk-cpu-") as folder,
        SandboxProcess(spec) as sandbox,
    ):
        pairs = pairs_of({"targets": sizes.cli_targets, "environments": ENVIRONMENTS})
        manifest = write_manifest(Path(folder) / "cpu.yaml", pairs)
        for in_flight in sizes.concurrencies:
            runs: dict[str, list[float]] = {"lib": [], "lib_bare": [], "cli": [], "cli_bare": []}
            for repeat in range(sizes.repeats):
                log(f"cpu: {in_flight} in flight, run {repeat + 1} of {sizes.repeats}")
                runs["lib_bare"].append(
                    _library_run(sandbox, "bare_aiohttp", sizes.library_targets, in_flight)
                )
                runs["lib"].append(
                    _library_run(sandbox, "ldbulk", sizes.library_targets, in_flight)
                )
                runs["cli_bare"].append(
                    _library_run(sandbox, "bare_aiohttp", sizes.cli_targets, in_flight)
                )
                runs["cli"].append(_cli_run(sandbox, manifest, in_flight))
            rows.append(
                _row("library", in_flight, sizes.library_targets, runs["lib"], runs["lib_bare"])
            )
            rows.append(_row("cli", in_flight, sizes.cli_targets, runs["cli"], runs["cli_bare"]))
    return {"repeats": sizes.repeats, "rows": rows}


def cpu_goals(cpu: dict[str, Any], goal: Callable[[str, str, bool, str], None]) -> None:
    """One goal per row: its CPU per create within its multiple of the bare loop's."""
    for row in cpu["rows"]:
        what = "library" if row["what"] == "library" else "`ldbulk apply` process"
        goal(
            "cpu",
            f"{what}, {row['in_flight']} in flight: CPU per create <= {row['goal']:g} x bare",
            row["ratio"] <= row["goal"],
            f"{row['ratio']:.2f} x",
        )


def cpu_markdown(
    cpu: dict[str, Any], table: Callable[[list[str], list[list[str]]], list[str]]
) -> list[str]:
    """results.md's CPU table: a row per (library or command line, count in flight)."""
    out = [
        "## CPU per create against a bare aiohttp loop, no rate limit",
        "",
        "The bare loop posts the same bodies with the same headers, the same number in flight, "
        "and parses each answer for the new id; nothing else. The library's CPU is "
        "`time.process_time()` over `provision` (imports excluded), the bare loop's likewise; "
        "the command line's is the whole `ldbulk apply --no-progress` process from start to "
        "exit (`wait4`'s user + system time: start-up, imports, manifest, the account's "
        "listing included), against the bare loop sending as many creates. The sandbox serves "
        f"from a process of its own. Median of {cpu['repeats']} runs each, alternating.",
        "",
    ]
    rows = []
    for row in cpu["rows"]:
        rows.append(
            [
                "library (`provision`)" if row["what"] == "library" else "`ldbulk apply` process",
                str(row["in_flight"]),
                f"{row['targets']:,}",
                f"{row['ms_per_create']:.3f}",
                f"{row['bare_ms_per_create']:.3f}",
                f"**{row['ratio']:.2f} x**",
                f"{row['goal']:g} x",
                ", ".join(f"{value:.3f}" for value in row["runs_ms"]),
                ", ".join(f"{value:.3f}" for value in row["bare_runs_ms"]),
            ]
        )
    headers = ["client", "in flight", "creates", "CPU ms / create", "bare ms / create",
               "ratio", "goal", "each run (ms)", "bare, each run (ms)"]  # fmt: skip
    return [*out, *table(headers, rows), ""]
