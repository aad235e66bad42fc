"""``--help`` as an operator reads it: the commands in workflow order, each described on one
whole line, and every command's help closing with examples that run as written."""

from __future__ import annotations

import re
import shlex

import pytest
from click.testing import CliRunner

from ldbulk.cli import main
from ldbulk.cli.helptext import EXAMPLES, SUMMARIES, WORKFLOW

WORKFLOW_ORDER = ["validate", "plan", "apply", "status", "export", "check", "sandbox",
                  "completion"]


def _command_lines(help_text: str) -> list[str]:
    """The lines under ``Commands:``."""
    lines = help_text.split("Commands:\n", 1)[1].splitlines()
    return [line for line in lines if line.strip()]


def test_the_commands_are_listed_in_workflow_order_each_on_one_whole_line() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = _command_lines(result.output)
    assert [line.split()[0] for line in lines] == WORKFLOW_ORDER
    for line in lines:
        name, summary = line.split(maxsplit=1)
        assert summary == SUMMARIES[name]  # whole: neither cut with "..." nor wrapped
        assert len(line) <= 80


def test_every_command_is_described_and_has_examples() -> None:
    assert list(WORKFLOW) == WORKFLOW_ORDER
    assert set(main.commands) == set(SUMMARIES) == set(EXAMPLES)
    assert all(2 <= len(examples) <= 3 for examples in EXAMPLES.values())


@pytest.mark.parametrize("command", WORKFLOW_ORDER)
def test_each_commands_help_ends_with_its_examples_unwrapped(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=60)
    assert result.exit_code == 0, result.output
    tail = result.output.rstrip("\n").splitlines()[-len(EXAMPLES[command]) - 1:]
    assert tail[0].strip() == "Examples:"
    assert [line.strip() for line in tail[1:]] == [f"$ {ex}" for ex in EXAMPLES[command]]


@pytest.mark.parametrize("command", WORKFLOW_ORDER)
def test_the_examples_use_only_options_the_command_has(command: str) -> None:
    """An example that names a flag the command lacks would fail as written."""
    options = {
        name for param in main.commands[command].params for name in param.opts
    }
    for example in EXAMPLES[command]:
        # The command line alone: not the shell around it (a redirection, a $(...)).
        words = shlex.split(re.split(r"[)>|]", example.split("ldbulk ", 1)[1])[0])
        assert words[0] == command
        for word in words[1:]:
            if word.startswith("-"):
                assert word.split("=")[0] in options, (example, word)
