"""``python -m bench.scale``: a re-run against an account of 250,000 existing integrations.

The sandbox starts with that many integrations (``--seed-integrations``), one in each of its
environments; ldbulk then applies a target to each of them, create-only, as a nightly re-run
does. What it should cost: one streamed listing, every target found, memory following the
lean records rather than the ~180 MB body. Slow (minutes), so not part of ``make test``'s
smoke nor of ``make bench``'s scenarios: run it on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import log, run_client
from ldbulk.api.sansio import ROUTE_LIST

ENVIRONMENTS_PER_PROJECT = 500


def scale_check(integrations: int = 250_000) -> dict[str, Any]:
    """Seed the sandbox with ``integrations``, re-run apply against all of them (create-only),
    and report the listings sent, the run's wall time and the client's peak RSS."""
    projects = math.ceil(integrations / ENVIRONMENTS_PER_PROJECT)
    spec = SandboxSpec(
        projects=projects,
        environments=ENVIRONMENTS_PER_PROJECT,
        seed_integrations=integrations,
    )
    started = time.perf_counter()
    with SandboxProcess(spec) as sandbox:
        log(f"scale: sandbox up with {integrations} integrations "
            f"in {time.perf_counter() - started:.1f} s")
        before = sandbox.stats()
        line = run_client(
            sandbox,
            {
                "contender": "ldbulk",
                "targets": integrations,
                "environments": ENVIRONMENTS_PER_PROJECT,
                "create_only": True,
            },
        )
        after = sandbox.stats()
    listings = sum(after["requests"].get(ROUTE_LIST, {}).values()) - sum(
        before["requests"].get(ROUTE_LIST, {}).values()
    )
    return {
        "integrations": integrations,
        "listings": listings,
        "requests": after["total"] - before["total"],
        "found": line["outcomes"].get("exists", 0),
        "failed": line["failed"],
        "elapsed_s": round(line["elapsed_s"], 2),
        "cpu_s": round(line["cpu_s"], 2),
        "baseline_rss_mb": round(line["baseline_rss_kb"] / 1024, 1),
        "peak_rss_mb": round(line["peak_rss_kb"] / 1024, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scale check and print its result as one JSON line; exit 1 unless it held."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--integrations", type=int, default=250_000)
    args = parser.parse_args(argv)
    result = scale_check(args.integrations)
    print(json.dumps(result), flush=True)
    held = result["listings"] == 1 and result["found"] == args.integrations
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
