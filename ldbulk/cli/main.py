"""The ``ldbulk`` command group: global options, ``validate``, and the other commands wired in.

Each command lives in its own module and only wires arguments to a library call and renders
what comes back; the decisions are in :mod:`ldbulk.engine`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from ldbulk._version import __version__
from ldbulk.cli import events, helptext, logs, record
from ldbulk.cli.apply import apply
from ldbulk.cli.check import check_command
from ldbulk.cli.completion import completion_command
from ldbulk.cli.export import export_command
from ldbulk.cli.flags import global_flags
from ldbulk.cli.interrupts import interrupts_as_exits
from ldbulk.cli.plan import plan_command
from ldbulk.cli.status import status
from ldbulk.cli.validate import validate
from ldbulk.engine.collector import RUN_YOUNG_THRESHOLD
from ldbulk.sandbox.cli import sandbox_command


def _asks_json_logs(args: Sequence[str]) -> bool:
    """Whether the command line asks for JSON logs, wherever the flag is (read before click
    parses it: a usage error may come first)."""
    return "--log-format=json" in args or ("--log-format", "json") in itertools.pairwise(args)


@contextlib.contextmanager
def _usage_errors_as_json_lines() -> Iterator[None]:
    """Click's own usage errors (an unknown option, a bad value) as one JSON error line each,
    as every other line on stderr is when JSON logs are asked for."""
    show = click.UsageError.show

    def as_json_line(error: click.UsageError, file: Any = None) -> None:
        events.log_start(record.current())  # the run's first line, even before its command
        logs.logger.error("%s", error.format_message(), extra={"usage_error": True})

    click.UsageError.show = as_json_line  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        click.UsageError.show = show  # type: ignore[method-assign]


class _Ldbulk(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order an operator uses them, not alphabetically."""
        return helptext.in_workflow_order(list(self.commands))

    def main(self, args: Sequence[str] | None = None, *rest: Any, **options: Any) -> Any:
        """Run the command line. Every way a run ends (a report's verdict, bad input, a
        failure, an interrupt, a usage error) comes out of click's main as one SystemExit:
        here, and only here, is its code final, and the metrics and the summary event are
        written with it."""
        if args is None:
            # The process is this command (the console script): its collector is ours to tune.
            # Called with arguments (a test, an embedding program), the process is not.
            _collect_less()
        args = list(sys.argv[1:] if args is None else args)
        run = record.RunRecord(json_logs=_asks_json_logs(args), args=tuple(args))
        # Known for sure once click has parsed the line; a usage error may come first.
        run.command = next((arg for arg in args if arg in self.commands), None)
        with record.recording(run):
            try:
                result = self._main(args, *rest, **options)
            except SystemExit as exc:
                raise SystemExit(events.close(run, _exit_code(exc.code))) from None
            events.close(run, 0)  # not standalone: returned rather than exited
            return result

    def _main(self, args: list[str], *rest: Any, **options: Any) -> Any:
        if not _asks_json_logs(args):
            return super().main(args, *rest, **options)
        logs.configure(0, "json")
        with _usage_errors_as_json_lines():
            return super().main(args, *rest, **options)


def _collect_less() -> None:
    """Tune the garbage collector for one command's process: what the imports made lives as
    long as the process, so it is moved out of the collector's reach (``gc.freeze``), and the
    young generation is collected as seldom as during a run (see
    :mod:`ldbulk.engine.collector`), from the start. Reference cycles are still collected."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(RUN_YOUNG_THRESHOLD, middle, old)


def _exit_code(code: object) -> int:
    """A SystemExit's code as the process' exit status (None is 0; a message is 1)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _announced(name: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    """The command's callback, saying first that its run begins (see :mod:`events`)."""

    @functools.wraps(callback)
    def begin_then_run(*args: Any, **kwargs: Any) -> Any:
        with interrupts_as_exits():
            events.begin(name, kwargs, record.current())
            return callback(*args, **kwargs)

    return begin_then_run


@click.group(cls=_Ldbulk, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ldbulk")
@global_flags
def main() -> None:
    """Provision LaunchDarkly persistent stores (Redis, DynamoDB) across many environments.

    -v/-vv, --log-format and --no-progress may be given before or after the command.
    """


for command in (
    validate, plan_command, apply, status, export_command, check_command, sandbox_command
):
    main.add_command(command)
# After the command's name too: `ldbulk plan m.yaml -v` as well as `ldbulk -v plan m.yaml`.
for command in main.commands.values():
    global_flags(command)
    # The sandbox is a server that runs until stopped, not a run of ldbulk's.
    if command.callback is not None and command is not sandbox_command:
        command.callback = _announced(command.name or "", command.callback)
# A script for the shell, not a run: no flags of a run.
main.add_command(completion_command)
for command in main.commands.values():
    helptext.describe(command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
