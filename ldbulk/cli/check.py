"""``ldbulk check``: preflight the stores the manifests use, from this machine; sends nothing to
LaunchDarkly.

One row per distinct store with each step's result, then what each failed or unchecked step met,
then what a check from here cannot prove. Exit 0 when every store passed, 1 when one failed, 2
for bad input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click
from rich.table import Table
from rich.text import Text

from ldbulk.check import (
    DEFAULT_TIMEOUT,
    StepResult,
    StoreCheck,
    check_stores,
    checks_to_json,
    stores_in_use,
)
from ldbulk.check.model import EARLIER_STEP_FAILED, STEPS
from ldbulk.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageFailure,
    load,
    manifest_options,
    manifest_paths,
    stdout,
)
from ldbulk.cli.interrupts import sigint_to_asyncio
from ldbulk.errors import ConfigError
from ldbulk.text import printable

_CELL: Final = {StepResult.OK: "ok", StepResult.FAILED: "FAILED", StepResult.NOT_CHECKED: "-"}
_STYLE: Final = {
    StepResult.OK: "green",
    StepResult.FAILED: "bold red",
    StepResult.NOT_CHECKED: "dim",
}

# Short column titles, so a table fits 80 columns; the details and JSON use the step names.
_HEADER: Final = {
    "describe_table": "table",
    "key_schema": "keys",
    "role_arn": "role",
    "trust_policy": "trust",
}


def _name(check: StoreCheck) -> str:
    return printable(", ".join(check.names) or "(config)")


def _rows(checks: Sequence[StoreCheck], integration: str) -> list[list[tuple[str, str]]]:
    """(text, style) cells of one table: store, where, each step, result."""
    rows = []
    for check in checks:
        if check.integration != integration:
            continue
        cells = [(_name(check), ""), (check.where, "")]
        cells += [(_CELL[step.result], _STYLE[step.result]) for step in check.steps]
        cells.append(("pass", "green") if check.ok else ("FAIL", "bold red"))
        rows.append(cells)
    return rows


def _table(checks: Sequence[StoreCheck], integration: str, *, rich: bool) -> Table | str | None:
    rows = _rows(checks, integration)
    if not rows:
        return None
    header = ["store", "where", *(_HEADER.get(s, s) for s in STEPS[integration]), "result"]
    if rich:
        table = Table(title=f"{integration} stores", title_justify="left")
        for column in header:
            # Only the address folds when the terminal is narrow: results stay one word.
            table.add_column(column, no_wrap=column != "where", overflow="fold")
        for row in rows:
            table.add_row(*(Text(text, style=style) for text, style in row))
        return table
    widths = [max(len(line[i]) for line in [header, *[[t for t, _ in r] for r in rows]])
              for i in range(len(header))]
    lines = [header, *[[text for text, _ in row] for row in rows]]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _details(check: StoreCheck) -> list[str]:
    """What each failed or unchecked step met (not the steps an earlier failure kept from
    running), and the server version when known."""
    lines = []
    for step in check.steps:
        if step.result is StepResult.OK and step.name != "version":
            continue
        if not step.message or step.message == EARLIER_STEP_FAILED:
            continue
        lines.append(f"  {step.name}: {step.message}")
    return lines


def render_text(checks: Sequence[StoreCheck], *, rich: bool) -> None:
    """The tables (rich on a terminal, aligned plain text otherwise), the details, the notes."""
    for integration in STEPS:
        table = _table(checks, integration, rich=rich)
        if table is None:
            continue
        if rich:
            stdout.print(table)
        else:
            click.echo(f"{integration} stores\n{table}\n")
    for check in checks:
        details = _details(check)
        if details:
            click.echo(f"{_name(check)} ({check.where}):")
            click.echo("\n".join(details))
    notes = dict.fromkeys(note for check in checks for note in check.notes)
    if notes:
        click.echo("")
    for note in notes:
        click.echo(f"Note: {note}")
    passed = sum(1 for check in checks if check.ok)
    click.echo(f"{passed} of {len(checks)} store(s) passed.")


@click.command("check")
@manifest_paths
@manifest_options
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1, max=600),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds each store's check may take, all its steps together.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="Verify Redis TLS against this CA bundle instead of the system's (always verified).",
)
@click.option(
    "--aws-endpoint-url",
    metavar="URL",
    help="Send the AWS calls (DynamoDB, STS, IAM) to URL, e.g. a local emulator "
    "(default: where the AWS CLI would, AWS_ENDPOINT_URL honoured).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A table for people, or one JSON document.",
)
def check_command(
    manifests: tuple[Path, ...],
    timeout_s: float,
    ca_bundle: str | None,
    aws_endpoint_url: str | None,
    output: str,
    **kwargs: Any,
) -> None:
    """Check each store the manifests use from this machine (Redis: DNS, TCP, TLS, AUTH, PING,
    ROLE, version; DynamoDB: table, status, key schema, role). Sends nothing to LaunchDarkly."""
    loaded = load(manifests, kwargs)
    try:
        with sigint_to_asyncio():
            checks = asyncio.run(
                check_stores(
                    stores_in_use(loaded),
                    timeout_s=timeout_s,
                    cafile=ca_bundle,
                    aws_endpoint_url=aws_endpoint_url,
                )
            )
    except ConfigError as exc:
        raise UsageFailure(f"ldbulk: {exc}") from None
    if output == "json":
        click.echo(json.dumps(checks_to_json(checks), indent=2))
    else:
        render_text(checks, rich=stdout.is_terminal)
    raise SystemExit(EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED)
