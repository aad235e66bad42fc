"""The journal of a run: one JSON line per settled target, written as each one settles.

A run that is killed (even with ``kill -9``) leaves its journal behind; a resumed run
(``apply --resume FILE``) reads it back, skips the targets it already settled, and produces
one merged report.

Each line is written with a single ``write`` and flushed at once, so it survives the process
being killed; ``fsync`` follows at most every ``SYNC_INTERVAL_S`` (and at close), which bounds
what a power loss can take without paying a disk sync per target. A line cut short by a crash
is ignored on reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Final

from ldbulk.engine.report import Key, Outcome, TargetResult
from ldbulk.errors import ConfigError
from ldbulk.files import open_private, refuse_links

SYNC_INTERVAL_S: Final = 0.2

# The first line of every journal: what the file is, its format, and which manifests it is
# about. A resumed run reads nothing that does not start with it, so a report or any other
# file given by mistake is refused before a single request, and never written to.
KIND: Final = "ldbulk-journal"
FORMAT_VERSION: Final = 1

# Outcomes that a resumed run takes as they are. The others (failed, rate_limited, conflict,
# unauthorized, skipped) depend on the moment, so a resumed run tries those targets again.
FINAL_OUTCOMES: Final = frozenset(
    {
        Outcome.CREATED,
        Outcome.UPDATED,
        Outcome.UNCHANGED,
        Outcome.EXISTS,
        Outcome.DELETED,
        Outcome.NOT_FOUND,
        Outcome.INVALID,
        Outcome.FORBIDDEN,
    }
)


def is_complete(results: Iterable[TargetResult]) -> bool:
    """Whether a run left nothing for a resume to do: every result is final."""
    return all(result.outcome in FINAL_OUTCOMES for result in results)


def discard(path: Path) -> None:
    """Remove the journal of a complete run. A journal belongs to one run: kept, it would
    only make the next run's ``--resume`` skip targets that may have changed since."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def same_path(one: Path, other: Path) -> bool:
    """Whether two paths name the same file (after ``..`` and symlinks)."""
    return one.resolve() == other.resolve()


def _header(digest: str) -> dict[str, Any]:
    return {"kind": KIND, "version": FORMAT_VERSION, "manifests": digest}


class Journal:
    """Appends settled results to a JSON-lines file; use it as a context manager.

    A new journal starts with its header line; ``resume=True`` appends to a journal that
    :func:`read_settled` has accepted (so it already has one).
    """

    def __init__(self, path: Path, *, digest: str = "", resume: bool = False) -> None:
        self.path = path
        self.digest = digest
        self._resume = resume
        self._file: IO[str] | None = None
        self._last_sync = 0.0

    def __enter__(self) -> Journal:
        # Before any directory is made or byte read: a symlink there (one a checkout brought)
        # would have the journal truncate and fill the file it points at.
        refuse_links(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._resume:
            torn = _ends_mid_line(self.path)
            self._file = open_private(self.path, append=True)
            if torn:
                # A line cut short by a crash stays on a line of its own: the next result must
                # not be glued to it, or both are lost to the next reader.
                self._file.write("\n")
        else:
            self._file = open_private(self.path, append=False)
            self._write(_header(self.digest))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def record(self, result: TargetResult) -> None:
        """Append one settled result, durable against a killed process at once."""
        self._write(result.to_json())

    def _write(self, data: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError("use the Journal inside 'with Journal(path) as journal:'")
        self._file.write(json.dumps(data, separators=(",", ":")) + "\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= SYNC_INTERVAL_S:
            os.fsync(self._file.fileno())
            self._last_sync = now


def read_settled(path: Path, *, digest: str | None = None) -> dict[Key, TargetResult]:
    """The results of a journal that a resumed run can keep, by target key (last one wins).

    Raises :class:`ConfigError` for a file that is not a journal (no header), of a newer
    format, or, when ``digest`` is given, about other manifests. A line cut short by a crash
    is skipped.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"no journal at {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    lines = text.splitlines()
    header = _parse(lines[0]) if lines else None
    if header is None or header.get("kind") != KIND:
        raise ConfigError(f"{path} is not an ldbulk journal (it has no journal header)")
    if header.get("version") != FORMAT_VERSION:
        raise ConfigError(
            f"{path} is a journal of format {header.get('version')!r}; "
            f"this ldbulk reads format {FORMAT_VERSION}"
        )
    if digest is not None and header.get("manifests") != digest:
        raise ConfigError(
            f"{path} is the journal of other manifests (they changed since it was written); "
            "resume with the same manifests, or run without resuming"
        )
    settled: dict[Key, TargetResult] = {}
    for line in lines[1:]:
        data = _parse(line)
        try:
            result = TargetResult.from_json(data) if data is not None else None
        except (ValueError, KeyError, TypeError):
            result = None
        if result is None:
            continue  # a line cut short by a crash
        if result.outcome in FINAL_OUTCOMES:
            settled[result.key] = result
        else:
            settled.pop(result.key, None)
    return settled


def _ends_mid_line(path: Path) -> bool:
    """Whether a file's last byte is not a newline (its last line was cut short)."""
    with path.open("rb") as file:
        if file.seek(0, os.SEEK_END) == 0:
            return False
        file.seek(-1, os.SEEK_END)
        return file.read(1) != b"\n"


def _parse(line: str) -> dict[str, Any] | None:
    """One line as a JSON object, or None."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
