"""The benchmark scenarios: each starts its sandboxes, runs its clients, returns numbers.

Every client run is a subprocess of its own (:mod:`bench.client`), and every sandbox another
(:mod:`bench.sandbox`), so CPU time and peak memory are the client's alone. Runs go one after
another: on a small machine, concurrent runs would compete for the same cores.
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, Final

import attrs

from bench.sandbox import SandboxProcess, SandboxSpec

CLIENT_TIMEOUT_S: Final = 900.0
CREATE_ROUTE: Final = (
    "POST /api/v2/integration-capabilities/big-segment-store/"
    "{projectKey}/{environmentKey}/{integrationKey}"
)


def log(message: str) -> None:
    """Progress for the person waiting, on stderr (stdout is for the final table)."""
    print(message, file=sys.stderr, flush=True)


@attrs.frozen(kw_only=True)
class Sizes:
    """How big each scenario is: the full benchmark or the smoke test."""

    s1_targets: int
    s1_environments: int
    s1_route_limit: int
    s1_window_s: float
    s1_latency_ms: float
    s2_targets: int
    s2_concurrency: int
    s2_repeats: int
    s3_sizes: tuple[int, int]
    s3_projects: int
    s4_targets: int
    s5_targets: int
    s5_route_limit: int
    s5_window_s: float
    # (runs at once, background requests per window) for each case
    s5_cases: tuple[tuple[int, int], ...]


FULL: Final = Sizes(
    s1_targets=500,
    s1_environments=100,
    s1_route_limit=100,
    s1_window_s=10.0,
    s1_latency_ms=50.0,
    s2_targets=5000,
    s2_concurrency=32,
    s2_repeats=5,
    s3_sizes=(2000, 20000),
    s3_projects=200,
    s4_targets=500,
    # The case (30 + 30 creates, route limit 10) on 2-second windows, so that the three
    # runs take under a minute: the pacer learns the window's length from the resets.
    s5_targets=60,
    s5_route_limit=10,
    s5_window_s=2.0,
    s5_cases=((2, 0), (4, 0), (1, 5)),
)

SMOKE: Final = Sizes(
    s1_targets=12,
    s1_environments=100,
    s1_route_limit=4,
    s1_window_s=0.5,
    s1_latency_ms=5.0,
    s2_targets=200,
    s2_concurrency=8,
    s2_repeats=1,
    s3_sizes=(20, 200),
    s3_projects=2,
    s4_targets=20,
    s5_targets=12,
    s5_route_limit=4,
    s5_window_s=0.5,
    # One case: the smoke run checks the machinery of concurrent runs, in a few seconds.
    s5_cases=((2, 0),),
)

ENVIRONMENTS: Final = 100  # environments per generated project, in every scenario


def run_client(sandbox: SandboxProcess, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one contender in a fresh subprocess and return its measurement line."""
    process = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.client", json.dumps(spec)],
        env=sandbox.client_env(),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(
            f"client {spec['contender']} exited {process.returncode}:\n"
            + sandbox.scrub(process.stderr)[-4000:]
        )
    result: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return result


def sandbox_counts(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests, 429s and creates the sandbox served between two stats snapshots."""

    def creates(stats: dict[str, Any]) -> int:
        return sum(stats["requests"].get(CREATE_ROUTE, {}).values())

    return {
        "requests": after["total"] - before["total"],
        "throttled": after["throttled"] - before["throttled"],
        "creates_sent": creates(after) - creates(before),
        "integrations": after["integrations"],
    }


def ideal_s(
    started_epoch: float, targets: int, limit: int, window_s: float, latency_s: float
) -> float:
    """The least time ``targets`` creates can take from ``started_epoch`` under the route limit.

    Windows are fixed and start at multiples of ``window_s`` in epoch time. A run starting in
    window k has ``limit`` creates there and in each following window, so the last create can
    go out no earlier than the start of window ``k + ceil(targets / limit) - 1``; with every
    create of that window sent at once, the run ends one round trip (the added latency) later.
    """
    first_window = math.floor(started_epoch / window_s)
    last_window_start = (first_window + math.ceil(targets / limit) - 1) * window_s
    return max(last_window_start - started_epoch, 0.0) + latency_s


def scenario_1(sizes: Sizes) -> dict[str, Any]:
    """Rate-limit bound: ldbulk and three peer policies, each against a fresh sandbox."""
    spec = SandboxSpec(
        projects=math.ceil(sizes.s1_targets / ENVIRONMENTS),
        environments=ENVIRONMENTS,
        route_limit=sizes.s1_route_limit,
        window_s=sizes.s1_window_s,
        latency_ms=sizes.s1_latency_ms,
    )
    rows = []
    skipped = []
    for contender in ("ldbulk", "terraform", "gather", "official"):
        if contender == "official" and importlib.util.find_spec("launchdarkly_api") is None:
            # The bench extra is not installed: say so instead of failing the whole run.
            log("scenario 1: official skipped, launchdarkly-api is not installed")
            skipped.append(contender)
            continue
        log(f"scenario 1: {contender}, {sizes.s1_targets} targets")
        with SandboxProcess(spec) as sandbox:
            before = sandbox.stats()
            line = run_client(
                sandbox,
                {
                    "contender": contender,
                    "targets": sizes.s1_targets,
                    "environments": ENVIRONMENTS,
                    # Start just after a window opens, so every contender meets the same phase.
                    "align_window_s": sizes.s1_window_s,
                    "align_offset_s": 0.05,
                },
            )
            counts = sandbox_counts(before, sandbox.stats())
        ideal = ideal_s(
            line["started_epoch"],
            sizes.s1_targets,
            sizes.s1_route_limit,
            sizes.s1_window_s,
            sizes.s1_latency_ms / 1000,
        )
        rows.append(
            {
                "contender": contender,
                "elapsed_s": line["elapsed_s"],
                "ideal_s": ideal,
                "ratio": line["elapsed_s"] / ideal,
                "throttled_share": counts["throttled"] / max(counts["requests"], 1),
                "cpu_s": line["cpu_s"],
                "client": line,
                **counts,
            }
        )
    return {
        "targets": sizes.s1_targets,
        "route_limit": sizes.s1_route_limit,
        "window_s": sizes.s1_window_s,
        "latency_ms": sizes.s1_latency_ms,
        "windows_needed": math.ceil(sizes.s1_targets / sizes.s1_route_limit),
        "rows": rows,
        "skipped": skipped,
    }


def scenario_2(sizes: Sizes) -> dict[str, Any]:
    """Client overhead: CPU per 1,000 creates, ldbulk against a bare aiohttp loop."""
    spec = SandboxSpec(
        projects=math.ceil(sizes.s2_targets / ENVIRONMENTS), environments=ENVIRONMENTS
    )
    runs: dict[str, list[dict[str, Any]]] = {"ldbulk": [], "bare_aiohttp": []}
    with SandboxProcess(spec) as sandbox:
        for repeat in range(sizes.s2_repeats):
            # Alternate the contenders so drift in the machine's speed hits both alike.
            for contender in runs:
                log(f"scenario 2: {contender}, run {repeat + 1} of {sizes.s2_repeats}")
                sandbox.reset()
                before = sandbox.stats()
                line = run_client(
                    sandbox,
                    {
                        "contender": contender,
                        "targets": sizes.s2_targets,
                        "environments": ENVIRONMENTS,
                        "concurrency": sizes.s2_concurrency,
                    },
                )
                counts = sandbox_counts(before, sandbox.stats())
                runs[contender].append(
                    {
                        "cpu_s": line["cpu_s"],
                        "elapsed_s": line["elapsed_s"],
                        "cpu_per_1000_s": line["cpu_s"] * 1000 / max(counts["requests"], 1),
                        "client": line,
                        **counts,
                    }
                )
    medians = {
        contender: statistics.median(run["cpu_per_1000_s"] for run in contender_runs)
        for contender, contender_runs in runs.items()
    }
    return {
        "targets": sizes.s2_targets,
        "concurrency": sizes.s2_concurrency,
        "repeats": sizes.s2_repeats,
        "runs": runs,
        "median_cpu_per_1000_s": medians,
        "ratio": medians["ldbulk"] / medians["bare_aiohttp"],
    }


def scenario_3(sizes: Sizes) -> dict[str, Any]:
    """Scale: wall time and peak RSS of the ldbulk process at two sizes, ten times apart."""
    spec = SandboxSpec(projects=sizes.s3_projects, environments=ENVIRONMENTS)
    rows = []
    with SandboxProcess(spec) as sandbox:
        for targets in sizes.s3_sizes:
            log(f"scenario 3: ldbulk, {targets} targets")
            sandbox.reset()
            before = sandbox.stats()
            line = run_client(
                sandbox, {"contender": "ldbulk", "targets": targets, "environments": ENVIRONMENTS}
            )
            counts = sandbox_counts(before, sandbox.stats())
            rows.append(
                {
                    "targets": targets,
                    "elapsed_s": line["elapsed_s"],
                    "cpu_s": line["cpu_s"],
                    "baseline_rss_mb": line["baseline_rss_kb"] / 1024,
                    "peak_rss_mb": line["peak_rss_kb"] / 1024,
                    "client": line,
                    **counts,
                }
            )
    for row in rows:
        row["above_baseline_mb"] = row["peak_rss_mb"] - row["baseline_rss_mb"]
        row["above_baseline_kb_per_target"] = row["above_baseline_mb"] * 1024 / row["targets"]
    small, large = rows
    return {
        "rows": rows,
        "size_ratio": large["targets"] / small["targets"],
        "wall_growth": large["elapsed_s"] / small["elapsed_s"],
        "rss_growth": large["peak_rss_mb"] / small["peak_rss_mb"],
        "rss_above_baseline_growth": above_baseline_growth(
            small["above_baseline_mb"], large["above_baseline_mb"]
        ),
    }


# Below this, the growth of a run above the baseline is page-cache and allocator noise: a
# ratio against it means nothing (it printed x17421875000 when the small run grew 0 bytes).
MIN_MEASURABLE_MB: Final = 1.0


def above_baseline_growth(small_mb: float, large_mb: float) -> float | None:
    """How many times the larger run's memory above the baseline is the smaller's; None when
    the smaller run's is too small to measure."""
    if small_mb < MIN_MEASURABLE_MB:
        return None
    return large_mb / small_mb


def scenario_4(sizes: Sizes) -> dict[str, Any]:
    """Re-runs: the same targets created, then applied again create-only (one listing) and
    converging (each integration read back), each run a process of its own."""
    spec = SandboxSpec(
        projects=math.ceil(sizes.s4_targets / ENVIRONMENTS), environments=ENVIRONMENTS
    )
    runs = []
    with SandboxProcess(spec) as sandbox:
        for attempt, label, create_only in (
            (1, "1: creates", False),
            (2, "2: --create-only", True),
            (3, "3: converging", False),
        ):
            log(f"scenario 4: ldbulk, run {attempt} of 3, {sizes.s4_targets} targets")
            before = sandbox.stats()
            line = run_client(
                sandbox,
                {
                    "contender": "ldbulk",
                    "targets": sizes.s4_targets,
                    "environments": ENVIRONMENTS,
                    "create_only": create_only,
                },
            )
            counts = sandbox_counts(before, sandbox.stats())
            runs.append(
                {
                    "run": label,
                    "report_requests": line["requests"],
                    "outcomes": line["outcomes"],
                    "elapsed_s": line["elapsed_s"],
                    **counts,
                }
            )
    return {"targets": sizes.s4_targets, "runs": runs}


def run_clients(sandbox: SandboxProcess, specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run several contenders at once, each in a subprocess of its own; their lines."""
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.client", json.dumps(spec)],
            env=sandbox.client_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    lines = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=CLIENT_TIMEOUT_S)
        if process.returncode != 0:
            raise RuntimeError(
                f"client exited {process.returncode}:\n" + sandbox.scrub(stderr)[-4000:]
            )
        lines.append(json.loads(stdout.strip().splitlines()[-1]))
    return lines


def scenario_5(sizes: Sizes) -> dict[str, Any]:
    """Shared budget: 2 and 4 runs at once on one account, and one run against other clients'
    load of half the route limit; 429 share and total time against the bound."""
    limit, window_s = sizes.s5_route_limit, sizes.s5_window_s
    rows = []
    for runs, background in sizes.s5_cases:
        total = sizes.s5_targets if background == 0 else sizes.s5_targets // 2
        spec = SandboxSpec(
            projects=math.ceil(total / ENVIRONMENTS),
            environments=ENVIRONMENTS,
            route_limit=limit,
            window_s=window_s,
            latency_ms=20.0,
            background_rate=background,
        )
        share = total // runs
        log(f"scenario 5: {runs} run(s) of {share} creates, background {background}/window")
        with SandboxProcess(spec) as sandbox:
            before = sandbox.stats()
            lines = run_clients(
                sandbox,
                [
                    {
                        "contender": "ldbulk",
                        "targets": share,
                        "first": share * index,
                        "environments": ENVIRONMENTS,
                        "align_window_s": window_s,
                        "align_offset_s": 0.05,
                    }
                    for index in range(runs)
                ],
            )
            counts = sandbox_counts(before, sandbox.stats())
        started = min(line["started_epoch"] for line in lines)
        ended = max(line["started_epoch"] + line["elapsed_s"] for line in lines)
        available = limit - background
        ideal = ideal_s(started, total, available, window_s, 0.02)
        rows.append(
            {
                "runs": runs,
                "background": background,
                "creates": total,
                "elapsed_s": ended - started,
                "ideal_s": ideal,
                "windows_bound": math.ceil(total / available),
                "windows_used": math.floor(ended / window_s) - math.floor(started / window_s) + 1,
                "throttled_share": counts["throttled"] / max(counts["requests"], 1),
                "created": sum(line["created"] for line in lines),
                **counts,
            }
        )
    return {"route_limit": limit, "window_s": window_s, "rows": rows}


SCENARIOS: Final = {
    1: scenario_1,
    2: scenario_2,
    3: scenario_3,
    4: scenario_4,
    5: scenario_5,
}


def run_scenarios(sizes: Sizes, which: Sequence[int]) -> dict[str, Any]:
    """Run the chosen scenarios in order; the results keyed by number (``"1"``...)."""
    return {str(number): SCENARIOS[number](sizes) for number in which}
