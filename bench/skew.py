"""Pacing against a server whose clock is not the client's.

LaunchDarkly's ``X-Ratelimit-Reset`` is an epoch time on its own clock. A run that read it on
the local clock would send early (a server 30 s behind: every reset looks long past) or wait
for nothing (30 s ahead). ldbulk reads the server's ``Date`` and paces on the server's time:
each row is one run against a sandbox whose clock is off by the row's offset, and should cost
what the run without skew costs.
"""

from __future__ import annotations

import math
from typing import Any, Final

import attrs

from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import ENVIRONMENTS, log, run_clients, sandbox_counts
from bench.shared import SharedSizes, ldbulk_run, row_of


@attrs.frozen(kw_only=True)
class SkewSizes:
    """The sandbox's limit, windows and latency, the run's creates, and the clock offsets (a
    whole number of windows, so that the windows fall where the bound puts them)."""

    route_limit: int
    window_s: float
    latency_ms: float
    creates: int
    offsets_s: tuple[float, ...]


FULL_SKEW: Final = SkewSizes(
    route_limit=100, window_s=10.0, latency_ms=80.0, creates=300, offsets_s=(-30.0, 0.0, 30.0)
)
SMOKE_SKEW: Final = SkewSizes(
    route_limit=4, window_s=0.5, latency_ms=5.0, creates=12, offsets_s=(-1.5, 0.0, 1.5)
)


def _one(sizes: SkewSizes, offset_s: float) -> dict[str, Any]:
    log(f"skew: {sizes.creates} creates, the server's clock {offset_s:+g} s")
    spec = SandboxSpec(
        projects=math.ceil(sizes.creates / ENVIRONMENTS),
        environments=ENVIRONMENTS,
        route_limit=sizes.route_limit,
        window_s=sizes.window_s,
        latency_ms=sizes.latency_ms,
        clock_offset_s=offset_s,
    )
    with SandboxProcess(spec) as sandbox:
        before = sandbox.stats()
        lines = run_clients(sandbox, [ldbulk_run(sizes.creates, 0, sizes.window_s)])
        counts = sandbox_counts(before, sandbox.stats())
    shape = SharedSizes(
        route_limit=sizes.route_limit, window_s=sizes.window_s, latency_ms=sizes.latency_ms,
        each_run=sizes.creates, apart_s=0.0, beside_background=0, background_per_s=0.0,
        background_s=0.0,
    )
    row = row_of(shape, lines, counts, {}, others=0)
    return {"offset_s": offset_s} | {
        key: row[key]
        for key in ("creates", "elapsed_s", "ideal_s", "ratio", "windows_used",
                    "windows_bound", "requests", "throttled")
    }


def scenario_skew(sizes: SkewSizes) -> dict[str, Any]:
    """One run per clock offset."""
    return {
        "route_limit": sizes.route_limit,
        "window_s": sizes.window_s,
        "latency_ms": sizes.latency_ms,
        "rows": [_one(sizes, offset) for offset in sizes.offsets_s],
    }


def skew_goals(skew: dict[str, Any], goal: Any) -> None:
    """Whatever the server's clock: <= 1% 429s, and within one window of the bound."""
    for row in skew["rows"]:
        case = f"server clock {row['offset_s']:+g} s"
        share = row["throttled"] / max(row["requests"], 1)
        goal("skew", f"{case}: <= 1% 429s", share <= 0.01,
             f"{row['throttled']} of {row['requests']} ({share:.1%})")
        goal("skew", f"{case}: within one window of the bound",
             row["windows_used"] <= row["windows_bound"] + 1,
             f"{row['windows_used']} windows for a bound of {row['windows_bound']}")


def skew_markdown(skew: dict[str, Any], table: Any) -> list[str]:
    """The section of results.md: one row per offset."""
    out = [
        f"## Clock skew: route limit {skew['route_limit']} per {skew['window_s']:g} s window, "
        f"{skew['latency_ms']:g} ms added latency",
        "",
        "One run against a sandbox whose clock (its resets and `Date`) is off by the offset. "
        "**Bound** = the least time the creates take at the limit from the run's start.",
        "",
    ]
    rows = [
        [
            f"{row['offset_s']:+g} s",
            str(row["creates"]),
            f"{row['elapsed_s']:.2f}",
            f"{row['ideal_s']:.2f}",
            f"{row['ratio']:.2f}",
            f"{row['windows_used']} / {row['windows_bound']}",
            f"{row['throttled']} of {row['requests']}",
        ]
        for row in skew["rows"]
    ]
    header = ["server clock", "creates", "elapsed s", "bound s", "ratio", "windows / bound",
              "429s"]
    return [*out, *table(header, rows), ""]
