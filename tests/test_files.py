"""Writing files: whole or not at all, mode 0600, and never through a symlink ldbulk did not
make (one a checkout brought in would have ldbulk truncate, fill or chmod what it points at)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from ldbulk.engine.journal import Journal
from ldbulk.files import append_text, check_writable, open_private, write_atomically

VICTIM_TEXT = "the victim's own text\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the working tree, mode 0644, that a symlink will point at."""
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT)
    path.chmod(0o644)
    return path


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: a checkout, where a pull request may have put symlinks."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def assert_untouched(victim: Path) -> None:
    assert victim.read_text() == VICTIM_TEXT
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def write_journal(path: Path) -> None:
    with Journal(path, digest="d"):
        pass


def write_private(path: Path) -> None:
    with open_private(path, append=False) as file:
        file.write("written\n")


def append_private(path: Path) -> None:
    with open_private(path, append=True) as file:
        file.write("written\n")


WRITERS: dict[str, Callable[[Path], None]] = {
    "journal": write_journal,
    "open_private": write_private,
    "open_private_append": append_private,
    "append_text": lambda path: append_text(path, "written\n"),
    "write_atomically": lambda path: write_atomically(path, "written\n"),
    "check_writable": check_writable,
}


@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
def test_a_symlinked_file_is_refused_and_its_target_left_untouched(
    writer: Callable[[Path], None], tree: Path, victim: Path
) -> None:
    (tree / "out").mkdir()
    link = tree / "out" / "j"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link") as info:
        writer(Path("out/j"))
    assert info.value.errno == errno.ELOOP
    assert_untouched(victim)
    assert link.is_symlink()


@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
def test_a_symlinked_directory_in_the_working_tree_is_refused(
    writer: Callable[[Path], None], tree: Path, victim: Path
) -> None:
    (tree / "out").symlink_to(victim.parent, target_is_directory=True)
    for path in (Path("out/victim"), tree / "out" / "victim", Path("out/new/file")):
        with pytest.raises(OSError, match=r"its directory .*out is a symbolic link"):
            writer(path)
    assert_untouched(victim)
    assert sorted(os.listdir(victim.parent)) == ["victim"]


def test_a_dangling_symlink_is_refused_and_nothing_is_created(tree: Path) -> None:
    (tree / "j").symlink_to(tree / "made-through-the-link")
    for writer in WRITERS.values():
        with pytest.raises(OSError, match="symbolic link"):
            writer(Path("j"))
    assert not (tree / "made-through-the-link").exists()


def test_directories_above_the_working_directory_are_the_machines_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner's temp directory, or /tmp on macOS, may be reached through a link: only what
    lies inside the working directory is the checkout's."""
    real = tmp_path / "real-temp"
    real.mkdir()
    (tmp_path / "temp").symlink_to(real, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    summary = tmp_path / "temp" / "step_summary"
    summary.write_text("")
    append_text(summary, "## ldbulk apply\n")
    write_atomically(tmp_path / "temp" / "report.json", "{}\n")
    assert (real / "step_summary").read_text() == "## ldbulk apply\n"
    assert (real / "report.json").read_text() == "{}\n"


def test_plain_files_are_still_written_whole_and_private(tree: Path) -> None:
    write_journal(Path("out/run.journal"))
    write_atomically(Path("out/report.json"), "{}\n")
    append_text(Path("out/summary.md"), "one\n")
    append_text(Path("out/summary.md"), "two\n")
    assert (tree / "out" / "run.journal").read_text().startswith('{"kind":"ldbulk-journal"')
    assert stat.S_IMODE((tree / "out" / "run.journal").stat().st_mode) == 0o600
    assert stat.S_IMODE((tree / "out" / "report.json").stat().st_mode) == 0o600
    assert (tree / "out" / "summary.md").read_text() == "one\n\ntwo\n"


def test_a_link_before_dot_dot_is_refused_however_the_path_climbs_back(
    tree: Path, victim: Path
) -> None:
    """``out/../j`` with ``out`` a link: the kernel follows ``out`` first, into elsewhere."""
    (tree / "out").symlink_to(victim.parent / "sub", target_is_directory=True)
    (victim.parent / "sub").mkdir()
    for writer in WRITERS.values():
        with pytest.raises(OSError, match="symbolic link"):
            writer(Path("out/../victim"))
    assert_untouched(victim)
