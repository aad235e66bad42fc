"""``ldbulk apply``: the library's apply workflow with a progress bar, logs, signals and the
report files."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click

from ldbulk.api.sansio import ROUTE_CREATE
from ldbulk.cli.closing import Outputs, finish
from ldbulk.cli.common import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    UsageFailure,
    api_from,
    api_options,
    load,
    manifest_options,
    manifest_paths,
    notice,
    refuse_unwritable,
    run,
    warn_unresolved,
)
from ldbulk.cli.consent import consent_for
from ldbulk.cli.metrics import metrics_option
from ldbulk.cli.plan import plan_command
from ldbulk.cli.progress import ProgressDisplay
from ldbulk.cli.saved import apply_saved
from ldbulk.cli.signals import signals
from ldbulk.engine.apply import ApplyStarted
from ldbulk.engine.apply import apply as apply_workflow
from ldbulk.engine.provision import default_concurrency
from ldbulk.engine.report import Outcome, Report, TargetResult
from ldbulk.engine.saved import is_plan_file
from ldbulk.errors import PruneRefused, Unauthorized
from ldbulk.http.client import Client
from ldbulk.manifest import ManifestSet

log = logging.getLogger("ldbulk.apply")


@click.command()
@manifest_paths
@manifest_options
@api_options
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON report here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JUnit XML report here (one testcase per target).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Markdown summary here. A file that is not an earlier run's "
              "summary (e.g. $GITHUB_STEP_SUMMARY, a FIFO) is appended to, not replaced.")
@click.option("--concurrency", type=click.IntRange(1, 4096), default=default_concurrency(),
              show_default=True,
              help="The most requests in flight at once. The rate-limit budget LaunchDarkly "
                   "announces decides how many go; this only caps it.")
@click.option("--max-rate", type=click.FloatRange(min=1), default=None,
              help="Ceiling in requests per 10 s, below LaunchDarkly's own limits.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append each settled target here as it settles (default: REPORT.journal "
              "when --report is given). Removed after a complete run unless --keep-journal.")
@click.option("--keep-journal", is_flag=True,
              help="Keep the journal after a complete run (by default it is removed once "
              "every target is final; after an interrupt or a failure it stays, to resume).")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Skip the targets a journal of an interrupted run settled; merge reports.")
@click.option("--create-only", is_flag=True,
              help="Only create what is missing: existing integrations are left alone, unread "
              "(a re-run is one request).")
@click.option("--rotate-secrets", is_flag=True,
              help="Write the secrets LaunchDarkly redacts on read (a Redis password) to every "
              "existing integration; they cannot be compared, so they are otherwise kept.")
@click.option("--prune", is_flag=True,
              help="Also delete the integrations carrying the manifests' ownership tag that no "
              "target names: anywhere with a tag of their own, only in the manifests' projects "
              "and integration keys with the shared default (see plan --prune first).")
@click.option("--yes", "--auto-approve", "yes", is_flag=True,
              help="Delete what --prune would delete without asking. Without it, apply asks "
              "on a terminal, and refuses (exit 2, nothing written) without one.")
@click.option("--max-deletes", type=click.IntRange(min=0), default=None, metavar="N",
              help="Refuse (exit 2, nothing written) a prune that would delete more than N.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Remember each integration's version here; the next run skips reading "
              "those still as this run left them (a nightly job's re-run in one listing).")
@click.option("--check-stores", is_flag=True,
              help="First test each store from here (as ldbulk check); a failing store's "
              "targets are not tried and end skipped with the reason.")
@click.option("--dry-run", is_flag=True, help="Only plan: send no writes.")
@metrics_option
@click.pass_context
def apply(
    ctx: click.Context,
    /,
    manifests: tuple[Path, ...],
    report_path: Path | None,
    junit_path: Path | None,
    markdown_path: Path | None,
    concurrency: int,
    max_rate: float | None,
    journal_path: Path | None,
    keep_journal: bool,
    resume_path: Path | None,
    create_only: bool,
    rotate_secrets: bool,
    prune: bool,
    yes: bool,
    max_deletes: int | None,
    state_path: Path | None,
    check_stores: bool,
    dry_run: bool,
    **kwargs: Any,
) -> None:
    """Converge every target's integration: create what is missing, patch what differs from
    the manifest, and with --prune delete what the manifests no longer name.

    Given a saved plan (plan --out PLAN) instead of manifests, carry out exactly its actions.
    """
    outputs = {"--report": report_path, "--junit": junit_path, "--markdown": markdown_path}
    if len(manifests) == 1 and is_plan_file(manifests[0]):
        given = {"--create-only": create_only, "--rotate-secrets": rotate_secrets,
                 "--prune": prune, "--state": state_path, "--resume": resume_path,
                 "--check-stores": check_stores, "--dry-run": dry_run,
                 "--journal": journal_path, "--keep-journal": keep_journal}
        _carry_out(manifests[0], given, outputs, concurrency=concurrency, max_rate=max_rate,
                   max_deletes=max_deletes, kwargs=kwargs)
    _refuse_flags_at_odds(create_only, rotate_secrets, prune, max_deletes)
    writes = {"create_only": create_only, "rotate_secrets": rotate_secrets, "prune": prune}
    if dry_run:
        _refuse_files_with_dry_run({**outputs, "--journal": journal_path, "--resume": resume_path,
                                    "--keep-journal": keep_journal or None})
        # The state file is read as the apply would read it, and left as it is.
        ctx.invoke(plan_command, manifests=manifests, state_path=state_path, **writes, **kwargs)
        return
    # Resuming continues the same journal; otherwise it sits next to the report.
    journal_path = journal_path or resume_path or _beside(report_path, ".journal")
    _refuse_shared_paths({**outputs, "--state": state_path}, journal_path, resume_path)
    refuse_unwritable({**outputs, "--journal": journal_path, "--state": state_path})
    api = api_from(kwargs)
    loaded = load(manifests, kwargs, token_file=api.token_file)
    client = api.client(max_rate=max_rate)
    report, interrupted_by = run(_apply(
        client, loaded, concurrency=concurrency, show_progress=api.progress,
        journal_path=journal_path, resume_path=resume_path, writes=writes,
        deletes=_Deletes(yes=yes, max_deletes=max_deletes), state_path=state_path,
        check_stores=check_stores,
    ), client)
    files = Outputs(report=report_path, junit=junit_path, markdown=markdown_path,
                    journal=journal_path, keep_journal=keep_journal)
    finish(report, files, interrupted_by)


def _carry_out(
    plan: Path,
    given: Mapping[str, object],
    outputs: dict[str, Path | None],
    *,
    concurrency: int,
    max_rate: float | None,
    max_deletes: int | None,
    kwargs: dict[str, Any],
) -> None:
    """Carry out a saved plan (``given``: the flags a plan decides instead)."""
    _refuse_shared_paths(outputs, None, None)
    files = Outputs(report=outputs["--report"], junit=outputs["--junit"],
                    markdown=outputs["--markdown"])
    apply_saved(plan, given=given, outputs=files, concurrency=concurrency, max_rate=max_rate,
                max_deletes=max_deletes, log_result=lambda result: _log_result(result, None),
                kwargs=kwargs)


def _beside(path: Path | None, suffix: str) -> Path | None:
    """The file named after ``path`` with ``suffix`` added, next to it (None without one)."""
    return path.with_name(path.name + suffix) if path is not None else None


def _refuse_flags_at_odds(
    create_only: bool, rotate_secrets: bool, prune: bool, max_deletes: int | None
) -> None:
    """Flags that cannot be honoured together are refused, not one of them ignored."""
    if create_only and rotate_secrets:
        raise UsageFailure("--create-only leaves existing integrations alone: drop one of "
                           "--create-only and --rotate-secrets")
    if max_deletes is not None and not prune:
        raise UsageFailure("--max-deletes limits what --prune deletes: add --prune or drop it")


def _refuse_files_with_dry_run(paths: dict[str, Path | bool | None]) -> None:
    """A dry run writes nothing: a file flag it would ignore is refused, not ignored."""
    given = [flag for flag, path in paths.items() if path is not None]
    if given:
        raise UsageFailure(
            f"--dry-run sends no writes and writes no files: drop {', '.join(given)} "
            "(or drop --dry-run)"
        )


def _refuse_shared_paths(
    outputs: dict[str, Path | None], journal: Path | None, resume: Path | None
) -> None:
    """No two files may share a path: a report would overwrite a journal, or the journal being
    resumed. The one exception: resuming continues the journal it reads."""
    seen: dict[Path, str] = {}
    for flag, path in [*outputs.items(), ("--journal", journal), ("--resume", resume)]:
        if path is None:
            continue
        key = path.resolve()
        if key in seen and {flag, seen[key]} != {"--journal", "--resume"}:
            raise UsageFailure(f"{flag} and {seen[key]} name the same file: {path}")
        seen[key] = flag


@attrs.frozen(kw_only=True)
class _Deletes:
    """What the command line says of a prune's deletes: consent given, and the most allowed."""

    yes: bool
    max_deletes: int | None


def _refused(exc: PruneRefused, received: list[signal.Signals]) -> NoReturn:
    """A prune refused before its first write: exit 2, or the signal's code when a stop at
    the question refused it."""
    if received:
        notice(f"ldbulk: {exc}", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGINT if received[0] == signal.SIGINT else EXIT_SIGTERM)
    raise UsageFailure(f"ldbulk: {exc}")


def _warn_unresolved(started: ApplyStarted) -> None:
    """A warning per manifest line that gave no target, but for a refused token: the same
    401 for every line, which the closing lines say once, with what to check."""
    for line in started.unresolved:
        if not isinstance(line.error, Unauthorized):
            warn_unresolved(line, log)


def _log_result(result: TargetResult, started: ApplyStarted | None) -> None:
    """One log line per settled target: info when provisioned, a warning otherwise (debug
    for a refused token: the same 401 for every target, which the closing lines say once);
    its facts are fields of their own for JSON lines (never a config: a result holds none)."""
    level = logging.INFO if result.outcome.ok else logging.WARNING
    if result.outcome is Outcome.UNAUTHORIZED:
        level = logging.DEBUG
    if not log.isEnabledFor(level):
        return  # 100,000 targets: no fields built for lines nobody will see
    target = "/".join(result.key)
    source, store = started.locate(result.key) if started is not None else ("", "")
    fields = {
        "target": target,
        "outcome": result.outcome.value,
        "status": result.status,
        "attempt": result.attempts,
        "ms": round(result.elapsed_s * 1000, 1),
        "integration_id": result.integration_id,
        "source": source or None,
        "store": store or None,
        "changed": list(result.changed),
        "error": None if result.error is None else result.error.message,
        "request_id": None if result.error is None else result.error.id,
    }
    log.log(level, "%s: %s", target, result.outcome.value, extra=fields)


async def _apply(
    client: Client,
    loaded: ManifestSet,
    *,
    concurrency: int,
    show_progress: bool,
    journal_path: Path | None,
    resume_path: Path | None,
    writes: dict[str, bool],
    deletes: _Deletes,
    state_path: Path | None,
    check_stores: bool,
) -> tuple[Report, signal.Signals | None]:
    """The library's apply workflow, with a progress bar, a log line per target and signals."""
    stop = asyncio.Event()
    display: ProgressDisplay | None = None

    run_started: ApplyStarted | None = None

    def started(event: ApplyStarted) -> None:
        nonlocal display, run_started
        run_started = event
        _warn_unresolved(event)
        display = ProgressDisplay(
            event.todo, enabled=show_progress, already_done=event.done_before,
            budget_per_s=lambda: client.pacer.budget_per_s(ROUTE_CREATE),
        )
        display.bar.start()

    def paused(until: float) -> None:
        if display is not None:
            display.paused(until)

    def settled(result: TargetResult) -> None:
        if display is not None:
            display.settled(result)
        # After an interrupt, a line per target left untried would bury what to do next:
        # the closing lines count them, and the report has their rows.
        if not (stop.is_set() and result.outcome is Outcome.SKIPPED):
            _log_result(result, run_started)

    async with client:
        # Subscribed for this run only: the client's pacer may have other listeners.
        stop_listening = client.pacer.on_pause(paused)
        with signals(lambda _: stop.set()) as received:
            try:
                report = await apply_workflow(
                    client, loaded, concurrency=concurrency, journal=journal_path,
                    resume=resume_path, stop=stop, on_start=started, on_result=settled,
                    state=state_path, check_stores=check_stores,
                    max_deletes=deletes.max_deletes,
                    consent=consent_for(yes=deletes.yes, stop=stop), **writes,
                )
            except PruneRefused as exc:
                _refused(exc, received)
            finally:
                stop_listening()
                if display is not None:
                    display.bar.stop()
    return report, (received[0] if received else None)
