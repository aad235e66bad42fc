"""``python -m bench``: run the scenarios, write results.md and results.json, print the table."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from bench.cli_scale import FULL_SCALE, SMOKE_SCALE, scenario_cli_scale
from bench.cpu import FULL_CPU, SMOKE_CPU, scenario_cpu
from bench.export_scale import FULL_INTEGRATIONS, SMOKE_INTEGRATIONS, scenario_export
from bench.grid import FULL_GRID, SMOKE_GRID, scenario_grid
from bench.partition import FULL_PARTITION, SMOKE_PARTITION, scenario_partition
from bench.results import goals, machine, to_markdown
from bench.scenarios import FULL, SMOKE, log, run_scenarios
from bench.shared import FULL_SHARED, SMOKE_SHARED, scenario_shared
from bench.skew import FULL_SKEW, SMOKE_SKEW, scenario_skew

HERE = Path(__file__).parent


SCENARIO_NAMES: Final = (
    "1", "2", "3", "4", "5", "cpu", "shared", "skew", "partition", "export", "grid", "scale"
)
# What each scenario's result records of the run it was taken in: a merged results.md says
# the commit, date and machine of every section kept from an earlier run.
TAKEN_KEYS: Final = ("commit", "date", "cpu_model")


def run_all(which: Sequence[str], *, smoke: bool) -> dict[str, Any]:
    """Run the chosen scenarios in the order named; the results keyed by name."""
    results: dict[str, Any] = {}
    for name in which:
        if name == "grid":
            results[name] = scenario_grid(SMOKE_GRID if smoke else FULL_GRID)
        elif name == "scale":
            results[name] = scenario_cli_scale(SMOKE_SCALE if smoke else FULL_SCALE)
        elif name == "export":
            size = SMOKE_INTEGRATIONS if smoke else FULL_INTEGRATIONS
            results[name] = scenario_export(size, resume=not smoke)
        elif name == "skew":
            results[name] = scenario_skew(SMOKE_SKEW if smoke else FULL_SKEW)
        elif name == "shared":
            results[name] = scenario_shared(SMOKE_SHARED if smoke else FULL_SHARED)
        elif name == "cpu":
            results[name] = scenario_cpu(SMOKE_CPU if smoke else FULL_CPU)
        elif name == "partition":
            results[name] = scenario_partition(SMOKE_PARTITION if smoke else FULL_PARTITION)
        else:
            results |= run_scenarios(SMOKE if smoke else FULL, [int(name)])
    return results


def kept_from(earlier: dict[str, Any]) -> dict[str, Any]:
    """An earlier run's scenarios, each marked with the commit, date and machine it was taken
    at (one the earlier run had kept in turn keeps its own marks)."""
    machine = earlier["machine"]
    stamp = {key: machine[key] for key in TAKEN_KEYS if key in machine}
    kept = {}
    for name, result in earlier["scenarios"].items():
        taken = result.get("taken", stamp)
        if (taken.get("commit"), taken.get("date")) == (stamp["commit"], stamp["date"]):
            taken = stamp | taken  # taken in that run: on its machine
        kept[name] = result | {"taken": taken}
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run, write the results; exit 0 unless a run broke."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds in total; no goals enforced"
    )
    parser.add_argument(
        "--scenarios",
        "--only",
        default=",".join(SCENARIO_NAMES),
        help="comma-separated scenarios to run, of "
        + ", ".join(SCENARIO_NAMES)
        + " (default: all; e.g. --only grid)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for results.md and results.json "
        "(default: bench/, or a temporary directory with --smoke)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the scenarios of the existing results.json that this run does not run "
        "(results.md says which commit each was taken at)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: rewrite results.md from results.json (e.g. after editing notes.md)",
    )
    args = parser.parse_args(argv)
    if args.render:
        folder: Path = args.out or HERE
        data = json.loads((folder / "results.json").read_text())
        data["goals"] = goals(data["scenarios"])
        (folder / "results.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        (folder / "results.md").write_text(to_markdown(data) + "\n")
        log(f"wrote {folder / 'results.md'}")
        return 0
    which = [part.strip() for part in args.scenarios.split(",") if part.strip()]
    unknown = sorted(set(which) - set(SCENARIO_NAMES))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    out: Path = args.out or (
        Path(tempfile.gettempdir()) / "ldbulk-bench-smoke" if args.smoke else HERE
    )
    out.mkdir(parents=True, exist_ok=True)
    # The clients run as `python -m bench.client`: make sure they find this package.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])
    )
    scenarios = run_all(which, smoke=args.smoke)
    taken = machine()
    for result in scenarios.values():
        result["taken"] = {key: taken[key] for key in TAKEN_KEYS}
    if args.merge and (out / "results.json").exists():
        scenarios = kept_from(json.loads((out / "results.json").read_text())) | scenarios
    data = {
        "smoke": args.smoke,
        "machine": taken,
        "scenarios": scenarios,
        # A smoke run's sizes are too small for any goal to mean something: it judges none.
        "goals": [] if args.smoke else goals(scenarios),
    }
    markdown = to_markdown(data)
    (out / "results.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    (out / "results.md").write_text(markdown + "\n")
    if not args.smoke:
        # A smoke run only keeps the harness working: its tiny numbers, printed in the middle
        # of make test, would read as results.
        print(markdown)
    log(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    return 0
