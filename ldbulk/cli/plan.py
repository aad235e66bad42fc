"""``ldbulk plan``: what apply would do per target, using only reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG
from ldbulk.cli import narrow, plan_markdown, record
from ldbulk.cli.common import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_OK,
    UsageFailure,
    api_from,
    api_options,
    load,
    manifest_options,
    manifest_paths,
    notice,
    output_option,
    print_line,
    print_rows,
    print_unresolved,
    refuse_unwritable,
    run,
    stdout,
    unresolved_json,
)
from ldbulk.cli.metrics import metrics_option
from ldbulk.engine.plan import Action, PlanItem, plan
from ldbulk.engine.prune import PruneScope
from ldbulk.engine.resolve import Resolution, ResolvedTarget, Unresolved, resolve
from ldbulk.engine.saved import saved_plan, write_plan
from ldbulk.engine.seen import Seen
from ldbulk.files import write_atomically
from ldbulk.http.client import Client
from ldbulk.manifest import ManifestSet
from ldbulk.text import natural_order, printable


@click.command("plan")
@manifest_paths
@manifest_options
@api_options
@click.option("--all", "show_all", is_flag=True,
              help="Show every row, not only those apply would change.")
@click.option("--create-only", is_flag=True,
              help="Do not read existing integrations to compare them: one listing, as "
              "apply --create-only treats them.")
@click.option("--rotate-secrets", is_flag=True,
              help="Plan as apply --rotate-secrets: write the secrets LaunchDarkly redacts "
              "on read.")
@click.option("--prune", is_flag=True,
              help="Also show what apply --prune would delete, the untagged integrations it "
              "leaves alone, and those with the shared tag outside its scope (orphaned).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Plan as apply --state would run: an integration the state file says an "
              "earlier run left as the manifest asks is not read. Read only, never written.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the plan here: apply PLAN then does exactly its creates, updates "
              "and deletes, and writes nothing that changed since. Holds no secret.")
@output_option
@click.option("--markdown", "markdown_path", metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Also write the plan as a pull request comment here (- for stdout, "
              "instead of the table): grouped, under GitHub's 65,536-character limit.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 3 when apply would change something (0: nothing to change, 1: a "
              "target or line not found, 2: bad input).")
@metrics_option
def plan_command(
    manifests: tuple[Path, ...],
    show_all: bool,
    create_only: bool,
    rotate_secrets: bool,
    prune: bool,
    state_path: Path | None = None,
    out_path: Path | None = None,
    output: str = "text",
    detailed_exitcode: bool = False,
    markdown_path: Path | None = None,
    **kwargs: Any,
) -> None:
    """Show what apply would do per target, and how existing integrations differ from the
    manifest (drift). Reads only."""
    api = api_from(kwargs)
    # Reads only: references need not be set (the fields using them are not compared).
    to_stdout = markdown_path == Path("-")
    if to_stdout and output == "json":
        raise UsageFailure("--markdown - and -o json both write stdout: give --markdown a file")
    refuse_unwritable({"--out": out_path, "--markdown": None if to_stdout else markdown_path})
    loaded = load(manifests, kwargs, token_file=api.token_file, require_secrets=False)
    client = api.client()

    items, resolution = run(_planned(client, loaded, state_path, create_only=create_only,
                                     rotate_secrets=rotate_secrets, prune=prune), client)
    unresolved = resolution.unresolved
    record.current().observe(
        record.outcome_counts([item.action.value for item in items], [a.value for a in Action]),
        unresolved=len(unresolved),
    )
    if out_path is not None:
        _save(out_path, items, resolution, loaded, base_url=client.base_url,
              rotate_secrets=rotate_secrets)
    if markdown_path is not None:
        _write_markdown(markdown_path, plan_markdown.to_markdown(
            items, unresolved, summary_line(items, unresolved)))
    if output == "json":
        click.echo(json.dumps(plan_json(items, unresolved), indent=2))
    elif not to_stdout:
        _print_plan(items, unresolved, show_all=show_all)
    if any(item.action is Action.NOT_FOUND for item in items) or unresolved:
        raise SystemExit(EXIT_FAILED)
    changes = any(item.action.changes for item in items)
    raise SystemExit(EXIT_CHANGES if detailed_exitcode and changes else EXIT_OK)


async def _planned(
    client: Client,
    loaded: ManifestSet,
    state_path: Path | None,
    *,
    create_only: bool,
    rotate_secrets: bool,
    prune: bool,
) -> tuple[list[PlanItem], Resolution]:
    """The plan of ``loaded`` against the account, saying why a prune would be held back."""
    # Read before any request: a state file that is no state file is bad input.
    seen = Seen.for_client(state_path, client) if state_path is not None else None
    async with client:
        resolution = await resolve(loaded, client, check_environments=prune)
        scope = None
        if prune:
            scope = PruneScope.of(loaded, unresolved_lines=len(resolution.unresolved),
                                  blocked_projects=resolution.prune_blocks,
                                  selectors=resolution.selectors)
        items = await plan(client, resolution.targets, create_only=create_only,
                           rotate_secrets=rotate_secrets, prune=scope, seen=seen)
        if scope is not None:
            for blocked in (scope.blocked, *scope.blocked_projects.values()):
                if blocked is not None:
                    notice(f"prune: {blocked}.")
        return items, resolution


def _print_plan(items: list[PlanItem], unresolved: list[Unresolved], *, show_all: bool) -> None:
    """The plan's table (the rows worth showing, or all), what did not resolve, the line."""
    # As people count (env-2 before env-10), whatever order the listings gave.
    shown = sorted((item for item in items if show_all or _worth_showing(item)),
                   key=lambda item: natural_order(item.key))
    if narrow.is_narrow(stdout.width, terminal=stdout.is_terminal):
        for line in narrow.plan_blocks(_plan_line(item) for item in shown):
            print_line(Text(line))
        for row in (line.result() for line in unresolved):
            print_line(Text(f"{row.outcome.value}: {row.project}/{row.environment}/"
                            f"{row.integration}"))
    elif shown or unresolved:
        print_rows(_table(), lambda: _rows(shown, unresolved))
    print_unresolved(unresolved)
    _hint_orphans(items)
    print_line(summary_line(items, unresolved))


def _save(
    path: Path,
    items: list[PlanItem],
    resolution: Resolution,
    loaded: ManifestSet,
    *,
    base_url: str,
    rotate_secrets: bool,
) -> None:
    """Write the saved plan: each action with its target's manifest file and store."""
    stores = {
        entry.target.key: (entry.source.file, entry.store)
        for entry in resolution.entries
        if isinstance(entry, ResolvedTarget)
    }
    saved = saved_plan(items, manifests=loaded, stores=stores, base_url=base_url,
                       rotate_secrets=rotate_secrets)
    try:
        write_plan(path, saved)
    except OSError as exc:
        raise UsageFailure(f"--out: cannot write {path}: {exc.strerror}") from None
    notice(f"Saved the plan ({len(saved.actions)} action(s)) to {path}: "
           f"apply it with: ldbulk apply {path}", style="", level=logging.INFO)


def _write_markdown(path: Path, text: str) -> None:
    """The comment on stdout (``-``) or in its file, whole or not at all."""
    if path == Path("-"):
        click.echo(text, nl=False)
        return
    try:
        write_atomically(path, text)
    except OSError as exc:
        notice(f"ldbulk: --markdown: cannot write {path}: {exc.strerror or type(exc).__name__}",
               style="", level=logging.ERROR)
        raise SystemExit(EXIT_FAILED) from None


PLAN_JSON_VERSION = 1


def plan_json(items: list[PlanItem], unresolved: list[Unresolved]) -> dict[str, Any]:
    """``plan -o json``: every row (not only those worth showing), the counts, and whether
    apply would change anything. Values are shown as the table shows them: a reference as
    written, a secret as (hidden), never a secret's value."""
    counts = {action.value: sum(1 for i in items if i.action is action) for action in Action}
    return {
        "version": PLAN_JSON_VERSION,
        "summary": {**counts, "unresolved": len(unresolved)},
        "changes_pending": any(item.action.changes for item in items),
        "items": [
            {
                "project": item.key[0],
                "environment": item.key[1],
                "integration": item.key[2],
                "action": item.action.value,
                "integration_id": item.integration_id,
                "changes": [
                    {"field": c.field, "current": c.current, "wanted": c.wanted}
                    for c in item.drift.changes
                ],
                "fields": list(item.fields),
                "not_compared": [f"config.{name}" for name in item.drift.uncompared]
                + [f"config.{name}" for name, _ in item.drift.unset],
                "unset": {f"config.{name}": ref for name, ref in item.drift.unset},
            }
            for item in items
        ],
        "unresolved": unresolved_json(unresolved),
    }


def summary_line(items: list[PlanItem], unresolved: list[Unresolved]) -> str:
    """Terraform's one line: what would change, then what would not."""
    counts = {action: sum(1 for i in items if i.action is action) for action in Action}
    line = (
        f"Plan: {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
        f"{counts[Action.DELETE]} to delete"
    )
    quiet = [
        f"{counts[action]} {words}"
        for action, words in (
            (Action.UNCHANGED, "unchanged"),
            (Action.EXISTS, "existing (not compared)"),
            (Action.UNMANAGED, "unmanaged"),
            (Action.ORPHANED, "orphaned"),
            (Action.NOT_FOUND, "not found"),
        )
        if counts[action]
    ]
    if unresolved:
        quiet.append(f"{len(unresolved)} manifest line(s) not resolved")
    return line + (f"; {', '.join(quiet)}." if quiet else ".")


def _hint_orphans(items: list[PlanItem]) -> None:
    """Integrations carrying the shared tag where no manifest reaches: say how to own them."""
    orphans = sum(1 for item in items if item.action is Action.ORPHANED)
    if orphans:
        notice(
            f"prune: {orphans} integration(s) carry the shared tag {DEFAULT_OWNERSHIP_TAG} "
            "outside these manifests' projects and integration keys: listed as orphaned, "
            "never deleted. Give the manifests an ownership tag of their own "
            "(defaults.ownershipTag) and --prune deletes whatever carries it that no target "
            "names, in any project."
        )


def _worth_showing(item: PlanItem) -> bool:
    """By default: what apply would change, and what a reader must know of (not found, an
    integration prune leaves alone, a field not compared for want of its reference's value)."""
    return item.action not in (Action.UNCHANGED, Action.EXISTS) or bool(item.drift.unset)


_STYLES = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.UNCHANGED: "cyan",
    Action.EXISTS: "cyan",
    Action.UNMANAGED: "magenta",
    Action.ORPHANED: "magenta",
    Action.NOT_FOUND: "red",
}


def _table() -> Table:
    """The plan's table, its columns without rows (see :func:`_rows`)."""
    table = Table(title="ldbulk plan")
    for column in ("project", "environment", "integration", "action", "integration id"):
        table.add_column(column)
    table.add_column("differences", overflow="fold")
    return table


def _rows(items: list[PlanItem], unresolved: list[Unresolved]) -> Iterator[list[Text]]:
    """One row per item, then per line that did not resolve: made as they are printed."""
    for item in items:
        project, environment, integration = item.key
        yield [
            Text(printable(project)),
            Text(printable(environment)),
            Text(printable(integration)),
            Text(item.action.value, style=_STYLES[item.action]),
            Text(printable(item.integration_id or "")),
            Text(printable(_differences(item))),
        ]
    for line in unresolved:
        row = line.result()
        yield [Text(row.project), Text(row.environment), Text(row.integration),
               Text(row.outcome.value, style="red"), Text(""), Text("")]  # fmt: skip


def _plan_line(item: PlanItem) -> narrow.PlanLine:
    """An item as the list of a narrow terminal shows it."""
    return narrow.PlanLine(
        target=printable("/".join(item.key)), action=item.action.value,
        integration_id=printable(item.integration_id or ""),
        changes=tuple(printable(part) for part in _difference_parts(item)),
    )


def _differences(item: PlanItem) -> str:
    """The changed fields, and the secrets that could not be compared, on one line."""
    return "; ".join(_difference_parts(item))


def _difference_parts(item: PlanItem) -> list[str]:
    """The changed fields, and the secrets that could not be compared: never pretend they
    match."""
    if item.action is Action.UNMANAGED:
        return ["not tagged as ldbulk's: never deleted"]
    if item.action is Action.ORPHANED:
        return [f"tagged {DEFAULT_OWNERSHIP_TAG} outside these manifests' scope: never deleted"]
    if item.action is Action.NOT_FOUND:
        project, environment, _ = item.key
        return [f"no environment {environment} in project {project}"]
    parts = [str(change) for change in item.drift.changes]
    rotated = [name for name in item.drift.uncompared if f"config.{name}" in item.fields]
    parts += [f"config.{name}: written again (--rotate-secrets)" for name in rotated]
    parts += [f"config.{name}: not compared: unset {ref}" for name, ref in item.drift.unset]
    kept = [name for name in item.drift.uncompared if name not in rotated]
    if kept:
        # Masked on read (a known secret, or any value answered masked): unknown, not different.
        them = "it" if len(kept) == 1 else "them"
        parts.append(f"not compared: {', '.join(kept)} (LaunchDarkly masks {them})")
    if item.action is Action.UPDATE and "tags" in item.fields and not any(
        change.field == "tags" for change in item.drift.changes
    ):
        parts.append("tags: + ownership tag")
    return parts
