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
def plan_command(manifests: tuple[Path, ...], **kwargs: Any) -> None:
    """Show what apply would do per target (create / exists / not found). Reads only."""
    api = api_from(kwargs)
    loaded = load(manifests, kwargs, token_file=api.token_file)
    client = api.client()

    async def go() -> tuple[list[PlanItem], list[Unresolved]]:
        async with client:
            resolution = await resolve(loaded, client)
            return await plan(client, resolution.targets), resolution.unresolved

    items, unresolved = run(go(), client)
    table = Table(title="ldbulk plan")
    for column in ("project", "environment", "integration", "action", "integration id"):
        table.add_column(column)
    styles = {Action.CREATE: "green", Action.EXISTS: "cyan", Action.NOT_FOUND: "red"}
    for item in items:
        table.add_row(
            Text(item.target.project),
            Text(item.target.environment),
            Text(item.target.integration_key),
            Text(item.action.value, style=styles[item.action]),
            Text(printable(item.integration_id or "")),
        )
    for line in unresolved:
        row = line.result()
        table.add_row(Text(row.project), Text(row.environment), Text(row.integration),
                      Text(row.outcome.value, style="red"), Text(""))
    stdout.print(table)
    print_unresolved(unresolved)
    counts = {action: sum(1 for i in items if i.action is action) for action in Action}
    stdout.print(
        f"{len(items)} targets: {counts[Action.CREATE]} to create, "
        f"{counts[Action.EXISTS]} existing, {counts[Action.NOT_FOUND]} not found"
        + (f"; {len(unresolved)} manifest line(s) not resolved." if unresolved else ".")
    )
    raise SystemExit(EXIT_FAILED if counts[Action.NOT_FOUND] or unresolved else EXIT_OK)
