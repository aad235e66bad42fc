"""The progress bar of ``apply``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Final

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from rich.text import Text

from ldbulk.cli.common import stderr
from ldbulk.engine.report import Outcome, TargetResult


def eta_s(left: float, rate_eta_s: float | None, budget_per_s: float | None) -> float | None:
    """Seconds until ``left`` targets are done: the slower of what the rate so far says and
    what the rate-limit budget allows (``budget_per_s`` requests a second over a window,
    about one per target). The rate alone is too hopeful early on, when a fresh window's
    whole budget goes at once; the budget alone, when latency rather than the budget holds
    the run back."""
    by_budget = left / budget_per_s if budget_per_s else None
    estimates = [e for e in (rate_eta_s, by_budget) if e is not None]
    return max(estimates) if estimates else None


class BudgetEtaColumn(ProgressColumn):
    """The time left, from the rate so far and the budget the pacer has learned."""

    def __init__(
        self, budget_per_s: Callable[[], float | None], *, table_column: Column | None = None
    ) -> None:
        super().__init__(table_column=table_column)
        self._budget_per_s = budget_per_s

    def render(self, task: Task) -> Text:
        left = (task.total or 0) - task.completed
        seconds = eta_s(left, task.time_remaining, self._budget_per_s())
        if seconds is None:
            return Text("-:--:--", style="progress.remaining")
        return Text(str(datetime.timedelta(seconds=int(seconds))), style="progress.remaining")


# Below this many columns the rate gives way: the count, both clocks and a pause's end are
# what an operator acts on, and the rate is implied by the count and the elapsed time.
WIDE_COLUMNS: Final = 100


class RateColumn(ProgressColumn):
    """Targets a second so far, on a terminal wide enough for it (:data:`WIDE_COLUMNS`)."""

    def __init__(self, console: Console, *, table_column: Column | None = None) -> None:
        super().__init__(table_column=table_column)
        self._console = console

    def render(self, task: Task) -> Text:
        if self._console.width < WIDE_COLUMNS:
            return Text("")
        return Text(str(task.fields["rate"]))


class DoneColumn(MofNCompleteColumn):
    """Targets done of the total, and after an interrupt how many it left untried: an
    interrupted run's bar must not read 300/300."""

    def render(self, task: Task) -> Text:
        done = super().render(task)
        skipped = task.fields.get("skipped", 0)
        return done.append(f" ({skipped} skipped)", style="yellow") if skipped else done


class ProgressDisplay:
    """The progress bar of apply: done/total, rate, ETA, and any rate-limit pause.

    ``budget_per_s``: the requests a second the pacer has learned it may send over a window
    (None while unknown), for the ETA; ``console``: where it is drawn (stderr)."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        already_done: int,
        budget_per_s: Callable[[], float | None] = lambda: None,
        console: Console = stderr,
    ) -> None:
        # On a narrow terminal the bar gives way, never the numbers (rich cuts a column that
        # may wrap to "100…" and "eta 0:0…" at 80 columns).
        def whole() -> Column:  # one each: a table numbers its columns in place
            return Column(no_wrap=True)

        self.bar = Progress(
            TextColumn("[bold]{task.description}", table_column=whole()),
            BarColumn(table_column=Column(min_width=3)),
            DoneColumn(table_column=whole()),
            RateColumn(console, table_column=whole()),
            # Labelled: two bare clocks side by side read as one range.
            TextColumn("elapsed", table_column=whole()),
            TimeElapsedColumn(table_column=whole()),
            TextColumn("eta", table_column=whole()),
            BudgetEtaColumn(budget_per_s, table_column=whole()),
            TextColumn("[yellow]{task.fields[paused]}", table_column=whole()),
            console=console,
            disable=not enabled,
        )
        description = f"apply ({already_done} done before)" if already_done else "apply"
        self._task = self.bar.add_task(description, total=total, rate="", paused="",
                                       skipped=0)
        self._started = time.monotonic()
        self._paused_until: float | None = None

    def paused(self, until_epoch: float) -> None:
        """The pacer closed its gate until ``until_epoch``."""
        self._paused_until = until_epoch
        clock = time.strftime("%H:%M:%S", time.localtime(until_epoch))
        self.bar.update(self._task, paused=f"rate-limited until {clock}")

    def settled(self, result: TargetResult) -> None:
        """One more target is done."""
        if self.bar.disable:
            return  # no bar drawn: no per-target work for it either
        if result.outcome is Outcome.SKIPPED:
            # Not done: left untried by a stop. Counted apart, so an interrupted run's bar
            # never reads 300/300.
            skipped = self.bar.tasks[0].fields["skipped"] + 1
            self.bar.update(self._task, skipped=skipped)
            return
        done = self.bar.tasks[0].completed + 1
        total = self.bar.tasks[0].total
        if total is not None and done > total:
            # A prune's deletes are known only once the targets are settled.
            self.bar.update(self._task, total=done)
        per_s = done / max(time.monotonic() - self._started, 1e-6)
        still_paused = self._paused_until is not None and self._paused_until > time.time()
        self.bar.update(
            self._task,
            advance=1,
            # A fresh window's burst reads 383/s, not 383.4/s: room for the other numbers.
            rate=f"{per_s:.1f}/s" if per_s < 100 else f"{per_s:.0f}/s",
            paused=self.bar.tasks[0].fields["paused"] if still_paused else "",
        )
