"""results.md's parts for the grid (:mod:`bench.grid`) and the command line's scale
(:mod:`bench.cli_scale`): their tables and their goals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.cli_scale import APPLY_PEAK_MB, PLAN_S

Goal = Callable[[str, str, bool, str], None]
Table = Callable[[list[str], list[list[str]]], list[str]]


def cell_verdict(row: dict[str, Any]) -> str:
    """``met``, or what the cell missed."""
    checks = row["verdict"]
    if checks["met"]:
        return "met"
    missed = []
    if not checks["windows"]:
        missed.append(f"{row['windows_used']} windows for {row['windows_min']}")
    if not checks["throttled"]:
        missed.append(f"{row['throttled']} 429s")
    if not checks["time"]:
        missed.append(f"{row['excess_s'] - row['allowance_s']:+.2f} s over the allowance")
    if not checks.get("created", True):
        missed.append(f"{row['integrations']}/{row['creates']} created")
    return "**missed**: " + "; ".join(missed)


def grid_goals(grid: dict[str, Any], goal: Goal) -> None:
    """One goal per criterion over ldbulk's cells (each cell's verdict is in the grid table)."""
    ours = [row for row in grid["rows"] if row["contender"] == "ldbulk"]
    if not ours:
        return
    total = len(ours)
    for key, text in (
        ("windows", "every cell: windows used = the minimum"),
        ("throttled", "every cell: no 429 (runs start in a fresh window)"),
        ("time", f"every cell: last create within {grid['allowance']} of the bound"),
    ):
        met = sum(1 for row in ours if row["verdict"][key])
        goal("grid", text, met == total, f"{met} of {total} cells")


def scale_goals(scale: dict[str, Any], goal: Goal) -> None:
    """Peak RSS of apply and wall time of plan, against the goals (reported, not asserted)."""
    rows = {row["command"]: row for row in scale["rows"]}
    targets = f"{scale['targets']:,}"
    apply = rows["apply --report"]
    goal(
        "scale",
        f"`ldbulk apply --report` of {targets} targets: peak RSS <= {APPLY_PEAK_MB:g} MB",
        apply["peak_rss_mb"] <= APPLY_PEAK_MB,
        f"{apply['peak_rss_mb']:.1f} MB ({apply['above_baseline_kb_per_target']:.2f} KB/target "
        "above the import baseline)",
    )
    plan = rows["plan"]
    goal(
        "scale",
        f"`ldbulk plan` of {targets} targets: <= {PLAN_S:g} s",
        plan["wall_s"] <= PLAN_S,
        f"{plan['wall_s']:.1f} s, {plan['peak_rss_mb']:.1f} MB",
    )
    rerun = next((row for row in scale["rows"] if "found" in row), None)
    if rerun is not None:
        goal(
            "scale",
            f"create-only re-run against {rerun['targets']:,} existing integrations: one "
            "listing, every target found",
            rerun["listings"] == 1 and rerun["found"] == rerun["targets"],
            f"{rerun['listings']} listing(s), {rerun['found']:,} found, {rerun['wall_s']:.1f} s, "
            f"{rerun['peak_rss_mb']:.1f} MB",
        )


def _cell(row: dict[str, Any]) -> list[str]:
    return [
        f"{row['creates']:,}",
        str(row["limit"]),
        f"{row['latency_ms']:g}",
        f"{row['phase_s']:g}",
    ]


def _serving(grid: dict[str, Any]) -> str:
    rate = grid.get("serve_per_s")
    if rate is None:
        return "not measured in this run: counted as instant"
    return (
        f"{rate:,.0f} creates/s, the fastest of the bare aiohttp loop's runs with every create "
        "in flight, no limit and no added latency; the *serve s* column"
    )


def _timing(row: dict[str, Any]) -> list[str]:
    return [
        f"{row['elapsed_s']:.2f}",
        f"{row['bound_s']:.2f}",
        f"{row.get('serve_s', 0.0):.2f}",
        f"{row['ratio']:.2f}",
        f"{row['excess_s']:+.2f} ({row['allowance_s']:.2f})",
        f"{row['windows_used']} / {row['windows_min']}",
        f"{row['throttled']} ({row['throttled_share']:.1%})",
    ]


def grid_markdown(grid: dict[str, Any], table: Table, *, verdicts: bool = True) -> list[str]:
    """The grid's section: how to read it, ldbulk's cells, then the peers' cells (without
    the verdicts for a smoke run, whose sizes judge nothing)."""
    window = f"{grid['window_s']:g} s"
    out = [
        "## Grid: the command line against the physical bound",
        "",
        "Each row is one `ldbulk apply --report` of a generated manifest (explicit targets) "
        "against a sandbox with that route limit per "
        f"{window} window and that added latency, reset before the run. The command starts "
        "*phase* s into a window (after Python's start-up: `bench/cli_run.py`). **Last "
        "create** = from the start to the last target settled (the journal's last write). "
        "**Bound** = the earliest that moment can be: every window's budget sent at the "
        "window's start, answered one round trip later, the last window's creates at the rate "
        f"the sandbox serves them ({_serving(grid)}). **Excess** = last create - bound, "
        f"against the allowance ({grid['allowance']}). **Windows** = used / the fewest the "
        "creates fit in. 429s are the sandbox's count, share of all requests. A cell is "
        "met when windows used = the minimum, no 429 (every run starts in a fresh window), "
        "the excess within the allowance and every target created.",
        "",
    ]
    header = [
        "creates", "limit", "latency ms", "phase s", "last create s", "bound s", "serve s",
        "ratio", "excess s (allowed)", "windows", "429s", "verdict",
    ]  # fmt: skip
    judge = cell_verdict if verdicts else (lambda row: "-")
    ours = [row for row in grid["rows"] if row["contender"] == "ldbulk"]
    ours.sort(key=lambda r: (r["creates"], r["limit"], r["latency_ms"], r["phase_s"]))
    out += table(header, [[*_cell(r), *_timing(r), judge(r)] for r in ours])
    peers = [row for row in grid["rows"] if row["contender"] != "ldbulk"]
    if peers:
        out += [
            "",
            "The peers (bench/peers) on some cells, started at the same phase, with ldbulk's "
            "row of the same cell first:",
            "",
        ]
        rows = []
        for peer in peers:
            same = [r for r in ours if _cell(r) == _cell(peer)]
            for row in [*same, peer]:
                created = f"{row['integrations']}/{row['creates']}"
                rows.append([*_cell(row), row["contender"], *_timing(row), created, judge(row)])
        header = [*header[:4], "contender", *header[4:11], "created", "verdict"]
        out += table(header, _unique(rows))
    out += [
        "",
        f"The grid took {grid['took_s'] / 60:.1f} min (forecast "
        f"{grid['expected_s'] / 60:.1f} min).",
        "",
    ]
    return out


def _unique(rows: list[list[str]]) -> list[list[str]]:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for row in rows:
        if tuple(row) not in seen:
            seen.add(tuple(row))
            kept.append(row)
    return kept


def scale_markdown(scale: dict[str, Any], table: Table) -> list[str]:
    """The command line's scale section: one row per command."""
    base = scale["startup"]
    out = [
        f"## Scale on the command line: {scale['targets']:,} targets",
        "",
        "Each command is the `ldbulk` console script in a process of its own, given a "
        "generated manifest of explicit targets, against a sandbox without rate limits (plan "
        "before apply: every target would be created). Wall time from the process's start "
        "to its exit; peak RSS is the command's `ru_maxrss`, as `wait4` reports it to a small "
        "launcher (spawned from the benchmark's own process, it would start from that "
        "process's peak). `ldbulk --version` "
        f"takes {base['wall_s']:.2f} s and {base['peak_rss_mb']:.1f} MB: the start-up and "
        "import baseline included in every row. Then an `apply` against a "
        "sandbox that stores some creates and cuts their connection before answering: each "
        "is sent again, answered 409, and settled by a listing of the account (*listings* "
        "counts them all, the run's first included). Last, a create-only re-run "
        "against a sandbox that already holds an integration for every target, as a "
        "nightly job meets an account it provisioned: its whole cost is one listing of the "
        "account, read as it arrives.",
        "",
    ]
    rows = [
        [
            f"`ldbulk {row['command']}`",
            f"{row.get('targets', scale['targets']):,}",
            f"{row['wall_s']:.2f}",
            f"{row['cpu_s']:.2f}",
            f"{row['peak_rss_mb']:.1f}",
            f"{row['above_baseline_kb_per_target']:.2f}",
            str(row["requests"]),
            str(row.get("listings", "-")),
            str(row.get("lost", "-")),
            str(row["exit_code"]),
        ]
        for row in scale["rows"]
    ]
    out += table(
        ["command", "targets", "wall s", "CPU s", "peak RSS MB", "KB/target above baseline",
         "requests", "listings", "answers lost", "exit"],
        rows,
    )  # fmt: skip
    out.append("")
    return out
