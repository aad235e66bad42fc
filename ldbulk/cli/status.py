"""``ldbulk status``: each target's store status, optionally waiting until all are available."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from ldbulk.cli import record
from ldbulk.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    api_from,
    api_options,
    load,
    manifest_options,
    manifest_paths,
    output_option,
    print_line,
    print_table,
    print_unresolved,
    run,
    stderr,
    unresolved_json,
)
from ldbulk.cli.metrics import metrics_option
from ldbulk.engine.resolve import Unresolved, resolve
from ldbulk.engine.status import StoreState, wait_for_stores
from ldbulk.text import natural_order, printable


@contextlib.contextmanager
def _waiting(
    total: int, *, enabled: bool
) -> Iterator[Callable[[list[StoreState], float], None]]:
    """A progress line while ``--wait`` polls: stores available, and the time left."""
    bar = Progress(
        TextColumn("[bold]status"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("available, {task.fields[left]}"),
        console=stderr,
        disable=not enabled,
    )
    task = bar.add_task("status", total=total, left="")

    def polled(states: list[StoreState], left_s: float) -> None:
        ready = sum(1 for state in states if state.available)
        bar.update(task, completed=ready, left=f"{left_s:.0f} s left")

    with bar:
        yield polled


def _millis(value: int | None) -> str:
    if value is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1000)) + "Z"


def _status_table(states: Sequence[StoreState]) -> Table:
    table = Table(title="ldbulk status")
    for column in ("target", "available", "potentially stale", "last sync", "errors"):
        table.add_column(column, overflow="fold")
    # As people count (env-2 before env-10), whatever order the listings gave.
    for state in sorted(states, key=lambda state: natural_order(state.target.key)):
        name = "/".join(state.target.key)
        status = state.integration.status if state.integration else None
        if status is None:
            table.add_row(Text(name), Text("no", style="red"), Text(""), Text(""),
                          Text(printable(state.problem or "no status reported")))
            continue
        errors = status.errors
        # A store's error may quote its host or user: values from references stay hidden.
        said = state.target.config.redact(errors[-1].message or "") if errors else ""
        detail = f"{len(errors)}: {printable(said)}" if errors else ""
        table.add_row(
            Text(name),
            Text("yes" if status.available else "no",
                 style="green" if status.available else "red"),
            Text("yes" if status.potentially_stale else "no"),
            Text(_millis(status.last_sync)),
            Text(detail),
        )
    return table


def closing_line(ready: int, total: int, unresolved: int, *, wait_s: float) -> str:
    """How many stores are available; after a ``--wait`` that gave up, that it timed out."""
    counted = f"{ready} of {total} stores available"
    if wait_s > 0 and ready < total:
        counted = f"timed out after {wait_s:g} s: {counted}"
    return counted + (f"; {unresolved} manifest line(s) not resolved." if unresolved else ".")


STATUS_JSON_VERSION = 1


def status_json(states: Sequence[StoreState], unresolved: Sequence[Unresolved]) -> dict[str, Any]:
    """``status -o json``: one entry per target, in manifest order, and the counts."""
    stores = []
    for state in states:
        project, environment, integration = state.target.key
        found = state.integration
        status = found.status if found else None
        stores.append({
            "project": project,
            "environment": environment,
            "integration": integration,
            "integration_id": found.id if found else None,
            "available": state.available,
            "potentially_stale": status.potentially_stale if status else None,
            "last_sync": status.last_sync if status else None,
            # A store's error may quote its host or user: values from references stay hidden.
            "errors": [
                state.target.config.redact(error.message or "") for error in status.errors
            ] if status else [],
            "problem": state.problem or None,
        })
    return {
        "version": STATUS_JSON_VERSION,
        "summary": {
            "total": len(states),
            "available": sum(1 for state in states if state.available),
            "unresolved": len(unresolved),
        },
        "stores": stores,
        "unresolved": unresolved_json(unresolved),
    }


@click.command()
@manifest_paths
@manifest_options
@api_options
@click.option("--wait", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Poll until every store is available, for at most this many seconds.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between polls with --wait.")
@output_option
@metrics_option
def status(
    manifests: tuple[Path, ...], wait: float, interval: float, output: str, **kwargs: Any
) -> None:
    """Each target's store status: available, potentially stale, last sync, errors."""
    api = api_from(kwargs)
    # Reads only: references need not be set (the fields using them are not compared).
    loaded = load(manifests, kwargs, token_file=api.token_file, require_secrets=False)
    client = api.client()

    async def go() -> tuple[list[StoreState], list[Unresolved]]:
        async with client:
            resolution = await resolve(loaded, client)
            with _waiting(len(resolution.targets), enabled=api.progress and wait > 0) as polled:
                states = await wait_for_stores(
                    client, resolution.targets, wait_s=wait, interval_s=interval, on_poll=polled
                )
            return states, resolution.unresolved

    states, unresolved = run(go(), client)
    ready = sum(1 for s in states if s.available)
    record.current().observe({"available": ready, "unavailable": len(states) - ready},
                             unresolved=len(unresolved))
    if output == "json":
        click.echo(json.dumps(status_json(states, unresolved), indent=2))
    else:
        print_table(_status_table(states))
        print_unresolved(unresolved)
        print_line(closing_line(ready, len(states), len(unresolved), wait_s=wait))
    raise SystemExit(EXIT_OK if ready == len(states) and not unresolved else EXIT_FAILED)
