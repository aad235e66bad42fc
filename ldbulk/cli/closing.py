"""How ``ldbulk apply`` ends: the report files, the journal, what it says, and its exit code.

For people (text logs): the problems as a table, one line per project on a big run, the
closing line on stdout; after an interrupt, no row per skipped target but how many there
were, where the journal is and the command that resumes. For a log collector (``--log-format
json``): nothing on stdout, and one ``summary`` event on stderr that says all of it as fields.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, NoReturn

import attrs

from ldbulk.cli import flags, record, render
from ldbulk.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    TOKEN_HINT,
    notice,
    print_line,
    print_table,
    token_refused,
)
from ldbulk.cli.logs import summary_log
from ldbulk.engine.journal import discard, is_complete
from ldbulk.engine.report import Outcome, Report
from ldbulk.files import append_text, write_atomically
from ldbulk.text import printable


@attrs.frozen(kw_only=True)
class Outputs:
    """The files of one apply run, as its flags named them."""

    report: Path | None = None
    junit: Path | None = None
    markdown: Path | None = None
    journal: Path | None = None
    keep_journal: bool = False


@attrs.frozen(kw_only=True)
class Ending:
    """How the run ended, beyond its report: which signal stopped it, and the journal."""

    interrupted_by: signal.Signals | None
    journal_kept: Path | None
    resume_command: str | None

    def exit_code(self, report: Report) -> int:
        """130 / 143 for SIGINT / SIGTERM; otherwise the report's."""
        if self.interrupted_by is None:
            return report.exit_code
        return EXIT_SIGINT if self.interrupted_by == signal.SIGINT else EXIT_SIGTERM


def finish(report: Report, outputs: Outputs, interrupted_by: signal.Signals | None) -> NoReturn:
    """Write the files, remove the journal of a complete run, say how it ended, and exit."""
    unwritten = write_files(report, outputs)
    journal = outputs.journal
    # A report that could not be written leaves the journal as the run's record: a resume
    # of it writes the report without sending a request.
    complete = interrupted_by is None and is_complete(report.results) and not unwritten
    if journal is not None and complete and not outputs.keep_journal:
        discard(journal)
        journal = None
    ending = Ending(
        interrupted_by=interrupted_by,
        journal_kept=journal,
        # Whenever something is left to do: after a stop, or a target that may go another time.
        resume_command=None if complete or journal is None
        else resume_command(record.current().args, journal),
    )
    code = ending.exit_code(report)
    _observe(report)
    if unwritten and code == EXIT_OK:
        code = EXIT_FAILED  # a nightly job must not take a missing report for a clean run
    if not flags.current().json_logs:
        _print_closing(report, outputs, ending)
    for flag, path, reason in unwritten:
        notice(f"ldbulk: {flag}: cannot write {path}: {reason}", style="", level=logging.ERROR)
    if unwritten and ending.resume_command is not None and ending.interrupted_by is None:
        # A resume sends nothing for a target the journal settled, and writes every report.
        notice(f"The journal is {journal}. To write the reports from it:\n"
               f"  {ending.resume_command}")
    if report.counts[Outcome.UNAUTHORIZED] and not token_refused_everywhere(report):
        notice(TOKEN_HINT)
    if flags.current().json_logs:
        _summary_event(report, outputs, ending, code)
    raise SystemExit(code)


def write_files(report: Report, outputs: Outputs) -> list[tuple[str, Path, str]]:
    """The report files asked for, each whole or not at all; one that cannot be written (its
    disk filled during the run) costs neither the others nor the closing lines. Returns the
    unwritten ones: flag, path and why."""
    writers: list[tuple[str, Path | None, Callable[[Path], None]]] = [
        ("--report", outputs.report, lambda path: write_atomically(path, report.write)),
        ("--junit", outputs.junit,
         lambda path: write_atomically(path, render.to_junit(report))),
        ("--markdown", outputs.markdown, lambda path: _write_markdown(path, report)),
    ]  # fmt: skip
    unwritten: list[tuple[str, Path, str]] = []
    for flag, path, write in writers:
        if path is None:
            continue
        try:
            write(path)
        except OSError as exc:
            unwritten.append((flag, path, exc.strerror or type(exc).__name__))
    return unwritten


# Heads a Markdown summary in a file of ldbulk's own, which the next run replaces (an HTML
# comment: no Markdown viewer shows it). A summary appended to someone else's file has none,
# so a second run in the same CI step appends too, rather than replacing the first's.
OWN_MARKDOWN_MARK: Final = "<!-- ldbulk apply: the next run with this --markdown replaces it -->"


def _write_markdown(path: Path, report: Report) -> None:
    text = render.to_markdown(report)
    if is_own_markdown(path):
        write_atomically(path, f"{OWN_MARKDOWN_MARK}\n{text}")
    else:
        append_text(path, text)


def is_own_markdown(path: Path) -> bool:
    """Whether ``--markdown PATH`` may be replaced: it is missing, or a regular file holding
    one summary ldbulk wrote as a file of its own, and nothing else (an earlier run's).
    Anything else, a CI job's step summary (``$GITHUB_STEP_SUMMARY``, empty or holding
    summaries appended to it), a file with other text, a FIFO, is appended to: replacing it
    would lose what others wrote, or the FIFO itself. A symlink is neither (nothing is written
    through one): it is not read here, and writing refuses it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(mode):
        return False
    text = path.read_text(encoding="utf-8", errors="replace")
    return text.startswith(OWN_MARKDOWN_MARK + "\n" + render.MARKDOWN_HEADING + "\n") and (
        text.count(render.MARKDOWN_HEADING + "\n") == 1
    )


def resume_command(argv: Sequence[str], journal: Path) -> str:
    """The command line that resumes this run: the same arguments, ``--resume JOURNAL``."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    return shlex.join(["ldbulk", *kept, "--resume", str(journal)])


def _print_closing(report: Report, outputs: Outputs, ending: Ending) -> None:
    """The problems (never a row per target an interrupt left untried), the per-project
    lines, the closing line; after an interrupt, what was left and how to resume."""
    shown = report
    if ending.interrupted_by is not None:
        # Their rows are in the report: listed here, hundreds would bury the next step.
        tried = tuple(r for r in report.results if r.outcome is not Outcome.SKIPPED)
        shown = attrs.evolve(report, results=tried)
    if token_refused_everywhere(report):
        # Every row would say the same 401: one error says it, with what to check.
        error = report.results[0].error
        said = "unauthorized" if error is None else error.message
        notice(token_refused(printable(said)), style="", level=logging.ERROR)
    elif not shown.ok:
        print_table(render.to_table(shown, only_problems=True))
    if not token_refused_everywhere(report):
        for line in render.project_rollup(report):
            print_line(line)
    print_line(render.summary_line(report))
    if ending.interrupted_by is not None:
        for line in _interrupt_lines(report, outputs, ending):
            notice(line)


def token_refused_everywhere(report: Report) -> bool:
    """Whether LaunchDarkly refused the access token for every target: the token itself is
    wrong (a role that may not touch some projects refuses only theirs, with a 403)."""
    return bool(report.total) and report.counts[Outcome.UNAUTHORIZED] == report.total


def _interrupt_lines(report: Report, outputs: Outputs, ending: Ending) -> list[str]:
    """What an interrupt left: counts, where the rows and the journal are, how to resume."""
    assert ending.interrupted_by is not None
    counts = report.counts
    skipped = counts[Outcome.SKIPPED]
    rows = (
        f"their rows are in the report {outputs.report}"
        if outputs.report is not None
        else "give --report PATH to keep their rows"
    )
    lines = [
        f"Interrupted by {ending.interrupted_by.name}: {report.total - skipped} of "
        f"{report.total} targets settled, {skipped} not tried ({rows})."
    ]
    if ending.resume_command is None:
        lines.append(
            "No journal was kept, so this run cannot be resumed; give --journal PATH "
            "(or --report) next time."
        )
    else:
        lines.append(f"The journal is {ending.journal_kept}. To resume:\n  {ending.resume_command}")
    return lines


def _observe(report: Report) -> None:
    """What the run's metrics count: the report's outcomes and its requests."""
    run = record.current()
    run.observe({outcome.value: n for outcome, n in report.counts.items()})
    stats = report.stats
    run.cost = record.Cost(requests=stats.requests, throttled=stats.throttled,
                           retries=stats.retries, paused_s=stats.paused_s)


def _summary_event(report: Report, outputs: Outputs, ending: Ending, code: int) -> None:
    """The one event that ends a run in JSON lines: everything the closing lines say. Said
    when the process exits (:func:`ldbulk.cli.events.close`), with the final exit code."""
    stats = report.stats
    fields = {
        "event": "summary",
        "counts": {"total": report.total} | report.counts,
        "requests": stats.requests,
        "throttled": stats.throttled,
        "retries": stats.retries,
        "paused_s": round(stats.paused_s, 3),
        "elapsed_s": round(stats.elapsed_s, 3),
        "report": None if outputs.report is None else str(outputs.report),
        "journal": None if ending.journal_kept is None else str(ending.journal_kept),
        "interrupted": None if ending.interrupted_by is None else ending.interrupted_by.name,
        "resume_command": ending.resume_command,
        "exit_code": code,
    }
    if render.project_rollup(report):
        fields["projects"] = render.project_counts(report)
    level = logging.INFO if code == 0 else logging.WARNING
    run = record.active()
    if run is None:  # not under the command line's main: nobody will say it later
        summary_log.log(level, "%s", render.summary_line(report), extra=fields)
    else:
        run.closing = record.Closing(level=level, message=render.summary_line(report),
                                     fields=fields)
