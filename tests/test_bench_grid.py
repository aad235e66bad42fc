"""The benchmark's grid, command-line scale and peers: their arithmetic, manifests and
rendering, proved without timing anything."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# The benchmarks are a folder beside the package, not an installed one: importable from the
# repository's root, which pytest's own entry point does not put on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.client import pairs_of
from bench.grid import (
    Cell,
    GridSizes,
    bound_s,
    expected_s,
    last_batch,
    measured_row,
    next_cell,
    verdict,
    windows_min,
    windows_used,
)
from bench.manifest import manifest_text
from bench.results import goals, to_markdown
from bench.run import SCENARIO_NAMES
from bench.scenarios import above_baseline_growth
from ldbulk.manifest.load import loads_manifest
from ldbulk.sandbox import Sandbox

Sandboxes = Callable[..., Awaitable[Any]]
WINDOW = 10.0
EPOCH = 1_700_000_000.0  # a multiple of 10: a window starts here


def test_bound_at_a_window_start_is_the_last_windows_start_plus_a_round_trip() -> None:
    cell = Cell(creates=1000, limit=200, latency_ms=50.0, phase_s=0.0)
    # Five windows: the last batch goes at the fifth window's start, 40 s in.
    assert bound_s(cell, EPOCH, WINDOW) == pytest.approx(40.05)
    assert windows_min(cell) == 5


def test_bound_late_in_a_window_counts_the_rest_of_that_window_as_the_first() -> None:
    cell = Cell(creates=200, limit=50, latency_ms=300.0, phase_s=6.5)
    # 3.5 s left in the first window, then three more windows: the last opens at 23.5 s.
    assert bound_s(cell, EPOCH + 6.5, WINDOW) == pytest.approx(23.8)
    one_window = Cell(creates=200, limit=1000, latency_ms=300.0, phase_s=6.5)
    assert bound_s(one_window, EPOCH + 6.5, WINDOW) == pytest.approx(0.3)


def test_bound_adds_the_time_the_server_takes_to_answer_the_last_windows_creates() -> None:
    at_once = Cell(creates=1000, limit=1000, latency_ms=300.0, phase_s=0.05)
    # 1,000 creates answered at 1,250 a second: 0.8 s after the round trip.
    assert bound_s(at_once, EPOCH + 0.05, WINDOW, serve_per_s=1250) == pytest.approx(1.1)
    assert bound_s(at_once, EPOCH + 0.05, WINDOW) == pytest.approx(0.3)  # an instant server
    # Only the last window's batch: 200 of the 1,000 at limit 200, 50 of the 200 at limit 50.
    assert last_batch(Cell(creates=1000, limit=200, latency_ms=50.0, phase_s=0.0)) == 200
    assert last_batch(Cell(creates=200, limit=50, latency_ms=50.0, phase_s=0.0)) == 50
    assert last_batch(Cell(creates=230, limit=50, latency_ms=50.0, phase_s=0.0)) == 30
    row = measured_row(at_once, "ldbulk", EPOCH + 0.05, EPOCH + 1.6, WINDOW, serve_per_s=1250)
    assert row["serve_s"] == pytest.approx(0.8)
    assert row["excess_s"] == pytest.approx(0.45)


def test_windows_used_counts_the_last_admission_not_the_answer() -> None:
    # Admitted 10 ms before the second window, answered 40 ms into it: one window.
    assert windows_used(EPOCH + 0.05, EPOCH + 10.04, 0.05, WINDOW) == 1
    assert windows_used(EPOCH + 0.05, EPOCH + 10.06, 0.05, WINDOW) == 2
    assert windows_used(EPOCH + 6.5, EPOCH + 6.9, 0.3, WINDOW) == 1


def _row(**changes: Any) -> dict[str, Any]:
    cell = Cell(creates=200, limit=50, latency_ms=50.0, phase_s=0.05)
    row = measured_row(cell, "ldbulk", EPOCH + 0.05, EPOCH + 30.3, WINDOW)
    row |= {"requests": 201, "throttled": 0, "throttled_share": 0.0, "integrations": 200}
    return row | changes


def test_a_cell_at_the_bound_meets_every_criterion() -> None:
    row = _row()
    assert row["windows_used"] == row["windows_min"] == 4
    assert row["excess_s"] == pytest.approx(0.25, abs=1e-3)
    assert verdict(row) == {
        "windows": True,
        "throttled": True,
        "time": True,
        "created": True,
        "met": True,
    }


def test_one_429_in_a_fresh_window_misses_and_elsewhere_one_percent_is_allowed() -> None:
    assert not verdict(_row(throttled=1, throttled_share=1 / 201))["met"]
    assert verdict(_row(fresh=False, throttled=1, throttled_share=1 / 201))["met"]
    assert not verdict(_row(fresh=False, throttled=3, throttled_share=3 / 201))["met"]


def test_a_late_or_extra_window_or_a_missing_target_misses() -> None:
    assert not verdict(_row(excess_s=0.7))["time"]
    assert not verdict(_row(windows_used=5))["windows"]
    assert not verdict(_row(integrations=199))["created"]


def test_next_cell_is_the_one_whose_phase_comes_first_after_start_up() -> None:
    early = Cell(creates=200, limit=50, latency_ms=50.0, phase_s=0.05)
    late = Cell(creates=200, limit=50, latency_ms=50.0, phase_s=6.5)
    # Start-up ends 2.5 s later: from 1 s in, 6.5 s comes before the next window's start.
    assert next_cell([early, late], EPOCH + 1.0, WINDOW) is late
    assert next_cell([early, late], EPOCH + 5.0, WINDOW) is early


def test_the_full_grid_has_every_combination_and_a_forecast() -> None:
    sizes = GridSizes(
        creates=(200, 1000),
        limits=(50, 200, 1000),
        latencies_ms=(50.0, 300.0),
        phases_s=(0.05, 6.5),
        window_s=WINDOW,
    )
    assert len(sizes.cells()) == 24
    assert len({(c.creates, c.limit, c.latency_ms, c.phase_s) for c in sizes.cells()}) == 24
    assert expected_s(sizes, ()) > sum(bound_s(c, EPOCH + c.phase_s, WINDOW) for c in sizes.cells())


def test_the_generated_manifest_names_every_target_once() -> None:
    pairs = pairs_of({"targets": 250, "environments": 100})
    manifests = loads_manifest(manifest_text(pairs))
    named = [
        (selector.project, key.key)
        for selector in manifests.selectors
        for key in selector.environments.items
    ]
    assert named == pairs


def test_growth_above_baseline_is_not_a_ratio_against_nothing() -> None:
    assert above_baseline_growth(0.0, 27.0) is None
    assert above_baseline_growth(0.4, 27.0) is None
    assert above_baseline_growth(3.0, 27.0) == pytest.approx(9.0)


def _grid_data() -> dict[str, Any]:
    ours = _row() | {"exit_code": 0}
    peer = _row(contender="terraform", elapsed_s=40.0, excess_s=9.75, windows_used=5)
    for row in (ours, peer):
        row["verdict"] = verdict(row)
    return {
        "window_s": WINDOW,
        "allowance": "2 round trips + 0.5 s",
        "expected_s": 60.0,
        "took_s": 61.0,
        "rows": [ours, peer],
    }


def _scale_data() -> dict[str, Any]:
    def command(name: str, wall: float, peak: float) -> dict[str, Any]:
        return {
            "command": name, "wall_s": wall, "cpu_s": wall, "peak_rss_mb": peak,
            "above_baseline_kb_per_target": 1.0, "requests": 1, "exit_code": 0,
        }  # fmt: skip

    return {
        "targets": 100_000,
        "startup": {"wall_s": 1.5, "peak_rss_mb": 46.0},
        "rows": [
            command("validate", 3.0, 120.0),
            command("plan", 20.0, 300.0),
            command("apply --report", 60.0, 140.0),
        ],
    }


def test_results_show_the_grid_its_verdicts_and_the_scale_goals() -> None:
    scenarios = {"grid": _grid_data(), "scale": _scale_data()}
    found = goals(scenarios)
    by_goal = {g["goal"]: g for g in found}
    assert all(g["met"] for g in found if g["scenario"] == "grid")
    assert by_goal["`ldbulk apply --report` of 100,000 targets: peak RSS <= 150 MB"]["met"]
    assert not by_goal["`ldbulk plan` of 100,000 targets: <= 15 s"]["met"]
    machine = {
        "cpu_model": "Test CPU", "cores": 2, "python": "3.11", "platform": "linux",
        "date": "today", "commit": "abc", "packages": {}, "load_average": [0.5, 0.5, 0.5],
    }  # fmt: skip
    text = to_markdown({"smoke": False, "machine": machine, "scenarios": scenarios, "goals": found})
    assert "## Grid" in text
    assert "**missed**: 5 windows for 4" in text  # the peer's row
    assert "| 200 | 50 | 50 | 0.05 | 30.25 | 30.00 |" in text
    assert "Test CPU, 2 cores; Python 3.11" in text


def test_every_scenario_can_be_chosen_by_name() -> None:
    assert SCENARIO_NAMES[-2:] == ("grid", "scale")


@pytest.mark.skipif(
    importlib.util.find_spec("launchdarkly_api") is None, reason="needs the bench extra"
)
async def test_the_official_peer_retries_429s_through_the_clients_own_policy(
    make_sandbox: Sandboxes,
) -> None:
    from bench.peers import official

    assert official.retry_policy().is_retry("POST", 429, has_retry_after=False)
    # Six creates through a limit of three per window: the client waits Retry-After itself.
    # The sandbox's clock moves one window per 429 and not otherwise, so the fourth create
    # meets a spent window however slowly the machine sends them.
    started: list[Sandbox] = []

    def clock() -> float:
        return 1_000_000.0 + (started[0].stats.throttled if started else 0)

    sandbox = await make_sandbox(route_limit=3, window_s=1.0, retry_after=True, clock=clock)
    started.append(sandbox)
    pairs = [("proj-001", f"env-00{i}") for i in (1, 2, 3)]
    pairs += [("proj-002", f"env-00{i}") for i in (1, 2, 3)]
    result = await asyncio.to_thread(official.run, sandbox.url, sandbox.token, pairs)
    assert (result.created, result.failed) == (6, 0)
    assert sandbox.stats.throttled >= 1


def test_a_smoke_run_judges_nothing() -> None:
    machine = {
        "cpu_model": "Test CPU", "cores": 2, "python": "3.11", "platform": "linux",
        "date": "today", "commit": "abc", "packages": {},
    }  # fmt: skip
    scenarios = {"grid": _grid_data(), "scale": _scale_data()}
    text = to_markdown({"smoke": True, "machine": machine, "scenarios": scenarios, "goals": []})
    assert "## Grid" in text
    assert "## Goals" not in text
    assert "missed" not in text
    assert "| met |" not in text
