"""The benchmark's results.md: a smoke run (tiny sizes, no timings asserted) says nothing of
the goals, which only a full run measures."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent

MACHINE = {
    "cpu_model": "cpu", "cores": 2, "python": "3.11", "platform": "linux", "date": "today",
    "commit": "abc", "packages": {"ldbulk": "0"},
}
GOALS = [{"scenario": "1", "goal": "fast", "measured": "slow", "met": False}]


def results(*, smoke: bool) -> dict[str, Any]:
    return {"smoke": smoke, "machine": MACHINE, "scenarios": {}, "goals": GOALS}


@pytest.fixture
def to_markdown(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], str]:
    """bench.results.to_markdown: bench is a folder of the repository, not an installed package."""
    monkeypatch.syspath_prepend(str(ROOT))
    function: Callable[[dict[str, Any]], str] = importlib.import_module("bench.results").to_markdown
    return function


def test_a_smoke_run_prints_nothing_about_goals(
    to_markdown: Callable[[dict[str, Any]], str],
) -> None:
    text = to_markdown(results(smoke=True))
    assert "Goals" not in text and "**no**" not in text and "fast" not in text


def test_a_full_run_shows_each_goal_met_or_not(
    to_markdown: Callable[[dict[str, Any]], str],
) -> None:
    text = to_markdown(results(smoke=False))
    assert "## Goals" in text and "| 1 | fast | slow | **no** |" in text


def test_sections_kept_from_an_earlier_run_say_which_commit_they_were_taken_at(
    to_markdown: Callable[[dict[str, Any]], str],
) -> None:
    kept_from = importlib.import_module("bench.run").kept_from
    earlier = {"machine": MACHINE | {"commit": "old", "date": "yesterday"},
               "scenarios": {"x": {"rows": []}, "y": {"rows": []}}}  # fmt: skip
    fresh = {"y": {"rows": [], "taken": {"commit": "abc", "date": "today"}}}
    data = results(smoke=False) | {"scenarios": kept_from(earlier) | fresh}
    text = to_markdown(data)
    assert "- Kept from an earlier run: x (commit old, yesterday)" in text
    other_machine = {"machine": earlier["machine"] | {"cpu_model": "AMD EPYC"},
                     "scenarios": {"x": {"rows": []}}}  # fmt: skip
    text = to_markdown(data | {"scenarios": kept_from(other_machine) | fresh})
    assert "- Kept from an earlier run: x (commit old, yesterday, on AMD EPYC)" in text
    assert "y (commit" not in text
    assert "Kept from" not in to_markdown(results(smoke=False))


def _partition(created: int, over_after_heal_s: float) -> dict[str, Any]:
    return {
        "targets": 200, "route_limit": 100, "window_s": 10.0, "silent_after_s": 2.0,
        "silence_s": 70.0, "request_timeout_s": None, "exit_code": 0, "created": created,
        "integrations": created, "swallowed_connections": 3, "elapsed_s": 90.0,
        "over_after_heal_s": over_after_heal_s,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("created", "after", "met"),
    [(200, 21.6, True), (200, 45.0, False), (100, -2.1, False)],
    ids=["recovered", "late", "gave-up-before-the-heal"],
)
def test_the_partition_is_met_only_by_a_run_that_recovers_soon_after_the_heal(
    monkeypatch: pytest.MonkeyPatch, created: int, after: float, met: bool
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    goals = importlib.import_module("bench.results").goals
    found = goals({"partition": _partition(created, after)})
    assert [g["met"] for g in found] == [created == 200, met]
