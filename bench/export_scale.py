"""``ldbulk export`` of a large account, on the real command line: wall time, CPU and peak RSS.

The sandbox is seeded with one redis integration in each of ``integrations`` environments; the
export lists them (one request) and reads each by id, since the listing carries no config. Peak
RSS is the command's ``ru_maxrss`` as ``wait4`` reports it (see :func:`bench.cli_scale.measure`),
so it is the whole process: Python, ldbulk's imports and the export. A second run, given the
partial file of an export stopped half-way, measures a resume: the reads it still had to make.

Run alone with ``python -m bench.export_scale [--integrations N]``; ``--source DIR`` measures
the ldbulk of another checkout (``python -m ldbulk`` with DIR first on its path), for a
before/after on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from bench import cli_scale
from bench.cli_scale import ldbulk_command
from bench.results_grid import Goal, Table
from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import ENVIRONMENTS, log, sandbox_counts

# The goal: an export of 100,000 integrations within 150 MB of peak RSS.
EXPORT_PEAK_MB: Final = 150.0
FULL_INTEGRATIONS: Final = 100_000
SMOKE_INTEGRATIONS: Final = 300
READ_ROUTE_PREFIX: Final = "GET /api/v2/integration-capabilities/big-segment-store/"
# Reads by id at the sandbox's pace on a shared machine: well past the other scenarios' limit.
EXPORT_TIMEOUT_S: Final = 3600.0


@attrs.frozen(kw_only=True)
class Command:
    """The ldbulk measured: the installed one, or another checkout's (``source``)."""

    source: Path | None = None

    def argv(self) -> list[str]:
        if self.source is None:
            return ldbulk_command()
        # -P: not the working directory first on the path, where this checkout's ldbulk is.
        return [sys.executable, "-P", "-m", "ldbulk"]

    def env(self, sandbox: SandboxProcess) -> dict[str, str]:
        env = sandbox.client_env()
        if self.source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source),
                                                              env.get("PYTHONPATH")]))
        return env


def measure(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """:func:`bench.cli_scale.measure` with a longer timeout: wall and CPU seconds, exit code
    and peak RSS of the command's own process."""
    return cli_scale.measure(argv, env, timeout_s=EXPORT_TIMEOUT_S)


def _reads(stats: dict[str, Any]) -> int:
    """Reads by id the sandbox has answered (its routes are templates: the one with an id)."""
    return sum(
        sum(counts.values())
        for route, counts in stats["requests"].items()
        if route.startswith(READ_ROUTE_PREFIX) and route.count("/") >= 8
    )


def _export(
    sandbox: SandboxProcess, command: Command, output: Path, label: str
) -> dict[str, Any]:
    before = sandbox.stats()
    argv = [*command.argv(), "export", "-o", str(output), "--base-uri", sandbox.url]
    row = measure(argv, command.env(sandbox))
    after = sandbox.stats()
    if row["exit_code"] != 0:
        raise RuntimeError(f"ldbulk export exited {row['exit_code']}:\n"
                           + sandbox.scrub(row["stderr_tail"]))
    del row["stderr_tail"]
    counts = sandbox_counts(before, after)
    return {"command": label, **row, "requests": counts["requests"],
            "reads": _reads(after) - _reads(before)}


def _interrupted(
    sandbox: SandboxProcess, command: Command, output: Path, after_s: float
) -> None:
    """An export stopped by SIGINT ``after_s`` seconds in, as Ctrl-C stops it."""
    argv = [*command.argv(), "export", "-o", str(output), "--base-uri", sandbox.url]
    process = subprocess.Popen(  # noqa: S603 - the ldbulk console script
        argv, env=command.env(sandbox), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)


def scenario_export(
    integrations: int, *, resume: bool = True, command: Command | None = None
) -> dict[str, Any]:
    """Export ``integrations`` seeded integrations; then (``resume``) one stopped part-way
    and resumed, whose reads say how much the resume saved."""
    spec = SandboxSpec(
        projects=math.ceil(integrations / ENVIRONMENTS), environments=ENVIRONMENTS,
        seed_integrations=integrations,
    )  # fmt: skip
    command = command or Command()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ldbulk-export-") as folder,
        SandboxProcess(spec) as sandbox,
    ):
        output = Path(folder) / "stores.yaml"
        log(f"export: {integrations:,} integrations")
        rows.append(_export(sandbox, command, output, "export") | {"integrations": integrations})
        if resume:
            again = Path(folder) / "again.yaml"
            _interrupted(sandbox, command, again, after_s=max(2.0, rows[0]["wall_s"] / 2))
            partial = again.with_name(again.name + ".partial")
            log(f"export: resume ({partial.exists() and partial.stat().st_size} bytes kept)")
            row = _export(sandbox, command, again, "export, resumed after Ctrl-C half-way")
            rows.append(row | {"integrations": integrations})
    source = str(command.source) if command.source else "installed"
    return {"integrations": integrations, "peak_goal_mb": EXPORT_PEAK_MB, "source": source,
            "rows": rows}  # fmt: skip


def export_goals(result: dict[str, Any], goal: Goal) -> None:
    """Peak RSS of the export against the goal; a resume reads only what was not read."""
    first = result["rows"][0]
    goal(
        "export",
        f"`ldbulk export` of {result['integrations']:,} integrations: peak RSS <= "
        f"{EXPORT_PEAK_MB:g} MB",
        first["peak_rss_mb"] <= EXPORT_PEAK_MB,
        f"{first['peak_rss_mb']:.1f} MB, {first['wall_s']:.0f} s",
    )
    if len(result["rows"]) > 1:
        resumed = result["rows"][1]
        goal(
            "export",
            "a resumed export reads fewer than all of them again",
            resumed["reads"] < result["integrations"],
            f"{resumed['reads']:,} read(s) of {result['integrations']:,}",
        )


def export_markdown(result: dict[str, Any], table: Table) -> list[str]:
    """The export section: one row per run."""
    out = [
        f"## Export of {result['integrations']:,} integrations",
        "",
        "`ldbulk export -o FILE` in a process of its own against a sandbox without rate limits "
        "seeded with one redis integration per environment: one listing, a read by id of each "
        "(the listing carries no config), a listing of each project's environments. Peak RSS "
        "is the process's `ru_maxrss`, Python and its imports included. The second row is an "
        "export stopped with SIGINT half-way through the first's time, then run again: it "
        "reads only what its partial file does not have.",
        "",
    ]
    rows = [
        [row["command"], f"{row['wall_s']:.1f}", f"{row['cpu_s']:.1f}",
         f"{row['peak_rss_mb']:.1f}", f"{row['requests']:,}", f"{row['reads']:,}",
         str(row["exit_code"])]
        for row in result["rows"]
    ]  # fmt: skip
    out += table(["run", "wall s", "CPU s", "peak RSS MB", "requests", "reads", "exit"], rows)
    out.append("")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_scale", description=__doc__)
    parser.add_argument("--integrations", type=int, default=FULL_INTEGRATIONS)
    parser.add_argument("--no-resume", action="store_true", help="the full export only")
    parser.add_argument("--source", type=Path, help="measure the ldbulk package under DIR")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(here.parent), os.environ.get("PYTHONPATH")])
    )
    command = Command(source=args.source.resolve() if args.source else None)
    result = scenario_export(args.integrations, resume=not args.no_resume, command=command)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
