"""The progress bar of ``apply``."""

from __future__ import annotations

import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ldbulk.cli.common import stderr
from ldbulk.engine.report import TargetResult


class ProgressDisplay:
    """The progress bar of apply: done/total, rate, ETA, and any rate-limit pause."""

    def __init__(self, total: int, *, enabled: bool, already_done: int) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            # Labelled: two bare clocks side by side read as one range.
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("[yellow]{task.fields[paused]}"),
            console=stderr,
            disable=not enabled,
        )
        description = f"apply ({already_done} done before)" if already_done else "apply"
        self._task = self.bar.add_task(description, total=total, rate="", paused="")
        self._started = time.monotonic()
        self._paused_until: float | None = None

    def paused(self, until_epoch: float) -> None:
        """The pacer closed its gate until ``until_epoch``."""
        self._paused_until = until_epoch
        clock = time.strftime("%H:%M:%S", time.localtime(until_epoch))
        self.bar.update(self._task, paused=f"paused for rate limit until {clock}")

    def settled(self, result: TargetResult) -> None:
        """One more target is done."""
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
            rate=f"{per_s:.1f}/s",
            paused=self.bar.tasks[0].fields["paused"] if still_paused else "",
        )
