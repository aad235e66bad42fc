"""One ``ldbulk`` command run at a chosen rate-limit phase: ``python -m bench.cli_run SPEC``.

The command is the console script's own function (``ldbulk.cli:main``, what ``ldbulk apply
--report ...`` runs), called in this fresh process with the spec's arguments. The interpreter's
start and the imports happen first, then the process sleeps until the spec's moment: ``phase_s``
into a rate-limit window (windows start at multiples of ``window_s`` in epoch time, as the
sandbox's and LaunchDarkly's do). The clock starts there, so the phase is exact and the
measured time is the command's work, not Python's start-up (measured on its own by the
benchmarks: see :func:`bench.cli_scale.startup`).

It writes one JSON object to the spec's ``out`` file: when it started (epoch), how long the
command took, when the last target settled (the journal's last write: ``apply --report R``
appends each settled target to ``R.journal`` as it settles), the exit code, CPU and peak RSS.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.client import current_rss_kb, peak_rss_kb, wait_for_window
from ldbulk.cli import main as ldbulk_main


def run_command(argv: Sequence[str]) -> int:
    """Run ``ldbulk ARGV`` as the console script does; its exit code."""
    try:
        ldbulk_main.main(args=list(argv), prog_name="ldbulk", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def last_write_epoch(path: Path) -> float | None:
    """The last modification of ``path`` (epoch seconds), or None when it does not exist."""
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None


def main(argv: Sequence[str]) -> int:
    """Wait for the phase, run the command, write the measurement to the spec's ``out``."""
    spec: dict[str, Any] = json.loads(argv[1])
    baseline_rss_kb = current_rss_kb()
    if spec.get("window_s"):
        wait_for_window(float(spec["window_s"]), float(spec.get("phase_s", 0.05)))
    started_epoch = time.time()
    started = time.perf_counter()
    cpu_started = time.process_time()
    code = run_command(spec["argv"])
    elapsed_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    journal = spec.get("journal")
    settled_epoch = last_write_epoch(Path(journal)) if journal else None
    line = {
        "started_epoch": started_epoch,
        "elapsed_s": elapsed_s,
        "settled_epoch": settled_epoch,
        "exit_code": code,
        "cpu_s": cpu_s,
        "baseline_rss_kb": baseline_rss_kb,
        "peak_rss_kb": peak_rss_kb(),
    }
    Path(spec["out"]).write_text(json.dumps(line), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
