"""The journal of a run: one JSON line per settled target, written as each one settles.

A run that is killed (even with ``kill -9``) leaves its journal behind; ``apply --resume FILE``
reads it back, skips the targets it already settled, and produces one merged report.

Each line is written with a single ``write`` and flushed at once, so it survives the process
being killed; ``fsync`` follows at most every ``SYNC_INTERVAL_S`` (and at close), which bounds
what a power loss can take without paying a disk sync per target. A line cut short by a crash
is ignored on reading.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from ldbulk.errors import ConfigError
from ldbulk.report import Outcome, TargetResult

SYNC_INTERVAL_S: Final = 0.2

# Outcomes that a resumed run takes as they are. The others (failed, rate_limited, conflict,
# unauthorized, skipped) depend on the moment, so a resumed run tries those targets again.
FINAL_OUTCOMES: Final = frozenset(
    {Outcome.CREATED, Outcome.EXISTS, Outcome.NOT_FOUND, Outcome.INVALID, Outcome.FORBIDDEN}
)

Key = tuple[str, str, str]


class Journal:
    """Appends settled results to a JSON-lines file; use it as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._last_sync = 0.0

    def __enter__(self) -> Journal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def record(self, result: TargetResult) -> None:
        """Append one settled result, durable against a killed process at once."""
        if self._file is None:
            raise RuntimeError("use the Journal inside 'with Journal(path) as journal:'")
        self._file.write(json.dumps(result.to_json(), separators=(",", ":")) + "\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= SYNC_INTERVAL_S:
            os.fsync(self._file.fileno())
            self._last_sync = now


def read_settled(path: Path) -> dict[Key, TargetResult]:
    """The results of a journal that a resumed run can keep, by target key (last one wins)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"--resume: no journal at {path}") from None
    except OSError as exc:
        raise ConfigError(f"--resume: cannot read {path}: {exc.strerror}") from None
    settled: dict[Key, TargetResult] = {}
    for line in text.splitlines():
        try:
            result = TargetResult.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash, or not ours
        if result.outcome in FINAL_OUTCOMES:
            settled[result.key] = result
        else:
            settled.pop(result.key, None)
    return settled
