"""The ``ldbulk`` command line: arguments in, ``asyncio.run(...)``, exit code out.

Exit codes: 0 every target created or already there; 1 some target ended otherwise; 2 bad usage
or input (nothing was sent); 130 / 143 interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ldbulk._version import __version__
from ldbulk.api.models import Integration, Target
from ldbulk.cli import logs, render
from ldbulk.engine.apply import ApplyStarted
from ldbulk.engine.apply import apply as apply_workflow
from ldbulk.engine.journal import manifests_digest
from ldbulk.engine.provision import (
    DEFAULT_CONCURRENCY,
    Action,
    Inventory,
    PlanItem,
    plan,
)
from ldbulk.engine.report import Report, TargetResult
from ldbulk.engine.resolve import Unresolved, resolve
from ldbulk.errors import ConfigError, HTTPStatusError, LdbulkError, Unauthorized
from ldbulk.files import write_atomically
from ldbulk.http.client import TOKEN_ENV, Client
from ldbulk.http.pacer import Pacer
from ldbulk.manifest import ManifestError, ManifestSet, load_manifests
from ldbulk.sandbox.cli import sandbox_command
from ldbulk.text import printable

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143

log = logging.getLogger("ldbulk.apply")
stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)


class UsageFailure(click.ClickException):
    """Bad input: print the message, exit 2, never a traceback."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        """Print the message as is: one problem a line, never wrapped, so it can be grepped."""
        click.echo(self.message, err=True)


@attrs.frozen(kw_only=True)
class ApiOptions:
    """Where and how to reach LaunchDarkly: the options every API command shares."""

    base_url: str | None
    instance: str
    token_file: Path | None
    ca_bundle: str | None
    progress: bool

    def client(self, *, max_rate: float | None = None) -> Client:
        """A client for these options (the token from the file or $LD_ACCESS_TOKEN)."""
        token = None
        if self.token_file is not None:
            try:
                token = self.token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageFailure(
                    f"--token-file: cannot read {self.token_file}: {type(exc).__name__}"
                ) from None
        try:
            return Client(
                token,
                base_url=self.base_url,
                instance=self.instance,  # type: ignore[arg-type]
                ca_bundle=self.ca_bundle,
                pacer=Pacer(max_per_window=max_rate),
            )
        except ConfigError as exc:
            raise UsageFailure(str(exc)) from None


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to LaunchDarkly."""
    decorators = [
        click.option(
            "--base-url",
            envvar="LD_BASE_URI",
            help="API origin, e.g. a sandbox's http://127.0.0.1:PORT [env LD_BASE_URI].",
        ),
        click.option(
            "--instance",
            type=click.Choice(["commercial", "federal", "eu"]),
            default="commercial",
            show_default=True,
            help="Which LaunchDarkly to talk to when --base-url is not given.",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"File holding the access token (default: ${TOKEN_ENV}).",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            help="Verify TLS against this CA bundle instead of the system's.",
        ),
        click.option(
            "--no-progress",
            is_flag=True,
            help="No progress bar (automatic when stderr is not a terminal).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _api(kwargs: dict[str, Any]) -> ApiOptions:
    no_progress = kwargs.pop("no_progress")
    return ApiOptions(
        base_url=kwargs.pop("base_url"),
        instance=kwargs.pop("instance"),
        token_file=kwargs.pop("token_file"),
        ca_bundle=kwargs.pop("ca_bundle"),
        progress=not no_progress and stderr.is_terminal,
    )


def _load(
    paths: Sequence[Path], kwargs: dict[str, Any], *, token_file: Path | None = None
) -> ManifestSet:
    """Load the manifests with the options of :func:`manifest_options` (taken from ``kwargs``);
    no reference may read ``token_file``."""
    try:
        return load_manifests(
            paths,
            secrets_dirs=kwargs.pop("secrets_dirs"),
            allow_env=kwargs.pop("allow_env"),
            deny_files=() if token_file is None else (token_file,),
        )
    except ManifestError as exc:
        raise UsageFailure(_problems_text(exc)) from None
    except ConfigError as exc:
        raise UsageFailure(f"ldbulk: {exc}") from None


def _problems_text(exc: ManifestError) -> str:
    lines = [str(problem) for problem in exc.problems]
    noun = "problem" if len(lines) == 1 else "problems"
    return "\n".join([*lines, f"{len(lines)} {noun}; nothing was sent."])


def _run(main: Awaitable[T], client: Client) -> T:
    """Run a coroutine. Exit 2 means bad input and nothing sent; any failure after the first
    request is exit 1, with the API's words and, for a refused token, what to check."""
    try:
        return asyncio.run(main)  # type: ignore[arg-type]
    except (ManifestError, ConfigError) as exc:
        text = _problems_text(exc) if isinstance(exc, ManifestError) else f"ldbulk: {exc}"
        if client.stats.requests == 0:
            raise UsageFailure(text) from None
        click.echo(text, err=True)
    except LdbulkError as exc:
        click.echo(f"ldbulk: {printable(str(exc))}", err=True)
        if isinstance(exc, Unauthorized):
            stderr.print(TOKEN_HINT, style="yellow", soft_wrap=True)
    raise SystemExit(EXIT_FAILED)


# Said once when LaunchDarkly refuses the token, whichever command met the 401.
TOKEN_HINT: Final = (
    f"LaunchDarkly refused the access token (401). Check ${TOKEN_ENV} or --token-file: the "
    "token may be mistyped, expired or revoked, and its role must allow reading and writing "
    "big segment store integrations."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ldbulk")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or as JSON objects.",
)
def main(verbose: int, log_format: logs.LogFormat) -> None:
    """Provision LaunchDarkly persistent stores (Redis, DynamoDB) across many environments."""
    logs.configure(verbose, log_format)


manifest_paths = click.argument(
    "manifests", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)


def manifest_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that loads manifests: what their references may name."""
    decorators = [
        click.option(
            "--secrets-dir",
            "secrets_dirs",
            multiple=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="${file:...} references may also read files under DIR (e.g. /run/secrets); "
            "by default only under the manifest's own directory. Repeatable.",
        ),
        click.option(
            "--allow-env",
            "allow_env",
            multiple=True,
            metavar="NAME",
            help="${NAME} may be used although named like another system's credential "
            "(*_TOKEN, *_API_KEY, AWS keys...). Repeatable; never LD_ACCESS_TOKEN.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@main.command()
@manifest_paths
@manifest_options
def validate(manifests: tuple[Path, ...], **kwargs: Any) -> None:
    """Check manifests offline: syntax, stores, secrets, targets. Sends nothing."""
    loaded = _load(manifests, kwargs)
    stdout.print(
        f"{len(manifests)} manifest(s) valid: {len(loaded.stores)} store(s), "
        f"{len(loaded.selectors)} target line(s)."
    )


@main.command("plan")
@manifest_paths
@manifest_options
@api_options
def plan_command(manifests: tuple[Path, ...], **kwargs: Any) -> None:
    """Show what apply would do per target (create / exists / not found). Reads only."""
    api = _api(kwargs)
    loaded = _load(manifests, kwargs, token_file=api.token_file)
    client = api.client()

    async def go() -> tuple[list[PlanItem], list[Unresolved]]:
        async with client:
            resolution = await resolve(loaded, client)
            return await plan(client, resolution.targets), resolution.unresolved

    items, unresolved = _run(go(), client)
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
    _print_unresolved(unresolved)
    counts = {action: sum(1 for i in items if i.action is action) for action in Action}
    stdout.print(
        f"{len(items)} targets: {counts[Action.CREATE]} to create, "
        f"{counts[Action.EXISTS]} existing, {counts[Action.NOT_FOUND]} not found"
        + (f"; {len(unresolved)} manifest line(s) not resolved." if unresolved else ".")
    )
    raise SystemExit(EXIT_FAILED if counts[Action.NOT_FOUND] or unresolved else EXIT_OK)


def _print_unresolved(unresolved: Sequence[Unresolved]) -> None:
    """Why each manifest line that gave no target gave none (one line each, escaped)."""
    for line in unresolved:
        error = line.result().error
        if error is not None:
            stderr.print(Text(printable(error.message)), style="red")
    if any(isinstance(line.error, Unauthorized) for line in unresolved):
        stderr.print(TOKEN_HINT, style="yellow", soft_wrap=True)


@main.command()
@manifest_paths
@manifest_options
@api_options
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON report here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JUnit XML report here (one testcase per target).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=DEFAULT_CONCURRENCY,
              show_default=True, help="Creates in flight at once.")
@click.option("--max-rate", type=click.FloatRange(min=1), default=None,
              help="Ceiling in requests per 10 s, below LaunchDarkly's own limits.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append each settled target here as it settles (default: REPORT.journal "
              "when --report is given).")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Skip the targets a journal of an interrupted run settled; merge reports.")
@click.option("--dry-run", is_flag=True, help="Only plan: send no writes.")
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
    resume_path: Path | None,
    dry_run: bool,
    **kwargs: Any,
) -> None:
    """Create every target's integration; existing ones are left alone."""
    outputs = {"--report": report_path, "--junit": junit_path, "--markdown": markdown_path}
    if dry_run:
        written = [flag for flag, path in outputs.items() if path is not None]
        written += [flag for flag, path in (("--journal", journal_path),
                                            ("--resume", resume_path)) if path is not None]
        if written:
            raise UsageFailure(
                f"--dry-run sends no writes and writes no files: drop {', '.join(written)} "
                "(or drop --dry-run)"
            )
        ctx.invoke(plan_command, manifests=manifests, **kwargs)
        return
    if journal_path is None:
        # Resuming continues the same journal; otherwise it sits next to the report.
        journal_path = resume_path or (
            report_path.with_name(report_path.name + ".journal") if report_path else None
        )
    _refuse_shared_paths({**outputs, "--journal": journal_path})
    api = _api(kwargs)
    loaded = _load(manifests, kwargs, token_file=api.token_file)
    client = api.client(max_rate=max_rate)
    report, interrupted_by = _run(
        _apply(
            client,
            loaded,
            concurrency=concurrency,
            show_progress=api.progress,
            journal_path=journal_path,
            resume_path=resume_path,
            digest=_digest(manifests),
        ),
        client,
    )
    for path, text in (
        (report_path, report.dumps),
        (junit_path, lambda: render.to_junit(report)),
        (markdown_path, lambda: render.to_markdown(report)),
    ):
        if path is not None:
            write_atomically(path, text())
    if not report.ok:
        stdout.print(render.to_table(report, only_problems=True))
    stdout.print(render.summary_line(report))
    if report.counts["unauthorized"]:
        stderr.print(TOKEN_HINT, style="yellow", soft_wrap=True)
    if interrupted_by is not None:
        stderr.print(_resume_hint(journal_path), style="yellow", soft_wrap=True)
        raise SystemExit(EXIT_SIGINT if interrupted_by == signal.SIGINT else EXIT_SIGTERM)
    raise SystemExit(report.exit_code)


def _refuse_shared_paths(paths: dict[str, Path | None]) -> None:
    """Two outputs on one path would overwrite each other (a journal in place of a report)."""
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise UsageFailure(f"{flag} and {seen[key]} name the same file: {path}")
        seen[key] = flag


def _digest(manifests: Sequence[Path]) -> str:
    try:
        return manifests_digest(manifests)
    except OSError as exc:  # they were just read: only a race gets here
        raise UsageFailure(f"cannot read the manifests again: {exc.strerror}") from None


def _resume_hint(journal_path: Path | None) -> str:
    """After an interrupt: where the journal is, and the exact command that resumes."""
    if journal_path is None:
        return (
            "No journal was kept, so this run cannot be resumed; give --journal PATH "
            "(or --report) next time."
        )
    args = _without_resume(sys.argv[1:])
    command = shlex.join(["ldbulk", *args, "--resume", str(journal_path)])
    return f"The journal is {journal_path}. To resume: {command}"


def _without_resume(args: Sequence[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    return kept


@contextlib.contextmanager
def _signals(on_first: Callable[[signal.Signals], None]) -> Iterator[list[signal.Signals]]:
    """First SIGINT/SIGTERM: stop gracefully. A second SIGINT: leave at once."""
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def handle(signum: signal.Signals) -> None:
        if received and signum == signal.SIGINT:
            stderr.print("Interrupted again: exiting now.", style="red")
            os._exit(EXIT_SIGINT)
        received.append(signum)
        stderr.print(
            f"{signum.name}: finishing requests in flight, skipping the rest "
            "(Ctrl-C again to exit at once).",
            style="yellow",
        )
        on_first(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, handle, signum)
    try:
        yield received
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


class _ProgressDisplay:
    """The progress bar of apply: done/total, rate, ETA, and any rate-limit pause."""

    def __init__(self, total: int, *, enabled: bool, already_done: int) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("[yellow]{task.fields[paused]}"),
            console=stderr,
            disable=not enabled,
        )
        description = f"apply ({already_done} done before)" if already_done else "apply"
        self._task = self.bar.add_task(description, total=total, rate="", paused="")
        self._started = time.monotonic()
        self._paused_until: float | None = None

    def paused(self, until_epoch: float) -> None:
        """The pacer closed its gate until ``until_epoch``."""
        self._paused_until = until_epoch
        clock = time.strftime("%H:%M:%S", time.localtime(until_epoch))
        self.bar.update(self._task, paused=f"paused for rate limit until {clock}")

    def settled(self, result: TargetResult) -> None:
        """One more target is done."""
        done = self.bar.tasks[0].completed + 1
        per_s = done / max(time.monotonic() - self._started, 1e-6)
        still_paused = self._paused_until is not None and self._paused_until > time.time()
        self.bar.update(
            self._task,
            advance=1,
            rate=f"{per_s:.1f}/s",
            paused=self.bar.tasks[0].fields["paused"] if still_paused else "",
        )


def _log_result(result: TargetResult) -> None:
    """One log line per settled target: info when provisioned, a warning otherwise."""
    level = logging.INFO if result.outcome.ok else logging.WARNING
    fields = result.to_json()
    log.log(level, "%s/%s/%s: %s", *result.key, result.outcome.value, extra={"target": fields})


async def _apply(
    client: Client,
    loaded: ManifestSet,
    *,
    concurrency: int,
    show_progress: bool,
    journal_path: Path | None,
    resume_path: Path | None,
    digest: str,
) -> tuple[Report, signal.Signals | None]:
    """The library's apply workflow, with a progress bar, a log line per target and signals."""
    stop = asyncio.Event()
    display: _ProgressDisplay | None = None

    def started(event: ApplyStarted) -> None:
        nonlocal display
        display = _ProgressDisplay(
            event.todo, enabled=show_progress, already_done=event.done_before
        )
        client.pacer.on_pause = display.paused
        display.bar.start()

    def settled(result: TargetResult) -> None:
        if display is not None:
            display.settled(result)
        _log_result(result)

    async with client:
        with _signals(lambda _: stop.set()) as received:
            try:
                report = await apply_workflow(
                    client,
                    loaded,
                    concurrency=concurrency,
                    journal=journal_path,
                    resume=resume_path,
                    digest=digest,
                    stop=stop,
                    on_start=started,
                    on_result=settled,
                )
            finally:
                if display is not None:
                    display.bar.stop()
    return report, (received[0] if received else None)


@attrs.frozen(kw_only=True)
class _StoreState:
    target: Target
    integration: Integration | None
    problem: str = ""

    @property
    def available(self) -> bool:
        status = self.integration.status if self.integration else None
        return bool(status and status.available)


async def _read_states(client: Client, targets: Sequence[Target]) -> list[_StoreState]:
    """Each target's integration read by id (config and status), a few at a time."""
    inventory = Inventory(client)
    await inventory.refresh()
    gate = asyncio.Semaphore(DEFAULT_CONCURRENCY)

    async def read(target: Target) -> _StoreState:
        integration_id = inventory.get(target.key)
        if integration_id is None:
            return _StoreState(target=target, integration=None, problem="not provisioned")
        async with gate:
            try:
                integration = await client.get_integration(*target.key, integration_id)
            except HTTPStatusError as exc:
                return _StoreState(target=target, integration=None, problem=str(exc))
        return _StoreState(target=target, integration=integration)

    return list(await asyncio.gather(*(read(target) for target in targets)))


def _millis(value: int | None) -> str:
    if value is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1000)) + "Z"


def _status_table(states: Sequence[_StoreState]) -> Table:
    table = Table(title="ldbulk status")
    for column in ("target", "available", "potentially stale", "last sync", "errors"):
        table.add_column(column, overflow="fold")
    for state in states:
        name = "/".join(state.target.key)
        status = state.integration.status if state.integration else None
        if status is None:
            table.add_row(Text(name), Text("no", style="red"), Text(""), Text(""),
                          Text(printable(state.problem or "no status reported")))
            continue
        errors = status.errors
        detail = f"{len(errors)}: {printable(errors[-1].message or '')}" if errors else ""
        table.add_row(
            Text(name),
            Text("yes" if status.available else "no",
                 style="green" if status.available else "red"),
            Text("yes" if status.potentially_stale else "no"),
            Text(_millis(status.last_sync)),
            Text(detail),
        )
    return table


@main.command()
@manifest_paths
@manifest_options
@api_options
@click.option("--wait", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Poll until every store is available, for at most this many seconds.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between polls with --wait.")
def status(manifests: tuple[Path, ...], wait: float, interval: float, **kwargs: Any) -> None:
    """Each target's store status: available, potentially stale, last sync, errors."""
    api = _api(kwargs)
    loaded = _load(manifests, kwargs, token_file=api.token_file)
    client = api.client()

    async def go() -> tuple[list[_StoreState], list[Unresolved]]:
        async with client:
            resolution = await resolve(loaded, client)
            deadline = time.monotonic() + wait
            while True:
                states = await _read_states(client, resolution.targets)
                if all(s.available for s in states) or time.monotonic() >= deadline:
                    return states, resolution.unresolved
                await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0)))

    states, unresolved = _run(go(), client)
    stdout.print(_status_table(states))
    _print_unresolved(unresolved)
    ready = sum(1 for s in states if s.available)
    stdout.print(
        f"{ready} of {len(states)} stores available"
        + (f"; {len(unresolved)} manifest line(s) not resolved." if unresolved else ".")
    )
    raise SystemExit(EXIT_OK if ready == len(states) and not unresolved else EXIT_FAILED)


main.add_command(sandbox_command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
