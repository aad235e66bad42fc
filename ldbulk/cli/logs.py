"""Logging setup for the command line: text for people, JSON lines for log collectors.

Log records name routes, statuses and timings; they never carry headers or bodies, so the
access token and store secrets cannot reach a log. They may carry LaunchDarkly's words (an
error message), so text lines escape control characters (:func:`~ldbulk.text.printable`): a
log read in a terminal must not be recoloured by it. JSON lines escape them already.

A JSON line carries what a log collector filters on as fields of its own (``method``,
``route``, ``status``, ``ms``, ``target``, ``outcome``, ``attempt``), and every line of one run
the same ``run_id``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from types import TracebackType
from typing import Final, Literal, TypeAlias

from ldbulk.text import printable

LogFormat = Literal["text", "json"]
_ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
)

logger = logging.getLogger("ldbulk")
# The one event that closes a run: shown whenever JSON lines are, whatever the verbosity.
summary_log: Final = logging.getLogger("ldbulk.summary")
# The event that opens it, likewise.
start_log: Final = logging.getLogger("ldbulk.start")


def new_run_id() -> str:
    """A short id that every log line of one run carries, to pick a run out of a shared log."""
    return uuid.uuid4().hex[:12]


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        data: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """A plain text line per record, with control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line without the traceback, escaped."""
        return printable(super().formatMessage(record))

    def formatException(self, ei: _ExcInfo) -> str:
        """The traceback, escaped line by line so it still reads as one."""
        return "\n".join(map(printable, super().formatException(ei).split("\n")))


class _RunId(logging.Filter):
    """Stamps every record with the run's id."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines to whatever ``sys.stderr`` is when each is written, not when logging was
    set up: while apply's progress bar is drawn, rich stands in for ``sys.stderr`` and prints
    each line above the bar, through the bar's console, instead of onto the bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(verbosity: int, log_format: LogFormat, run_id: str | None = None) -> None:
    """Send ldbulk's logs to stderr: warnings by default, info with -v, debug with -vv.

    With JSON lines, the start and summary events of a run are always shown (it stands in for the
    closing line that text output prints on stdout)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = CurrentStderrHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RunId(run_id or new_run_id()))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    for event_log in (start_log, summary_log):
        event_log.setLevel(logging.INFO if log_format == "json" else logging.NOTSET)
