"""``ldbulk apply PLAN``: carry out a saved plan (``ldbulk plan --out PLAN``), with the same
signals, log lines and report files as any apply."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from ldbulk.api.models import Target
from ldbulk.cli import record
from ldbulk.cli.closing import Outputs, finish
from ldbulk.cli.common import UsageFailure, api_from, load, refuse_unwritable, run
from ldbulk.cli.signals import signals
from ldbulk.engine.carry import carry_out
from ldbulk.engine.report import Key, Report, TargetResult
from ldbulk.engine.saved import SavedPlan
from ldbulk.errors import ConfigError
from ldbulk.http.client import Client

# What a saved plan does not take: the flags that shape what an apply decides (it was decided
# when it was made), and the journal (its actions check the planned versions instead: a plan
# applied again after an interrupt ends in conflicts, never in a second write).
REFUSED_FLAGS: Final = ("--create-only", "--rotate-secrets", "--prune", "--state",
                        "--resume", "--check-stores", "--dry-run", "--journal",
                        "--keep-journal")


def apply_saved(
    path: Path,
    *,
    given: Mapping[str, object],
    outputs: Outputs,
    concurrency: int,
    max_rate: float | None,
    max_deletes: int | None,
    log_result: Callable[[TargetResult], None],
    kwargs: dict[str, Any],
) -> None:
    """Read the plan, check it against this run (its base URL, its manifests unchanged), and
    carry it out; every refusal comes before the first request (exit 2)."""
    refuse_unwritable({"--report": outputs.report, "--junit": outputs.junit,
                       "--markdown": outputs.markdown})
    refused = [flag for flag in REFUSED_FLAGS if given.get(flag)]
    if refused:
        raise UsageFailure(
            f"{path} is a saved plan, carried out as it was decided: drop "
            f"{', '.join(refused)} (or plan again with them)"
        )
    api = api_from(kwargs)
    client = api.client(max_rate=max_rate)
    try:
        saved = record.current().saved_plan(path)  # as the start event read it, if it did
        saved.check(base_url=client.base_url, max_deletes=max_deletes)
    except ConfigError as exc:
        raise UsageFailure(f"ldbulk: {exc}") from None
    # The same manifests, read again now: their references' values are resolved here, at
    # apply time, and never written into the plan.
    loaded = load([Path(name) for name in saved.manifests], kwargs, token_file=api.token_file)
    try:
        targets = saved.targets(loaded)
    except ConfigError as exc:
        raise UsageFailure(f"ldbulk: {exc}") from None
    report, interrupted_by = run(
        _carry(client, saved, targets, concurrency=concurrency, log_result=log_result), client
    )
    finish(report, outputs, interrupted_by)


async def _carry(
    client: Client,
    saved: SavedPlan,
    targets: Mapping[Key, Target],
    *,
    concurrency: int,
    log_result: Callable[[TargetResult], None],
) -> tuple[Report, signal.Signals | None]:
    stop = asyncio.Event()
    async with client:
        with signals(lambda _: stop.set()) as received:
            report = await carry_out(client, saved, targets, concurrency=concurrency,
                                     stop=stop, on_result=log_result)
    return report, (received[0] if received else None)
