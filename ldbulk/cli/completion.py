"""``ldbulk completion SHELL``: the script that makes a shell complete ldbulk's commands and
flags (click's own completion, for the shells click supports)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL. For example, in ~/.bashrc:
    eval "$(ldbulk completion bash)"."""
    completer = get_completion_class(shell)
    assert completer is not None  # click supports every shell in SHELLS
    root = ctx.find_root()
    script = completer(root.command, {}, "ldbulk", "_LDBULK_COMPLETE").source()
    click.echo(script)
