"""The machine a run happened on, the goals, and results.md / results.json."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.cpu import cpu_goals, cpu_markdown
from bench.export_scale import export_goals, export_markdown
from bench.partition import partition_goals, partition_markdown
from bench.results_grid import grid_goals, grid_markdown, scale_goals, scale_markdown
from bench.shared import shared_goals, shared_markdown
from bench.skew import skew_goals, skew_markdown

# The sections each scenario module renders and judges itself, in the order results.md and
# the goals table list them (the grid's section is told whether to judge its cells).
_SECTION_GOALS: Final[tuple[tuple[str, Callable[[Any, Any], None]], ...]] = (
    ("cpu", cpu_goals),
    ("grid", grid_goals),
    ("scale", scale_goals),
    ("partition", partition_goals),
    ("export", export_goals),
    ("shared", shared_goals),
    ("skew", skew_goals),
)
_SECTION_MARKDOWN: Final[tuple[tuple[str, Callable[[Any, Any], list[str]]], ...]] = (
    ("shared", shared_markdown),
    ("skew", skew_markdown),
    ("cpu", cpu_markdown),
    ("grid", grid_markdown),
    ("scale", scale_markdown),
    ("partition", partition_markdown),
    ("export", export_markdown),
)

NOTES: Final = Path(__file__).with_name("notes.md")

PEERS: Final = {
    "ldbulk": "ldbulk (`provision`, default concurrency)",
    "terraform": "(a) Terraform provider policy",
    "gather": "(b) `gather` + aiolimiter 20 req/s + exp. backoff",
    "official": "(c) official `launchdarkly-api` client, sequential",
}


def machine() -> dict[str, Any]:
    """CPU model and cores (from /proc/cpuinfo), Python, packages, date, commit."""
    model = "unknown"
    cores = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, fixed args
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu_model": model,
        "cores": cores or os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine skews the timings: the load when the run began says how much.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
        "packages": {
            name: version(name) for name in ("ldbulk", "aiohttp", "aiolimiter", "launchdarkly-api")
        },
    }


def goals(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal that the run measured: met or not, and the numbers that say so."""
    found: list[dict[str, Any]] = []

    def goal(scenario: str, text: str, met: bool, measured: str) -> None:
        found.append({"scenario": scenario, "goal": text, "met": met, "measured": measured})

    if "1" in scenarios:
        rows = {row["contender"]: row for row in scenarios["1"]["rows"]}
        ours = rows["ldbulk"]
        goal("1", "elapsed <= 1.05 x ideal", ours["ratio"] <= 1.05, f"{ours['ratio']:.3f} x")
        goal(
            "1",
            "<= 1% of requests answered 429",
            ours["throttled_share"] <= 0.01,
            f"{ours['throttled']} of {ours['requests']} ({ours['throttled_share']:.1%})",
        )
        slowest_margin = min(
            row["elapsed_s"] - ours["elapsed_s"] for name, row in rows.items() if name != "ldbulk"
        )
        all_done = all(row["integrations"] == scenarios["1"]["targets"] for row in rows.values())
        goal(
            "1",
            "ahead of every peer policy",
            slowest_margin > 0,
            f"closest peer {slowest_margin:+.1f} s behind"
            + ("" if all_done else " (some contender left targets unprovisioned)"),
        )
    if "2" in scenarios:
        ratio = scenarios["2"]["ratio"]
        goal("2", "CPU per request <= 1.5 x bare aiohttp", ratio <= 1.5, f"{ratio:.2f} x")
    if "3" in scenarios:
        s3 = scenarios["3"]
        large = s3["rows"][-1]
        goal(
            "3",
            f"peak RSS at {large['targets']:,} targets <= 150 MB",
            large["peak_rss_mb"] <= 150,
            f"{large['peak_rss_mb']:.1f} MB",
        )
        growth = s3["rss_above_baseline_growth"]
        goal(
            "3",
            "peak RSS above the import baseline grows sub-linearly",
            growth is not None and growth < s3["size_ratio"],
            _above_baseline(s3),
        )
    if "4" in scenarios:
        second = scenarios["4"]["runs"][1]
        goal(
            "4",
            "create-only re-run sends 1 request, no writes",
            second["requests"] == 1 and second["creates_sent"] == 0,
            f"{second['requests']} request(s), {second['creates_sent']} create(s)",
        )
    for name, goals_of in _SECTION_GOALS:
        if name in scenarios:
            goals_of(scenarios[name], goal)
    if "5" in scenarios:
        for row in scenarios["5"]["rows"]:
            name = _shared_case(row)
            if row["background"]:
                goal("5", f"{name}: <= 5% 429s", row["throttled_share"] <= 0.05, _share(row))
            elif row["runs"] == 2:
                goal("5", f"{name}: <= 10% 429s", row["throttled_share"] <= 0.10, _share(row))
                goal(
                    "5",
                    f"{name}: within one window of the bound",
                    row["windows_used"] <= row["windows_bound"] + 1,
                    f"{row['windows_used']} windows for a bound of {row['windows_bound']}",
                )
    return found


def _above_baseline(s3: dict[str, Any]) -> str:
    """Scenario 3's growth above the import baseline, with each size's KB per target."""

    def above_mb(row: dict[str, Any]) -> float:
        # Results of earlier runs (``--render``) have the two figures only.
        return float(row.get("above_baseline_mb", row["peak_rss_mb"] - row["baseline_rss_mb"]))

    per_target = ", ".join(f"{above_mb(row) * 1024 / row['targets']:.2f}" for row in s3["rows"])
    growth = s3["rss_above_baseline_growth"]
    if growth is None:
        small = s3["rows"][0]
        return (
            f"not measurable: {small['targets']:,} targets grew "
            f"{above_mb(small):.2f} MB above the baseline ({per_target} KB/target)"
        )
    return f"x{growth:.2f} for x{s3['size_ratio']:.0f} targets ({per_target} KB/target)"


def _shared_case(row: dict[str, Any]) -> str:
    if row["background"]:
        return f"1 run, others spend {row['background']}/window"
    return f"{row['runs']} runs at once"


def _share(row: dict[str, Any]) -> str:
    return f"{row['throttled']} of {row['requests']} ({row['throttled_share']:.1%})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    aligns = ["---" if i == 0 else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _taken_elsewhere(m: dict[str, Any], scenarios: dict[str, Any]) -> list[str]:
    """A line for the sections kept from an earlier run (``python -m bench --merge``)."""
    earlier: dict[tuple[str, str, str], list[str]] = {}
    for name, result in scenarios.items():
        taken = result.get("taken", m)
        if taken["commit"] != m["commit"] or taken["date"] != m["date"]:
            # A machine is named only where it differs from this run's.
            cpu = taken.get("cpu_model", "")
            where = f", on {cpu}" if cpu and cpu != m["cpu_model"] else ""
            earlier.setdefault((taken["commit"], taken["date"], where), []).append(name)
    return [
        f"- Kept from an earlier run: {', '.join(names)} (commit {commit}, {date}{where})"
        for (commit, date, where), names in earlier.items()
    ]


def to_markdown(data: dict[str, Any]) -> str:
    """results.md: the machine, one table per scenario, the goals, and the notes."""
    m = data["machine"]
    scenarios = data["scenarios"]
    out = [
        "# ldbulk benchmarks"
        + (" (smoke run: tiny sizes, numbers mean nothing)" if data["smoke"] else ""),
        "",
        f"- Machine: {m['cpu_model']}, {m['cores']} cores; Python {m['python']}; {m['platform']}"
        + (
            f"; load average {', '.join(str(x) for x in m['load_average'])} at the start"
            if "load_average" in m
            else ""
        ),
        f"- Date: {m['date']}; commit {m['commit']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "- Every client runs in its own subprocess, the sandbox (`python -m ldbulk sandbox`) in "
        "another, on loopback. CPU is `time.process_time()` of the client process over the run; "
        "peak RSS is its `ru_maxrss`. Request and 429 counts come from the sandbox's own stats.",
        "- Reproduce: `python -m bench` (this file and results.json); `python -m bench --smoke` "
        "for the CI-sized version.",
        *_taken_elsewhere(m, scenarios),
        "",
    ]
    if "1" in scenarios:
        s1 = scenarios["1"]
        out += [
            f"## 1. Rate-limit bound: {s1['targets']} creates, route limit {s1['route_limit']} "
            f"per {s1['window_s']:g} s window, {s1['latency_ms']:g} ms added latency",
            "",
            f"The creates need {s1['windows_needed']} windows. Windows are fixed and start at "
            "multiples of the window length in epoch time; every contender starts 50 ms after a "
            "window opens, against a fresh sandbox process. **Ideal** = from the start to the "
            f"opening of window {s1['windows_needed']}, counting the start's window as 1 (the "
            "first moment the last "
            f"{s1['route_limit']} creates may be sent), plus one round trip "
            f"({s1['latency_ms']:g} ms) for sending them all at once: "
            f"{s1['rows'][0]['ideal_s']:.2f} s here.",
            "",
        ]
        rows = []
        for row in s1["rows"]:
            rows.append(
                [
                    PEERS[row["contender"]],
                    f"{row['elapsed_s']:.2f}",
                    f"{row['ratio']:.3f}",
                    str(row["requests"]),
                    f"{row['throttled']} ({row['throttled_share']:.1%})",
                    f"{row['integrations']}/{s1['targets']}",
                    f"{row['cpu_s']:.2f}",
                ]
            )
        out += _table(
            [
                "contender",
                "elapsed s",
                "elapsed / ideal",
                "requests",
                "429s",
                "created",
                "client CPU s",
            ],
            rows,
        )
        out.append("")
        for name in s1.get("skipped", []):
            out += [f"{PEERS[name]}: not run, `launchdarkly-api` is not installed.", ""]
    if "2" in scenarios:
        s2 = scenarios["2"]
        med = s2["median_cpu_per_1000_s"]
        out += [
            f"## 2. Client overhead: {s2['targets']:,} creates, {s2['concurrency']} in flight, "
            "no rate limit",
            "",
            f"Median of {s2['repeats']} runs each, alternating, the sandbox reset before each. "
            "The bare loop posts the same bodies with the same headers and parses each answer "
            "for the new id; nothing else.",
            "",
        ]
        rows = []
        for contender, runs in s2["runs"].items():
            rows.append(
                [
                    "ldbulk (`provision`)" if contender == "ldbulk" else "bare aiohttp loop",
                    f"{med[contender]:.3f}",
                    ", ".join(f"{r['cpu_per_1000_s']:.3f}" for r in runs),
                    f"{statistics_median(r['elapsed_s'] for r in runs):.2f}",
                    str(runs[0]["requests"]),
                ]
            )
        out += _table(
            ["client", "CPU s / 1,000 requests", "each run", "wall s (median)", "requests"], rows
        )
        out += ["", f"Ratio ldbulk / bare: **{s2['ratio']:.2f} x**.", ""]
    if "3" in scenarios:
        s3 = scenarios["3"]
        out += [
            "## 3. Scale: ldbulk, no rate limit, default concurrency",
            "",
            "Baseline RSS is the process's resident set (VmRSS) after importing ldbulk, before "
            "building targets; peak RSS its `ru_maxrss`.",
            "",
        ]
        rows = [
            [
                f"{row['targets']:,}",
                f"{row['elapsed_s']:.2f}",
                f"{row['cpu_s']:.2f}",
                f"{row['baseline_rss_mb']:.1f}",
                f"{row['peak_rss_mb']:.1f}",
                str(row["requests"]),
            ]
            for row in s3["rows"]
        ]
        out += _table(
            ["targets", "wall s", "client CPU s", "baseline RSS MB", "peak RSS MB", "requests"],
            rows,
        )
        out += [
            "",
            f"For x{s3['size_ratio']:.0f} targets: wall x{s3['wall_growth']:.2f}, peak RSS "
            f"x{s3['rss_growth']:.2f}; above the baseline: {_above_baseline(s3)}.",
            "",
        ]
    if "4" in scenarios:
        s4 = scenarios["4"]
        out += [
            f"## 4. Re-runs: the same {s4['targets']} targets applied three times",
            "",
            "Each run is its own process (as a nightly job would be); requests counted by the "
            "sandbox and by the run's report (`report.stats.requests`). The converging re-run "
            "reads each integration by id (the list carries no config); `apply --state` skips "
            "the reads of those still at the version an earlier run left (README, Converge).",
            "",
        ]
        rows = [
            [
                str(run["run"]),
                str(run["requests"]),
                str(run["report_requests"]),
                str(run["creates_sent"]),
                ", ".join(f"{k} {v}" for k, v in sorted(run["outcomes"].items())),
                f"{run['elapsed_s']:.2f}",
            ]
            for run in s4["runs"]
        ]
        out += _table(
            ["run", "requests (sandbox)", "requests (report)", "creates", "outcomes", "wall s"],
            rows,
        )
        out.append("")
    if "5" in scenarios:
        s5 = scenarios["5"]
        out += [
            f"## 5. Shared budget: route limit {s5['route_limit']} per {s5['window_s']:g} s "
            "window, 20 ms added latency",
            "",
            "Runs at once are separate processes on one account (each with its own client), "
            "started together 50 ms into a window; the background is other clients' load, "
            "spread over every window by the sandbox (`--background-rate`). **Bound** = the "
            "windows the creates need at the limit the others leave.",
            "",
        ]
        rows = [
            [
                _shared_case(row),
                str(row["creates"]),
                f"{row['elapsed_s']:.2f}",
                f"{row['ideal_s']:.2f}",
                f"{row['windows_used']} / {row['windows_bound']}",
                str(row["requests"]),
                f"{row['throttled']} ({row['throttled_share']:.1%})",
            ]
            for row in s5["rows"]
        ]
        out += _table(
            ["case", "creates", "elapsed s", "ideal s", "windows used / bound", "requests", "429s"],
            rows,
        )
        out.append("")
    for name, markdown_of in _SECTION_MARKDOWN:
        if name == "grid" and name in scenarios:
            out += grid_markdown(scenarios[name], _table, verdicts=not data["smoke"])
        elif name in scenarios:
            out += markdown_of(scenarios[name], _table)
    if not data["smoke"]:
        out += ["## Goals", ""]
        out += _table(
            ["scenario", "goal", "measured", "met"],
            [
                [g["scenario"], g["goal"], g["measured"], "yes" if g["met"] else "**no**"]
                for g in data["goals"]
            ],
        )
        out.append("")
    if not data["smoke"] and NOTES.exists():
        out += ["## Notes", "", NOTES.read_text().strip(), ""]
    return "\n".join(out)


def statistics_median(values: Any) -> float:
    """The median of an iterable of numbers."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float(ordered[middle - 1] + ordered[middle]) / 2
