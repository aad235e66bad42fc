"""The console script tunes its own process's garbage collector; a caller's process is left
as it is."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator

import pytest

from ldbulk.cli import main as ldbulk_command
from ldbulk.engine.collector import RUN_YOUNG_THRESHOLD

# The module, not the command group the package exports under the same name.
cli_main = importlib.import_module("ldbulk.cli.main")


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_console_script_freezes_the_imports_and_collects_less(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.setattr("sys.argv", ["ldbulk", "--version"])
    with pytest.raises(SystemExit) as exited:
        ldbulk_command.main()
    assert exited.value.code == 0
    assert gc.get_threshold() == (RUN_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0


def test_a_caller_passing_arguments_keeps_its_collector(collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(SystemExit):
        ldbulk_command.main(args=["--version"])
    assert gc.get_threshold() == (700, 10, 10)
