"""Writing files so that a reader, or a crash, never sees half of one.

Every file ldbulk writes for a run (the JSON report, JUnit, a Markdown summary it replaces,
the journal, the state file, an exported manifest) has mode :data:`FILE_MODE`, 0600: they name
the account's projects, environments and store hosts, which are nobody else's business on a
shared machine. A file ldbulk appends to (a CI job's step summary) keeps its own mode.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final, TextIO

FILE_MODE: Final = 0o600


def write_atomically(path: Path, text: str | Callable[[TextIO], None]) -> None:
    """Write ``text`` to ``path`` whole or not at all: a synced temp file beside it, renamed.

    ``text`` is the text, or a function that writes it to the file it is given (a large
    document written piece by piece is never held in memory whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp's 0600 already; said here, where it is decided
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            if isinstance(text, str):
                file.write(text)
            else:
                text(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def check_writable(path: Path) -> None:
    """Raise :class:`OSError` (its reason in words) unless ``path`` can be written later: not a
    directory, in a directory that exists or can be made, and is writable. Asked before a run
    starts, so a report that could never be written stops it before its first request."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a directory")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(
            errno.ENOTDIR, f"a file stands where its directory {parent} would be"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"its directory {parent} is not writable")


def open_private(path: Path, *, append: bool) -> IO[str]:
    """Open ``path`` for writing text with mode :data:`FILE_MODE`, created if missing; an
    existing file is truncated, or appended to, and its mode set too."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "a" if append else "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` as it is (a FIFO, a CI job's summary file), its mode
    untouched; on a regular file that has text, after a blank line."""
    with path.open("a", encoding="utf-8") as file:
        if stat.S_ISREG(os.fstat(file.fileno()).st_mode) and file.tell() > 0:
            text = "\n" + text
        file.write(text)
