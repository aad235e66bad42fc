"""A narrow terminal (80 columns): tables become lists whose keys stay whole, a plan's
identical changes are said once with their count, the progress bar keeps its room and counts
what an interrupt skipped apart, and log lines go where the bar's console puts them."""

from __future__ import annotations

import io
import logging
import re
import sys
import time

import attrs
import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text
from test_report import result

from ldbulk.cli import common, logs, narrow, plan, progress
from ldbulk.cli.progress import ProgressDisplay, Window, eta_by_windows, eta_s
from ldbulk.engine.decide import Action
from ldbulk.engine.drift import Drift, FieldChange
from ldbulk.engine.plan import PlanItem
from ldbulk.engine.report import Outcome

LONG_KEY = "a-project-with-a-long-key/an-environment-with-a-long-key-too/redis"


def test_below_100_columns_on_a_terminal_a_table_is_a_list() -> None:
    assert narrow.is_narrow(80, terminal=True)
    assert not narrow.is_narrow(100, terminal=True)
    assert not narrow.is_narrow(80, terminal=False)  # a pipe gets full-width plain text


def test_a_plans_identical_changes_are_said_once_with_their_count() -> None:
    change = "config.host: redis-a.internal → redis-b.internal"
    lines = [
        narrow.PlanLine(target=f"web/env-{n}/redis", action="update", integration_id=f"id{n}",
                        changes=(change,))
        for n in range(1, 31)
    ]
    lines.append(narrow.PlanLine(target=LONG_KEY, action="update", changes=("on: false → true",)))
    lines.append(narrow.PlanLine(target="web/env-31/redis", action="create"))
    blocks = list(narrow.plan_blocks(lines))
    assert blocks[:4] == [
        "update: 30 targets",
        f"  30 x {change}",
        "  - web/env-1/redis (id1)",
        "  - web/env-2/redis (id2)",
    ]
    assert blocks[32:] == [f"update: {LONG_KEY}", "  on: false → true",
                           "create: web/env-31/redis"]


def narrow_terminal() -> Console:
    return Console(record=True, width=80, force_terminal=True, highlight=False)


def test_a_table_on_a_narrow_terminal_is_one_block_per_row_with_keys_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = narrow_terminal()
    monkeypatch.setattr(common, "stdout", console)
    table = Table(title="ldbulk status")
    for column in ("target", "available", "errors"):
        table.add_column(column)
    table.add_row(Text(LONG_KEY), Text("no"), Text("not provisioned"))
    table.add_row(Text("web/env-2/redis"), Text("yes"), Text(""))
    common.print_table(table)
    assert console.export_text().splitlines() == [
        "ldbulk status",
        LONG_KEY,
        "  available: no",
        "  errors: not provisioned",
        "web/env-2/redis",
        "  available: yes",
    ]


def test_the_plan_on_a_narrow_terminal_is_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    console = narrow_terminal()
    monkeypatch.setattr(common, "stdout", console)
    monkeypatch.setattr(plan, "stdout", console)
    moved = Drift(changes=(FieldChange(field="config.host", current="a", wanted="b"),))
    items = [
        PlanItem(key=("web", f"env-{n}", "redis"), action=Action.UPDATE, integration_id=f"i{n}",
                 drift=moved, fields=("config.host",))
        for n in (10, 2)
    ]
    items.append(PlanItem(key=tuple(LONG_KEY.split("/")), action=Action.CREATE))  # type: ignore[arg-type]
    plan._print_plan(items, [], show_all=False)
    # In natural order ("a-project..." first, env-2 before env-10), keys whole at 80 columns.
    assert console.export_text().splitlines() == [
        f"create: {LONG_KEY}",
        "update: 2 targets",
        "  2 x config.host: a → b",
        "  - web/env-2/redis (i2)",
        "  - web/env-10/redis (i10)",
        "Plan: 1 to create, 2 to update, 0 to delete.",
    ]


def bar_line(display: ProgressDisplay, console: Console) -> str:
    console.print(display.bar.make_tasks_table(display.bar.tasks))
    return console.export_text()


def at_80_columns(total: int, already_done: int, created: int) -> tuple[ProgressDisplay, Console]:
    """A bar on an 80-column terminal, ``created`` of its ``total`` targets done."""
    console = Console(record=True, width=80)
    display = ProgressDisplay(total, enabled=True, already_done=already_done,
                              budget_per_s=lambda: 10.0, console=console)
    for _ in range(created):
        display.settled(result("prod", Outcome.CREATED))
    return display, console


def test_at_80_columns_the_bar_keeps_its_room_and_the_numbers_show_whole() -> None:
    display, console = at_80_columns(600, 0, 100)
    line = bar_line(display, console)
    assert "…" not in line
    # Between the description and the count: the bar (its unfilled part blank without colour).
    assert len(line[len("apply "):line.index("100/600")]) > 20, line


def test_after_an_interrupt_the_bar_counts_the_skipped_apart() -> None:
    console = Console(record=True, width=120)
    display = ProgressDisplay(300, enabled=True, already_done=0, console=console)
    for _ in range(50):
        display.settled(result("prod", Outcome.CREATED))
    for _ in range(250):
        display.settled(result("prod", Outcome.SKIPPED))
    line = bar_line(display, console)
    assert "50/300 (250 skipped)" in line, line
    assert "300/300" not in line


def test_text_log_lines_go_to_the_stderr_of_the_moment(
    monkeypatch: pytest.MonkeyPatch, ldbulk_logger: logging.Logger
) -> None:
    """The progress bar stands in for sys.stderr while drawn: a line written to the stderr
    of when logging was set up would be glued onto the bar's line."""
    logs.configure(0, "text")
    drawn_over = io.StringIO()
    monkeypatch.setattr(sys, "stderr", drawn_over)
    ldbulk_logger.warning("web/env-1/redis: not_found")
    assert drawn_over.getvalue().endswith("WARNING ldbulk: web/env-1/redis: not_found\n")


def test_the_eta_counts_the_rate_limit_windows_still_needed() -> None:
    # 50 of 300 went in the first window's burst, which ends in 8 s: 250 more need five
    # windows of 50, the first of them opening in 8 s, the last 40 s later.
    window = Window(per_window=50, length_s=10.0, ends_epoch=108.0, done_in_it=50)
    assert eta_by_windows(250, window, now_epoch=100.0) == 48.0
    # What the current window still lets through goes now.
    assert eta_by_windows(250, attrs.evolve(window, done_in_it=0), now_epoch=100.0) == 38.0
    assert eta_by_windows(30, attrs.evolve(window, done_in_it=0), now_epoch=100.0) == 0.0
    # The slowest estimate wins: the rate so far (2 s) says too little.
    assert eta_s(250, 2.0, None, eta_by_windows(250, window, now_epoch=100.0)) == 48.0


class FakeClock:
    """The progress module's clock, moved by hand."""

    strftime = staticmethod(time.strftime)
    localtime = staticmethod(time.localtime)

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_the_bar_learns_the_windows_from_its_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(1000.0)
    monkeypatch.setattr(progress, "time", clock)
    display = ProgressDisplay(300, enabled=True, already_done=0, console=Console(width=120))
    for _ in range(50):  # the first window's burst
        display.settled(result("prod", Outcome.CREATED))
    clock.now = 1002.0
    display.paused(1010.0)  # spent: held until the window ends, 10 s after the run began
    assert display._windows_eta_s(250) == 48.0
    clock.now = 1010.5  # the next window: 50 more may go now
    assert display._windows_eta_s(250) == 39.5


def test_a_resumed_run_paused_at_80_columns_shows_every_number_and_the_clock_whole() -> None:
    display, console = at_80_columns(3000, 1200, 1000)
    display.paused(time.time() + 60)
    line = bar_line(display, console).rstrip()
    assert "…" not in line, line
    assert line.startswith("apply (1200 before) "), line
    # The last column is the pause's clock: whole, not cropped at the terminal's edge.
    assert re.search(r" 1000/3000 +elapsed \d:\d\d:\d\d eta \d:\d\d:\d\d paused \d\d:\d\d:\d\d$",
                     line), line


def test_an_interrupted_run_at_80_columns_drops_its_eta_and_pause_and_keeps_its_numbers() -> None:
    """After an interrupt the run tries nothing more: the time left and the end of a pause no
    longer apply, and their room goes to the counts."""
    display, console = at_80_columns(3000, 1200, 1000)
    display.paused(time.time() + 60)
    for _ in range(2000):
        display.settled(result("prod", Outcome.SKIPPED))
    line = bar_line(display, console).rstrip()
    assert "…" not in line, line
    assert line.startswith("apply (1200 before) "), line
    assert re.search(r" 1000/3000 \(2000 skipped\) +elapsed \d:\d\d:\d\d$", line), line
    assert "eta" not in line and "paused" not in line, line


def test_a_wide_terminal_says_done_before_in_words() -> None:
    console = Console(record=True, width=120)
    display = ProgressDisplay(300, enabled=True, already_done=120, console=console)
    assert bar_line(display, console).startswith("apply (120 done before) ")
