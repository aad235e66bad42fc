"""``ldbulk plan``: what apply would do per target, using only reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ldbulk.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    api_from,
    api_options,
    load,
    manifest_options,
    manifest_paths,
    print_unresolved,
    run,
    stdout,
)
from ldbulk.engine.plan import Action, PlanItem, plan
from ldbulk.engine.resolve import Unresolved, resolve
from ldbulk.text import printable


@click.command("plan")
@manifest_paths
@manifest_options
@api_options
@click.option("--all", "show_all", is_flag=True,
              help="Show every target, not only those apply would change or that differ.")
@click.option("--create-only", is_flag=True,
              help="Do not read existing integrations to compare them: one listing, as "
              "apply treats them.")
def plan_command(
    manifests: tuple[Path, ...], show_all: bool, create_only: bool, **kwargs: Any
) -> None:
    """Show what apply would do per target, and how existing integrations differ from the
    manifest (drift). Reads only."""
    api = api_from(kwargs)
    loaded = load(manifests, kwargs, token_file=api.token_file)
    client = api.client()

    async def go() -> tuple[list[PlanItem], list[Unresolved]]:
        async with client:
            resolution = await resolve(loaded, client)
            items = await plan(client, resolution.targets, drift=not create_only)
            return items, resolution.unresolved

    items, unresolved = run(go(), client)
    shown = [item for item in items if show_all or item.action is not Action.EXISTS]
    if shown or unresolved:
        stdout.print(_table(shown, unresolved))
    print_unresolved(unresolved)
    counts = {action: sum(1 for i in items if i.action is action) for action in Action}
    stdout.print(
        f"{len(items)} targets: {counts[Action.CREATE]} to create, "
        f"{counts[Action.DRIFTED]} drifted, {counts[Action.EXISTS]} "
        f"{'existing' if create_only else 'unchanged'}, {counts[Action.NOT_FOUND]} not found"
        + (f"; {len(unresolved)} manifest line(s) not resolved." if unresolved else ".")
    )
    if counts[Action.DRIFTED]:
        stdout.print(
            "Drifted integrations differ from the manifest; apply leaves existing "
            "integrations as they are."
        )
    raise SystemExit(EXIT_FAILED if counts[Action.NOT_FOUND] or unresolved else EXIT_OK)


_STYLES = {
    Action.CREATE: "green",
    Action.EXISTS: "cyan",
    Action.DRIFTED: "yellow",
    Action.NOT_FOUND: "red",
}


def _table(items: list[PlanItem], unresolved: list[Unresolved]) -> Table:
    table = Table(title="ldbulk plan")
    for column in ("project", "environment", "integration", "action", "integration id"):
        table.add_column(column)
    table.add_column("differences", overflow="fold")
    for item in items:
        table.add_row(
            Text(item.target.project),
            Text(item.target.environment),
            Text(item.target.integration_key),
            Text(item.action.value, style=_STYLES[item.action]),
            Text(printable(item.integration_id or "")),
            Text(printable(_differences(item))),
        )
    for line in unresolved:
        row = line.result()
        table.add_row(Text(row.project), Text(row.environment), Text(row.integration),
                      Text(row.outcome.value, style="red"), Text(""), Text(""))
    return table


def _differences(item: PlanItem) -> str:
    """The changed fields, and the secrets that could not be compared: never pretend they
    match."""
    parts = [str(change) for change in item.drift.changes]
    if item.drift.uncompared:
        parts.append(
            f"not compared: {', '.join(item.drift.uncompared)} (LaunchDarkly redacts it on read)"
        )
    return "; ".join(parts)
