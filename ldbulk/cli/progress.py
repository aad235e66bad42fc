"""The progress bar of ``apply``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Final

import attrs
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


def eta_s(
    left: float,
    rate_eta_s: float | None,
    budget_per_s: float | None,
    windows_eta_s: float | None = None,
) -> float | None:
    """Seconds until ``left`` targets are done: the slowest of what the rate so far says,
    what the rate-limit budget allows (``budget_per_s`` requests a second over a window,
    about one per target) and what the windows seen so far need (:func:`eta_by_windows`).
    The rate alone is too hopeful early on, when a fresh window's whole budget goes at once;
    the budget alone, when latency rather than the budget holds the run back."""
    by_budget = left / budget_per_s if budget_per_s else None
    estimates = [e for e in (rate_eta_s, by_budget, windows_eta_s) if e is not None]
    return max(estimates) if estimates else None


@attrs.frozen(kw_only=True)
class Window:
    """A rate-limit window as the run saw it: how many targets one lets through, how long it
    is, when the current one ends (epoch seconds) and how many went in it so far."""

    per_window: int
    length_s: float
    ends_epoch: float
    done_in_it: int = 0


def eta_by_windows(left: int, window: Window, now_epoch: float) -> float:
    """Seconds until ``left`` targets are done a window at a time: what the current window
    still lets through goes now, then ``per_window`` in each window after it, the last
    window's as soon as it opens. At 50 of 300 with a window of 50 spent and 8 s to its end:
    8 s, then four more windows of 10 s."""
    still_now = max(window.per_window - window.done_in_it, 0)
    after = left - still_now
    if after <= 0:
        return 0.0
    windows = -(-after // window.per_window)  # rounded up
    return max(window.ends_epoch - now_epoch, 0.0) + (windows - 1) * window.length_s


class BudgetEtaColumn(ProgressColumn):
    """The time left, from the rate so far and the budget the pacer has learned."""

    def __init__(
        self,
        budget_per_s: Callable[[], float | None],
        windows_eta_s: Callable[[int], float | None] = lambda left: None,
        *,
        table_column: Column | None = None,
    ) -> None:
        super().__init__(table_column=table_column)
        self._budget_per_s = budget_per_s
        self._windows_eta_s = windows_eta_s

    def render(self, task: Task) -> Text:
        left = (task.total or 0) - task.completed
        seconds = eta_s(left, task.time_remaining, self._budget_per_s(),
                        self._windows_eta_s(int(left)))
        if seconds is None:
            return Text("-:--:--", style="progress.remaining")
        return Text(str(datetime.timedelta(seconds=int(seconds))), style="progress.remaining")


# Below this many columns the rate gives way: the count, both clocks and a pause's end are
# what an operator acts on, and the rate is implied by the count and the elapsed time.
WIDE_COLUMNS: Final = 100


def _wide(console: Console) -> bool:
    return console.width >= WIDE_COLUMNS


class DescriptionColumn(ProgressColumn):
    """What runs, and on a resumed run how many targets were done before it: in words on a
    wide terminal, in fewer of them below :data:`WIDE_COLUMNS`, the number always."""

    def __init__(self, console: Console, *, table_column: Column | None = None) -> None:
        super().__init__(table_column=table_column)
        self._console = console

    def render(self, task: Task) -> Text:
        before = task.fields.get("done_before", 0)
        text = Text(task.description, style="bold")
        if before:
            text.append(f" ({before} done before)" if _wide(self._console)
                        else f" ({before} before)")
        return text


class DoneColumn(MofNCompleteColumn):
    """Targets done of the total, and after an interrupt how many it left untried (an
    interrupted run's bar must not read 300/300); on a terminal wide enough
    (:data:`WIDE_COLUMNS`) the targets a second so far too. In this column, not one of its own:
    an empty column would still cost the space beside it on a narrow terminal."""

    def __init__(self, console: Console, *, table_column: Column | None = None) -> None:
        super().__init__(table_column=table_column)
        self._console = console

    def render(self, task: Task) -> Text:
        done = super().render(task)
        skipped = task.fields.get("skipped", 0)
        if skipped:
            done.append(f" ({skipped} skipped)", style="yellow")
        rate = task.fields.get("rate", "")
        if rate and _wide(self._console):
            done.append(f" {rate}")
        return done


class RunEtaColumn(BudgetEtaColumn):
    """The time left, labelled; nothing once a stop left targets untried, since the run tries
    nothing more (it would otherwise count the untried as still to come)."""

    def render(self, task: Task) -> Text:
        if task.fields.get("skipped", 0):
            return Text("")
        return Text("eta ").append_text(super().render(task))


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
            DescriptionColumn(console, table_column=whole()),
            BarColumn(table_column=Column(min_width=3)),
            DoneColumn(console, table_column=whole()),
            # Labelled: two bare clocks side by side read as one range.
            TextColumn("elapsed", table_column=whole()),
            TimeElapsedColumn(table_column=whole()),
            RunEtaColumn(budget_per_s, self._windows_eta_s, table_column=whole()),
            TextColumn("[yellow]{task.fields[paused]}", table_column=whole()),
            console=console,
            disable=not enabled,
        )
        self._task = self.bar.add_task("apply", total=total, rate="", paused="", skipped=0,
                                       done_before=already_done)
        self._started = time.monotonic()
        self._paused_until: float | None = None
        # The windows as the pauses show them: the first pause ends the first window.
        self._window: Window | None = None
        self._window_started = time.time()
        self._done_at_window_start = 0

    def paused(self, until_epoch: float) -> None:
        """The pacer closed its gate until ``until_epoch``."""
        self._paused_until = until_epoch
        self._learn_window(until_epoch)
        if self.bar.tasks[0].fields["skipped"]:
            return  # stopped: what is still in flight may be held, the run waits for nothing
        clock = time.strftime("%H:%M:%S", time.localtime(until_epoch))
        # Below WIDE_COLUMNS the words give way before the bar does (the clock stays whole).
        words = "rate-limited until" if _wide(self.bar.console) else "paused"
        self.bar.update(self._task, paused=f"{words} {clock}")

    def _learn_window(self, until_epoch: float) -> None:
        """A pause ends the window in which the targets since the last one went: how many a
        window lets through, and how long one is (the time from one pause's end to the next).
        A pause that only moves the same window's end teaches nothing new."""
        done = int(self.bar.tasks[0].completed)
        went = done - self._done_at_window_start
        length = until_epoch - self._window_started
        if went > 0 and length > 0:
            self._window = Window(per_window=went, length_s=length, ends_epoch=until_epoch)
            self._window_started = until_epoch
            self._done_at_window_start = done
        elif self._window is not None:
            self._window = attrs.evolve(self._window, ends_epoch=until_epoch)

    def _windows_eta_s(self, left: int) -> float | None:
        """What the windows seen so far need for ``left`` targets; None before the first."""
        window = self._window
        if window is None:
            return None
        now = time.time()
        if now < window.ends_epoch:  # still held in the window the last pause closed: spent
            return eta_by_windows(left, attrs.evolve(window, done_in_it=window.per_window), now)
        # A window since: the one now open ends a whole number of windows after that pause.
        passed = -(-(now - window.ends_epoch) // window.length_s) or 1
        went = int(self.bar.tasks[0].completed) - self._done_at_window_start
        return eta_by_windows(left, attrs.evolve(
            window, ends_epoch=window.ends_epoch + passed * window.length_s,
            done_in_it=max(went, 0),
        ), now)

    def settled(self, result: TargetResult) -> None:
        """One more target is done."""
        if self.bar.disable:
            return  # no bar drawn: no per-target work for it either
        if result.outcome is Outcome.SKIPPED:
            # Not done: left untried by a stop. Counted apart, so an interrupted run's bar
            # never reads 300/300.
            # Nor does the run wait out a pause any more: its clock goes with the ETA.
            skipped = self.bar.tasks[0].fields["skipped"] + 1
            self.bar.update(self._task, skipped=skipped, paused="")
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
