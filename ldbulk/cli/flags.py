"""The flags every command accepts, before or after its name: ``-v/-vv``, ``--log-format`` and
``--no-progress``, as kubectl and gh accept theirs anywhere on the line.

Given before the command they are the group's, after it the command's; both land in one
:class:`GlobalFlags` kept on the root context, so ``ldbulk -v plan m.yaml -v`` is ``-vv``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import click

from ldbulk.cli import logs

F = TypeVar("F", bound=Callable[..., Any])

_KEY: Final = "ldbulk.flags"


@attrs.define
class GlobalFlags:
    """What the global flags said, wherever on the line they were given."""

    verbose: int = 0
    log_format: logs.LogFormat = "text"
    no_progress: bool = False
    # One id per run, on every log line of it (see ldbulk.cli.logs).
    run_id: str = attrs.field(factory=logs.new_run_id)

    @property
    def json_logs(self) -> bool:
        """Whether stderr is JSON lines: nothing else may be written there."""
        return self.log_format == "json"


def current() -> GlobalFlags:
    """The global flags of the command being run (the defaults outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return GlobalFlags()
    flags = ctx.find_root().meta.setdefault(_KEY, GlobalFlags())
    assert isinstance(flags, GlobalFlags)
    return flags


def _verbose(ctx: click.Context, _: click.Parameter, value: int) -> None:
    flags = current()
    flags.verbose += value
    logs.configure(flags.verbose, flags.log_format, flags.run_id)


def _log_format(ctx: click.Context, _: click.Parameter, value: logs.LogFormat | None) -> None:
    flags = current()
    if value is not None:
        flags.log_format = value
    logs.configure(flags.verbose, flags.log_format, flags.run_id)


def _no_progress(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        current().no_progress = True


def global_flags(command: F) -> F:
    """Add the global flags to a command (a function to decorate, or a built command)."""
    decorators = [
        click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_verbose,
            help="More logging on stderr (-vv for debug).",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default=None,
            expose_value=False,
            callback=_log_format,
            help="Log lines as text or as JSON objects (default: text). With json, stderr "
            "holds JSON lines only.",
        ),
        click.option(
            "--no-progress",
            is_flag=True,
            expose_value=False,
            callback=_no_progress,
            help="No progress bar (automatic when stderr is not a terminal).",
        ),
    ]
    # A built command takes its options in order; a function's decorators apply bottom up.
    order = decorators if isinstance(command, click.Command) else reversed(decorators)
    for decorator in order:
        command = decorator(command)
    return command
