"""``ldbulk export``: the account's integrations as a manifest, to bring them under one."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Final

import click
from rich.text import Text

from ldbulk.api.models import KEY_PATTERN
from ldbulk.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageFailure,
    api_from,
    api_options,
    notice,
    refuse_unwritable,
    run,
)
from ldbulk.engine.export import ExportResult, export
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
    only."""
    for project in projects:
        if not KEY_PATTERN.fullmatch(project):
            raise UsageFailure(f"--project: {printable(project)!r} is not a project key")
    # Before the first request: an output that can never be written (a symlink, say) is bad
    # input, not a failure found after reading the whole account.
    refuse_unwritable({"--output": output})
    api = api_from(kwargs)
    client = api.client()

    async def go() -> ExportResult:
        async with client:
            return await export(client, projects=projects)

    result = run(go(), client)
    text = result.to_yaml() if output_format == "yaml" else (
        json.dumps(export_json(result), indent=2) + "\n"
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            write_atomically(output, text)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            notice(f"ldbulk: cannot write {output}: {reason}", style="", level=logging.ERROR)
            raise SystemExit(EXIT_FAILED) from None
    _summary(result, projects)
    raise SystemExit(EXIT_FAILED if result.skipped else EXIT_OK)


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
    targets = sum(len(target["environments"]) for target in result.document["targets"])
    notice(f"{targets} integration(s) exported as {stores} store(s).", style="", level=logging.INFO)
    if result.variables:
        # Names only: the values are the secrets LaunchDarkly holds, which never leave it here.
        names = [f"  {name}  ({', '.join(users)})" for name, users in result.variables.items()]
        heading = "Set these variables to the stores' secrets before using the manifest:"
        notice("\n".join([heading, *names]), style="")
