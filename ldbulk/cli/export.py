"""``ldbulk export``: the account's integrations as a manifest, to bring them under one."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NoReturn

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ldbulk.api.models import KEY_PATTERN
from ldbulk.api.sansio import ROUTE_GET
from ldbulk.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    UsageFailure,
    api_from,
    api_options,
    notice,
    refuse_unwritable,
    run,
    stderr,
)
from ldbulk.cli.progress import BudgetEtaColumn
from ldbulk.cli.signals import signals
from ldbulk.engine.export import ExportResult, ExportWatch, export
from ldbulk.engine.export_partial import partial_path
from ldbulk.errors import LdbulkError, Stopped
from ldbulk.files import write_atomically
from ldbulk.text import printable


@click.command("export")
@api_options
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="KEY",
    help="Export only this project's integrations. Repeatable; default: every project.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the manifest to FILE (atomically) instead of stdout.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="The manifest as YAML, or one JSON document: the manifest, the variables it needs, "
    "and what was left out (shape in the README).",
)
def export_command(
    projects: tuple[str, ...], output: Path | None, output_format: str, **kwargs: Any
) -> None:
    """Write the account's integrations as a manifest (secrets as ${VAR} references). Reads
    only; with -o, a stopped export resumes where it stopped."""
    for project in projects:
        if not KEY_PATTERN.fullmatch(project):
            raise UsageFailure(f"--project: {printable(project)!r} is not a project key")
    partial = partial_path(output) if output is not None else None
    # Before the first request: an output that can never be written (a symlink, say) is bad
    # input, not a failure found after reading the whole account.
    refuse_unwritable({"--output": output})
    refuse_unwritable({"--output": partial})
    api = api_from(kwargs)
    client = api.client()
    stop = asyncio.Event()
    display = _ExportProgress(
        enabled=api.progress, budget_per_s=lambda: client.pacer.budget_per_s(ROUTE_GET)
    )
    received: list[signal.Signals] = []

    async def go() -> ExportResult | None:
        async with client:
            with signals(lambda _: stop.set()) as caught, display.bar:
                try:
                    return await export(
                        client, projects=projects, stop=stop, partial=partial,
                        watch=display.watch,
                    )  # fmt: skip
                except Stopped:
                    received.extend(caught)
                    return None
                except LdbulkError:
                    if partial is not None and partial.exists():
                        # The reads made so far are not lost to the error that ended them.
                        notice(f"{display.read + display.before} read(s) kept in {partial}: "
                               "run the same command again to go on from there.", style="")
                    raise

    result = run(go(), client)
    if result is None:
        _stopped(display, partial, received)
    text = result.to_yaml() if output_format == "yaml" else (
        json.dumps(export_json(result), indent=2) + "\n"
    )
    _write(text, output, partial)
    _summary(result, projects)
    raise SystemExit(EXIT_FAILED if result.skipped else EXIT_OK)


def _write(text: str, output: Path | None, partial: Path | None) -> None:
    """The manifest to stdout, or to ``output`` whole; then its partial file goes."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomically(output, text)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        notice(f"ldbulk: cannot write {output}: {reason}", style="", level=logging.ERROR)
        raise SystemExit(EXIT_FAILED) from None
    if partial is not None:
        # Written whole: what was read is in the output now.
        partial.unlink(missing_ok=True)


class _ExportProgress:
    """The reads by id on a terminal: done/total, elapsed, and the time left at the pace the
    pacer has learned the account allows (reads are paced, so the rate so far alone would
    promise too much after a fresh window's burst)."""

    def __init__(self, *, enabled: bool, budget_per_s: Callable[[], float | None]) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("eta"), BudgetEtaColumn(budget_per_s),
            console=stderr, disable=not enabled,
        )  # fmt: skip
        self._task = self.bar.add_task("export", total=None)
        self.read = self.before = 0
        self.total: int | None = None
        self.watch = ExportWatch(listed=self._listed, read=self._read)

    def _listed(self, to_read: int, read_before: int) -> None:
        self.total, self.before = to_read, read_before
        self.bar.update(self._task, total=to_read)
        if read_before:
            self.bar.update(self._task, description=f"export ({read_before} read before)")
            notice(f"resuming: {read_before} integration(s) read before, {to_read} to read.",
                   style="", level=logging.INFO)  # fmt: skip

    def _read(self) -> None:
        self.read += 1
        self.bar.advance(self._task)


def _stopped(
    display: _ExportProgress, partial: Path | None, received: list[signal.Signals]
) -> NoReturn:
    """The closing lines of a stopped export: what was read, and where it is kept."""
    total = "?" if display.total is None else str(display.total)
    read = f"{display.read} of {total} integration(s) read"
    if partial is not None:
        kept = f"{read}, kept in {partial} with the {display.before} read before"
        notice(f"Stopped: {kept}. Run the same command again to go on from there; {partial.name} "
               "is removed once the manifest is written.", style="", level=logging.WARNING)
    else:
        notice(f"Stopped: {read}; nothing written (with -o FILE, a stopped export resumes).",
               style="", level=logging.WARNING)  # fmt: skip
    code = EXIT_SIGTERM if signal.SIGTERM in received else EXIT_SIGINT
    raise SystemExit(code)


EXPORT_JSON_VERSION: Final = 1


def export_json(result: ExportResult) -> dict[str, Any]:
    """``export --format json``: the manifest as data, each ``${VAR}`` it uses with the stores
    using it (names only: the values are secrets LaunchDarkly holds), what was left out."""
    return {
        "version": EXPORT_JSON_VERSION,
        "manifest": result.document,
        "variables": {name: list(users) for name, users in result.variables.items()},
        "skipped": [
            {"project": item.project, "environment": item.environment,
             "integration": item.integration, "reason": item.reason}
            for item in result.skipped
        ],
    }


def _summary(result: ExportResult, projects: tuple[str, ...]) -> None:
    """On stderr: what was left out, projects without integrations, the variables to set."""
    for item in result.skipped:
        where = f"{item.project}/{item.environment}/{item.integration}"
        line = Text(printable(f"skipped {where}: {item.reason}"))
        notice(line, style="red", level=logging.ERROR)
    exported = {target["project"] for target in result.document["targets"]}
    for project in projects:
        if project not in exported:
            notice(f"no integrations exported from project {project}")
    stores = len(result.document["stores"])
    notice(f"{result.integrations} integration(s) exported as {stores} store(s).", style="",
           level=logging.INFO)  # fmt: skip
    if result.variables:
        # Names only: the values are the secrets LaunchDarkly holds, which never leave it here.
        names = [f"  {name}  ({', '.join(users)})" for name, users in result.variables.items()]
        heading = "Set these variables to the stores' secrets before using the manifest:"
        notice("\n".join([heading, *names]), style="")
