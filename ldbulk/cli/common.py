"""What every command shares: exit codes, consoles, the API and manifest options, and how a
command's coroutine runs and fails.

Exit codes: 0 every target created or already there; 1 some target ended otherwise, or the
API failed after requests were sent; 2 bad usage or input (nothing was sent); 130 / 143
interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ldbulk.cli import flags, narrow, record, render
from ldbulk.engine.resolve import Unresolved
from ldbulk.errors import ConfigError, LdbulkError, Unauthorized
from ldbulk.files import check_writable
from ldbulk.http.client import TOKEN_ENV, Client, Timeouts
from ldbulk.http.pacer import Pacer
from ldbulk.manifest import ManifestError, ManifestSet, Problem, load_manifests
from ldbulk.text import printable

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_CHANGES: Final = 3  # plan --detailed-exitcode: apply would change something
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143

stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)

_log = logging.getLogger("ldbulk.cli")


def notice(text: str | Text, *, style: str = "yellow", level: int = logging.WARNING) -> None:
    """A message for the person at the terminal, on stderr. With ``--log-format json`` it is a
    log line of its own instead (at ``level``): stderr then holds JSON lines and nothing else."""
    if flags.current().json_logs:
        # JSON escapes every control character itself; a message's lines stay lines.
        _log.log(level, "%s", text.plain if isinstance(text, Text) else text)
    else:
        stderr.print(text if isinstance(text, Text) else Text(text), style=style, soft_wrap=True)


class UsageFailure(click.ClickException):
    """Bad input: print the message, exit 2, never a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        # Taken now: click shows the error after the command's context is gone.
        self.json_logs = flags.current().json_logs
        self.problems = tuple(problems)
        record.current().problems = self.problems  # for the summary event

    def show(self, file: Any = None) -> None:
        """Print the message as is: one problem a line, never wrapped, so it can be grepped.
        With JSON logs, one error line each problem of a manifest, its place in fields of its
        own (file, line, path), then the message's last line; else one error line holding it."""
        if not self.json_logs:
            click.echo(self.message, err=True)
            return
        if not self.problems:
            _log.error("%s", self.message)
            return
        for problem in self.problems:
            fields = {"file": problem.file, "line": problem.line, "path": problem.path}
            _log.error("%s", problem, extra=fields)
        _log.error("%s", self.message.rsplit("\n", 1)[-1])


@attrs.frozen(kw_only=True)
class ApiOptions:
    """Where and how to reach LaunchDarkly: the options every API command shares."""

    base_url: str | None
    instance: str
    token_file: Path | None
    ca_bundle: str | None
    progress: bool
    listing_deadline: float = Timeouts().listing
    request_timeout: float = Timeouts().total

    def client(self, *, max_rate: float | None = None) -> Client:
        """A client for these options (the token from the file or $LD_ACCESS_TOKEN); what is
        wrong with them is said in the command line's words (its flags, not the library's
        arguments)."""
        token = os.environ.get(TOKEN_ENV)
        if self.token_file is not None:
            try:
                token = self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise UsageFailure(
                    f"--token-file: cannot read {self.token_file}: {reason}"
                ) from None
            except UnicodeDecodeError:
                raise UsageFailure(
                    f"--token-file: {self.token_file} is not UTF-8 text"
                ) from None
            if not token:
                raise UsageFailure(f"--token-file: {self.token_file} is empty")
        if not token or not token.strip():
            raise UsageFailure(
                f"no access token: set {TOKEN_ENV} or give --token-file FILE "
                "(a LaunchDarkly API access token, api-...)"
            )
        try:
            return Client(
                token,
                base_url=self.base_url,
                instance=self.instance,  # type: ignore[arg-type]
                ca_bundle=self.ca_bundle,
                pacer=Pacer(max_per_window=max_rate),
                timeouts=Timeouts(total=self.request_timeout, listing=self.listing_deadline),
            )
        except ConfigError as exc:
            message = str(exc)
            for argument, flag in _FLAGS.items():
                if message.startswith(argument + ":"):
                    message = flag + message.removeprefix(argument)
            raise UsageFailure(message) from None


# The library's names for what the command line calls a flag, as its messages start.
_FLAGS: Final = {"base URL": "--base-uri", "ca_bundle": "--ca-bundle", "instance": "--instance"}


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to LaunchDarkly."""
    decorators = [
        click.option(
            "--base-uri",
            "--base-url",
            "base_url",
            envvar="LD_BASE_URI",
            help="API origin, e.g. a sandbox's http://127.0.0.1:PORT [env LD_BASE_URI]; "
            "--base-url is the same.",
        ),
        click.option(
            "--instance",
            type=click.Choice(["commercial", "federal", "eu"]),
            default="commercial",
            show_default=True,
            help="Which LaunchDarkly to talk to when --base-uri is not given.",
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
            "--request-timeout",
            type=click.FloatRange(min=0.1),
            default=Timeouts().total,
            show_default=True,
            metavar="SECONDS",
            help="How long an answer may take (the first bytes of a listing): after a "
            "network partition heals, a run goes on within this plus one rate-limit window.",
        ),
        click.option(
            "--listing-deadline",
            type=click.FloatRange(min=1),
            default=Timeouts().listing,
            show_default=True,
            metavar="SECONDS",
            help="The longest one listing of the account's integrations may take, however "
            "fast it keeps coming (it must also start within --request-timeout and bring "
            f"{Timeouts().listing_min_rate / 1024:g} KiB/s on average).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def api_from(kwargs: dict[str, Any]) -> ApiOptions:
    return ApiOptions(
        base_url=kwargs.pop("base_url"),
        instance=kwargs.pop("instance"),
        token_file=kwargs.pop("token_file"),
        ca_bundle=kwargs.pop("ca_bundle"),
        listing_deadline=kwargs.pop("listing_deadline"),
        request_timeout=kwargs.pop("request_timeout"),
        progress=not (flags.current().no_progress or flags.current().json_logs)
        and stderr.is_terminal,
    )


def load(
    paths: Sequence[Path],
    kwargs: dict[str, Any],
    *,
    token_file: Path | None = None,
    require_secrets: bool = True,
    compares: bool = True,
) -> ManifestSet:
    """Load the manifests with the options of :func:`manifest_options` (taken from ``kwargs``);
    no reference may read ``token_file``. Without ``require_secrets`` (a command that only
    reads), the ``${VAR}`` references whose variables are not set are a note, not an error;
    ``compares``: the command compares fields with LaunchDarkly's (validate does not)."""
    try:
        loaded = load_manifests(
            paths,
            secrets_dirs=kwargs.pop("secrets_dirs"),
            allow_env=kwargs.pop("allow_env"),
            deny_files=() if token_file is None else (token_file,),
            require_secrets=require_secrets,
        )
    except ManifestError as exc:
        raise UsageFailure(problems_text(exc), problems=exc.problems) from None
    except ConfigError as exc:
        raise UsageFailure(f"ldbulk: {exc}") from None
    unset = loaded.unset_references
    if unset:
        used = "; ".join(f"{ref} (store {', '.join(stores)})" for ref, stores in unset.items())
        compared = " Fields using them are not compared." if compares else ""
        notice(
            f"Note: not set: {used}.{compared} apply needs their values "
            "(validate --require-secrets makes this an error)."
        )
    return loaded


def print_line(text: str | Text) -> None:
    """One line on stdout, never wrapped at the terminal's (or rich's default 80) width."""
    stdout.print(text, soft_wrap=True, markup=False)


def print_table(table: Table) -> None:
    """A table on stdout: rich's on a terminal; elsewhere plain aligned text at full width,
    so no key is ever wrapped or cut at 80 columns."""
    if narrow.is_narrow(stdout.width, terminal=stdout.is_terminal):
        _print_blocks(table, [[_plain(cell) for cell in row] for row in zip(
            *(column.cells for column in table.columns), strict=True)])
    elif stdout.is_terminal:
        stdout.print(table)
    else:
        click.echo(render.plain_table(table))


def print_rows(table: Table, rows: Callable[[], Iterable[Sequence[Text]]]) -> None:
    """``rows`` under ``table``'s title and columns, as :func:`print_table` shows them; off a
    terminal written line by line, never held whole (``rows`` is called twice)."""
    if narrow.is_narrow(stdout.width, terminal=stdout.is_terminal):
        _print_blocks(table, ([cell.plain for cell in row] for row in rows()))
        return
    if stdout.is_terminal:
        for row in rows():
            table.add_row(*row)
        stdout.print(table)
        return

    def plain() -> Iterator[list[str]]:
        return ([cell.plain for cell in row] for row in rows())

    for line in render.plain_lines(table, plain):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _print_blocks(table: Table, rows: Iterable[Sequence[str]]) -> None:
    """A table as a narrow terminal shows it: its title, then a block per row."""
    if table.title:
        print_line(Text(str(table.title), style="italic"))
    for line in narrow.row_blocks([str(column.header) for column in table.columns], rows):
        print_line(Text(line))
    if table.caption:
        print_line(Text(str(table.caption)))


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def problems_text(exc: ManifestError) -> str:
    lines = [str(problem) for problem in exc.problems]
    noun = "problem" if len(lines) == 1 else "problems"
    return "\n".join([*lines, f"{len(lines)} {noun}; nothing was sent."])


def run(main: Awaitable[T], client: Client) -> T:
    """Run a coroutine. Exit 2 means bad input and nothing sent; any failure after the first
    request is exit 1, with the API's words and, for a refused token, what to check."""
    from ldbulk.cli.interrupts import sigint_to_asyncio  # here: it imports this module

    try:
        with sigint_to_asyncio():
            return asyncio.run(main)  # type: ignore[arg-type]
    except (ManifestError, ConfigError) as exc:
        text = problems_text(exc) if isinstance(exc, ManifestError) else f"ldbulk: {exc}"
        if client.stats.requests == 0:
            problems = exc.problems if isinstance(exc, ManifestError) else ()
            raise UsageFailure(text, problems=problems) from None
        notice(text, style="", level=logging.ERROR)
    except Unauthorized as exc:
        notice(token_refused(printable(str(exc))), style="", level=logging.ERROR)
    except LdbulkError as exc:
        notice(f"ldbulk: {printable(str(exc))}", style="", level=logging.ERROR)
    finally:
        stats = client.stats
        record.current().cost = record.Cost(requests=stats.requests, throttled=stats.throttled,
                                            retries=stats.retries, paused_s=stats.paused_s)
    raise SystemExit(EXIT_FAILED)


# Said once when LaunchDarkly refuses the token, whichever command met the 401.
TOKEN_HINT: Final = (
    f"LaunchDarkly refused the access token (401). Check ${TOKEN_ENV} or --token-file: the "
    "token may be mistyped, expired or revoked, and its role must allow reading and writing "
    "big segment store integrations."
)


def token_refused(said: str) -> str:
    """The one error for an access token LaunchDarkly refused, whatever met it first: the 401
    with LaunchDarkly's words (``said``), then what to check. Said once, not once per project
    or target: every request with the token meets the same answer."""
    check = TOKEN_HINT.split(". ", 1)[1]
    status = "" if "401" in said else "401: "
    return f"ldbulk: LaunchDarkly refused the access token ({status}{said}). {check}"


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


def output_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``-o text|json``: a table for people, or one JSON document on stdout."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="A table for people, or one JSON document on stdout (shape in the README).",
    )(command)


def unresolved_json(unresolved: Sequence[Unresolved]) -> list[dict[str, Any]]:
    """The manifest lines that gave no target, as -o json shows them."""
    rows = []
    for line in unresolved:
        row = line.result()
        rows.append({
            "project": row.project,
            "environment": row.environment,
            "integration": row.integration,
            "outcome": row.outcome.value,
            "message": None if row.error is None else row.error.message,
        })
    return rows


def print_unresolved(unresolved: Sequence[Unresolved]) -> None:
    """Why each manifest line that gave no target gave none (one line each, escaped). With
    JSON logs, one warning line each, its facts as fields (:func:`warn_unresolved`)."""
    refused = [line for line in unresolved if isinstance(line.error, Unauthorized)]
    for line in unresolved:
        if flags.current().json_logs:
            warn_unresolved(line)
            continue
        error = line.result().error
        if error is not None and line not in refused:
            notice(printable(error.message), style="red", level=logging.ERROR)
    if refused:
        said = refused[0].result().error
        notice(token_refused(printable(said.message if said else "unauthorized")),
               style="", level=logging.ERROR)


def warn_unresolved(line: Unresolved, logger: logging.Logger = _log) -> None:
    """One warning line for a manifest line that gave no target: the line (``source``,
    ``file:line``), what it named, its outcome and why, as a target's line has them."""
    row = line.result()
    fields = {  # no "target": a line is not one (its environment may be a selector)
        "project": row.project,
        "environment": row.environment,
        "integration": row.integration,
        "outcome": row.outcome.value,
        "status": row.status,
        "source": row.source,
        "error": None if row.error is None else row.error.message,
        "unresolved": True,
    }
    message = row.error.message if row.error is not None else row.outcome.value
    logger.warning("%s: %s", row.source, message, extra=fields)


def refuse_unwritable(paths: dict[str, Path | None]) -> None:
    """A file asked for that could never be written stops the run before its first request,
    not after its last one."""
    for flag, path in paths.items():
        if path is None:
            continue
        try:
            check_writable(path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UsageFailure(f"{flag}: cannot write {path}: {reason}") from None
