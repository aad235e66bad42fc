"""What one run of the command line observed, kept until its exit code is known.

Every way a run ends (a report's verdict, bad input, a failure after requests, an interrupt, a
click usage error) reaches :meth:`ldbulk.cli.main._Ldbulk.main` as one ``SystemExit``; only
there is the exit code final. What is written with it, the metrics file and, with JSON logs,
the closing ``summary`` event, is written there, from this record: the commands fill it in
(counts, the client's stats, the problems of bad input), and nothing about the run's ending is
decided twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ldbulk.engine.saved import SavedPlan, read_plan
from ldbulk.manifest import Problem


@attrs.frozen(kw_only=True)
class Cost:
    """What the run's requests cost: the client's counts."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    paused_s: float = 0.0


@attrs.frozen(kw_only=True)
class Closing:
    """A command's own closing event (apply's): its level, message and fields."""

    level: int
    message: str
    fields: Mapping[str, Any]


@attrs.define
class RunRecord:
    """What one command-line run observed; filled in by the command, read at its exit."""

    json_logs: bool = False
    # The command's arguments as given (the console script's, or a caller's ``main(args)``).
    args: tuple[str, ...] = ()
    command: str | None = None
    metrics_file: Path | None = None
    started_at: float = attrs.field(factory=time.time)
    started_mono: float = attrs.field(factory=time.monotonic)
    begun: bool = False
    start_logged: bool = False
    # Per outcome (apply's outcomes, plan's actions, status' available / unavailable).
    counts: dict[str, int] | None = None
    unresolved: int = 0
    cost: Cost | None = None
    problems: tuple[Problem, ...] = ()
    closing: Closing | None = None
    # The saved plan of ``apply PLAN``, by path, as read for the start event: a plan of
    # 100,000 actions takes seconds to read, and the run carries out the plan the start named.
    saved_plans: dict[Path, SavedPlan] = attrs.field(factory=dict)

    def saved_plan(self, path: Path) -> SavedPlan:
        """The saved plan at ``path``, read once per run (:func:`ldbulk.engine.saved.read_plan`:
        :class:`~ldbulk.errors.ConfigError` when it is none, never kept)."""
        if path not in self.saved_plans:
            self.saved_plans[path] = read_plan(path)
        return self.saved_plans[path]

    def elapsed_s(self) -> float:
        """Seconds since the run began."""
        return time.monotonic() - self.started_mono

    def observe(self, counts: Mapping[str, int], *, unresolved: int = 0) -> None:
        """The run's targets per outcome, and its manifest lines that gave none."""
        self.counts = dict(counts)
        self.unresolved = unresolved

    def problem_rows(self) -> list[dict[str, Any]]:
        """The problems of bad input, as fields."""
        return [
            {"file": p.file, "line": p.line, "path": p.path, "message": p.message}
            for p in self.problems
        ]


_current: contextvars.ContextVar[RunRecord | None] = contextvars.ContextVar(
    "ldbulk_run_record", default=None
)


def current() -> RunRecord:
    """The record of the run under way; outside one (the library, a test calling a command
    function), a record nobody reads."""
    record = _current.get()
    return RunRecord() if record is None else record


def active() -> RunRecord | None:
    """The record of the run under way, if one is."""
    return _current.get()


@contextlib.contextmanager
def recording(record: RunRecord) -> Iterator[RunRecord]:
    """Make ``record`` the run's record for the duration."""
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)


def outcome_counts(values: Sequence[str], known: Sequence[str]) -> dict[str, int]:
    """How many of ``values`` are each of ``known`` (zero included, so a series never vanishes)."""
    counts = dict.fromkeys(known, 0)
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
