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
import re
import sys
import time
import uuid
from types import TracebackType
from typing import Final, Literal, TypeAlias

from ldbulk.api import sansio
from ldbulk.text import printable

LogFormat = Literal["text", "json"]
_ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
)

logger = logging.getLogger("ldbulk")
# The client's requests: its records are named here (see _RequestFields).
_CLIENT: Final = logging.getLogger("ldbulk.http.client")
# The one event that closes a run: shown whenever JSON lines are, whatever the verbosity.
summary_log: Final = logging.getLogger("ldbulk.summary")


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


def _route_pattern(route: str) -> tuple[str, re.Pattern[str]]:
    method, path = route.split(" ", 1)
    return method, re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")


# The client's routes, as its pacer counts them: a log line names the route a request was
# paced on, not only its path (which holds the project and environment keys).
_ROUTES: Final = {
    route: _route_pattern(route)
    for route in (
        sansio.ROUTE_LIST,
        sansio.ROUTE_CREATE,
        sansio.ROUTE_GET,
        sansio.ROUTE_PATCH,
        sansio.ROUTE_DELETE,
        sansio.ROUTE_PROJECTS,
        sansio.ROUTE_ENVIRONMENTS,
    )
}


def route_of(method: str, path: str) -> str | None:
    """The route (verb and URL pattern) a request's method and path belong to, if any."""
    for route, (verb, pattern) in _ROUTES.items():
        if verb == method and pattern.match(path):
            return route
    return None


# The client's messages and what their arguments are, so that a JSON line has them as fields.
_CLIENT_ARGS: Final = {
    "%s %s -> %d (%.0f ms)": ("method", "path", "status", "ms"),
    "%s %s: %s (failure %d)": ("method", "path", "error", "attempt"),
    "%s %s: rate limited, waiting for the window to reset": ("method", "path"),
}


class _RequestFields(logging.Filter):
    """Names the arguments of the client's records as fields, and logs a 5xx answer (which is
    retried when it is safe) at the level of a transport failure, info, not with every other
    answer at debug; then drops what is below the configured level, since the client's logger
    lets every record through to this filter."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        names = _CLIENT_ARGS.get(str(record.msg))
        if names is not None and isinstance(record.args, tuple):
            fields = dict(zip(names, record.args, strict=False))
            for name, value in fields.items():
                setattr(record, name, str(value) if name == "error" else value)
            ms = fields.get("ms")
            if isinstance(ms, float):
                record.ms = round(ms, 1)
            record.route = route_of(str(fields.get("method")), str(fields.get("path")))
            status = fields.get("status")
            if isinstance(status, int) and status >= 500 and record.levelno < logging.INFO:
                record.levelno, record.levelname = logging.INFO, "INFO"
        return record.levelno >= self.level


class _RunId(logging.Filter):
    """Stamps every record with the run's id."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def configure(verbosity: int, log_format: LogFormat, run_id: str | None = None) -> None:
    """Send ldbulk's logs to stderr: warnings by default, info with -v, debug with -vv.

    With JSON lines, the summary event of a run is always shown (it stands in for the
    closing line that text output prints on stdout)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RunId(run_id or new_run_id()))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # The client's answers are debug records, a 5xx among them: with info shown, every record
    # reaches the filter, which lifts a 5xx to info and drops the rest below the level.
    _CLIENT.filters[:] = [_RequestFields(level)]
    _CLIENT.setLevel(logging.DEBUG if level <= logging.INFO else logging.NOTSET)
    summary_log.setLevel(logging.INFO if log_format == "json" else logging.NOTSET)
