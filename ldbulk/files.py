"""Writing files so that a reader, or a crash, never sees half of one, and never through a
symlink ldbulk did not make.

Every file ldbulk writes for a run (the JSON report, JUnit, a Markdown summary it replaces,
the journal, the state file, an exported manifest) has mode :data:`FILE_MODE`, 0600: they name
the account's projects, environments and store hosts, which are nobody else's business on a
shared machine. A file ldbulk appends to (a CI job's step summary) keeps its own mode.

A symlink is never written through (:func:`refuse_links`). A pull request can commit one
(``out/journal -> ~/.bashrc``), and a job that runs ldbulk in its checkout would then truncate,
fill and chmod whatever it points at. So the file itself may not be a symlink, checked again by
the kernel where a file is opened in place (``O_NOFOLLOW``) and moot where it is replaced (a
rename replaces a link, never its target); nor may a directory the path names relative to the
working directory (``out/../j`` included: the kernel would follow ``out`` before ``..``).
Directories of an absolute path above the working directory belong to the machine (``/tmp``
on macOS, a CI runner's temp directory holding ``$GITHUB_STEP_SUMMARY``) and are followed.
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

# Refuses to open the last component of a path when it is a symlink (ELOOP); 0 where the
# platform has no such flag, which leaves the lstat check of refuse_links.
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
LINK_REASON: Final = "it is a symbolic link, and ldbulk never writes through one"


def refuse_links(path: Path) -> None:
    """Raise :class:`OSError` (``ELOOP``, its reason in words) when ``path`` is a symlink, or a
    directory it names inside the working directory is one. A directory above the working
    directory is the machine's own (``/tmp`` on macOS, a CI runner's temp directory) and may be
    a link; one inside it may have come with a checkout."""
    if os.path.islink(path):
        raise OSError(errno.ELOOP, LINK_REASON)
    for directory in _working_tree_dirs(path):
        if os.path.islink(directory):
            raise OSError(
                errno.ELOOP,
                f"its directory {directory} is a symbolic link, and ldbulk never writes "
                "through one",
            )


def _working_tree_dirs(path: Path) -> list[Path]:
    """The directories ``path`` names relative to the working directory, outermost first: each
    of a relative path's as written (``..`` is not collapsed: ``out/..`` goes through ``out``),
    or of an absolute path's below the working directory."""
    if path.is_absolute():
        try:
            base = Path.cwd()
            inside = path.relative_to(base)
        except (OSError, ValueError):  # outside it, or no working directory left
            return []
    else:
        inside, base = path, Path()
    parts = inside.parent.parts
    return [base.joinpath(*parts[: end + 1]) for end in range(len(parts))]


def write_atomically(path: Path, text: str | Callable[[TextIO], None]) -> None:
    """Write ``text`` to ``path`` whole or not at all: a synced temp file beside it, renamed.

    ``text`` is the text, or a function that writes it to the file it is given (a large
    document written piece by piece is never held in memory whole). Refused, with
    :class:`OSError`, when a symlink stands on the way (:func:`refuse_links`)."""
    refuse_links(path)
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
    directory, not through a symlink (:func:`refuse_links`), in a directory that exists or can
    be made, and is writable. Asked before a run starts, so a report that could never be
    written stops it before its first request."""
    refuse_links(path)
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
    existing file is truncated, or appended to, and its mode set too. Never through a symlink:
    :class:`OSError` (``ELOOP``) instead, before anything was truncated."""
    refuse_links(path)
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    fd = _open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "a" if append else "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` as it is (a FIFO, a CI job's summary file), its mode
    untouched; on a regular file that has text, after a blank line. Never through a symlink
    (:func:`refuse_links`): a runner's own path outside the working directory is followed up
    to the file, the file itself is not."""
    refuse_links(path)
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as file:
        if stat.S_ISREG(os.fstat(file.fileno()).st_mode) and file.tell() > 0:
            text = "\n" + text
        file.write(text)


def _open(path: Path, flags: int, mode: int) -> int:
    """``os.open``, with a symlink that appeared since :func:`refuse_links` said so in words."""
    try:
        return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, LINK_REASON) from None
        raise
