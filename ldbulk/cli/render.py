"""Renderings of a :class:`~ldbulk.engine.report.Report` for people and CI: JUnit, Markdown,
terminal.

Every text field passes through :func:`~ldbulk.text.printable`: error messages and ids come
from LaunchDarkly, and a control character in them would break the XML or drive the terminal.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final
from xml.etree import ElementTree

from rich.table import Table
from rich.text import Text

from ldbulk.engine.report import Outcome, Report, TargetResult
from ldbulk.text import natural_key, natural_order, printable

_STYLE = {
    Outcome.CREATED: "green",
    Outcome.UPDATED: "yellow",
    Outcome.UNCHANGED: "cyan",
    Outcome.EXISTS: "cyan",
    Outcome.DELETED: "magenta",
    Outcome.SKIPPED: "yellow",
}


# The first line of every Markdown summary: how a file ldbulk may replace is told from one it
# must append to (a CI job's step summary).
MARKDOWN_HEADING: Final = "## ldbulk apply"

# Above this many targets the closing line is preceded by one line per project: a failure
# concentrated in one project is then seen without reading the report.
ROLLUP_OVER: Final = 20
ROLLUP_MOST_LINES: Final = 30


def _target_name(result: TargetResult) -> str:
    return printable(f"{result.project}/{result.environment}/{result.integration}")


def _detail(result: TargetResult) -> str:
    if result.error is None:
        return f"changed: {', '.join(result.changed)}" if result.changed else ""
    text = f"{result.error.code}: {result.error.message}" if result.error.code else ""
    text = text or result.error.message
    if result.error.id:
        text += f" (request id {result.error.id})"
    return printable(text)


def _id(result: TargetResult) -> str:
    return printable(result.integration_id or "")


def to_junit(report: Report) -> str:
    """JUnit XML: one testcase per target, so CI dashboards show each environment."""
    counts = report.counts
    failures = sum(1 for r in report.results if not r.outcome.ok and r.outcome != Outcome.SKIPPED)
    suite = ElementTree.Element(
        "testsuite",
        name="ldbulk",
        tests=str(report.total),
        failures=str(failures),
        skipped=str(counts[Outcome.SKIPPED]),
        time=f"{report.stats.elapsed_s:.3f}",
    )
    for result in report.results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=printable(f"ldbulk.{result.project}"),
            name=printable(f"{result.environment}/{result.integration}"),
            # The case's own time: its requests, not its wait for a turn under the rate
            # limits (the cases of a throttled run would add up to many times the suite's).
            time=f"{max(result.elapsed_s - result.waited_s, 0.0):.3f}",
        )
        properties = ElementTree.SubElement(case, "properties")
        ElementTree.SubElement(
            properties, "property", name="rate_limit_wait_s", value=f"{result.waited_s:.3f}"
        )
        if result.outcome == Outcome.SKIPPED:
            ElementTree.SubElement(case, "skipped", message=_detail(result))
        elif not result.outcome.ok:
            failure = ElementTree.SubElement(
                case, "failure", type=result.outcome.value, message=_detail(result)
            )
            failure.text = f"status {result.status}, {result.attempts} attempt(s)"
        else:
            out = ElementTree.SubElement(case, "system-out")
            out.text = " ".join(
                part for part in (result.outcome.value, _id(result), _detail(result)) if part
            )
    ElementTree.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
        suite, encoding="unicode"
    ) + "\n"


def _cell(text: object) -> str:
    return printable(str(text)).replace("|", "\\|")


def to_markdown(report: Report, *, max_rows: int = 200) -> str:
    """A Markdown summary for CI job pages: counts, stats, every target that is not ok, then
    what the run changed in place (updates, deletes)."""
    counts = report.counts
    stats = report.stats
    lines = [
        MARKDOWN_HEADING,
        "",
        "| outcome | targets |",
        "|---|---:|",
        *(f"| {name} | {n} |" for name, n in counts.items() if n or name == "total"),
        "",
        f"{stats.requests} requests, {stats.throttled} throttled (429), {stats.retries} retries, "
        f"{stats.elapsed_s:.1f} s, {stats.paused_s:.1f} s paused for rate limits.",
        "",
    ]
    problems = sorted((r for r in report.results if not r.outcome.ok),
                      key=lambda result: natural_order(result.key))
    if problems:
        lines += [
            "| project | environment | integration | outcome | status | error |",
            "|---|---|---|---|---:|---|",
        ]
        for result in problems[:max_rows]:
            lines.append(
                f"| {_cell(result.project)} | {_cell(result.environment)} | "
                f"{_cell(result.integration)} | {result.outcome.value} | {result.status or ''} | "
                f"{_cell(_detail(result))} |"
            )
        if len(problems) > max_rows:
            lines.append(f"\n{len(problems) - max_rows} more not shown; see the JSON report.")
    else:
        lines.append("Every target is provisioned.")
    changes = [r for r in report.results if r.outcome in (Outcome.UPDATED, Outcome.DELETED)]
    if changes:
        lines += ["", "| changed | outcome | fields |", "|---|---|---|"]
        lines += [
            f"| {_cell(_target_name(result))} | {result.outcome.value} | "
            f"{_cell(', '.join(result.changed))} |"
            for result in changes[:max_rows]
        ]
        if len(changes) > max_rows:
            lines.append(f"\n{len(changes) - max_rows} more not shown; see the JSON report.")
    return "\n".join(lines) + "\n"


def to_table(report: Report, *, only_problems: bool = False, max_rows: int = 50) -> Table:
    """A rich table of the results (every target, or only those not provisioned)."""
    table = Table(title="ldbulk apply", show_lines=False)
    for column in ("target", "outcome", "status", "integration id", "attempts", "detail"):
        table.add_column(column, overflow="fold")
    rows = sorted((r for r in report.results if not (only_problems and r.outcome.ok)),
                  key=lambda result: natural_order(result.key))
    for result in rows[:max_rows]:
        style = _STYLE.get(result.outcome, "red")
        # Text, not markup strings: keys and error messages may contain "[".
        table.add_row(
            Text(_target_name(result)),
            Text(result.outcome.value, style=style),
            Text(str(result.status or "")),
            Text(_id(result)),
            Text(str(result.attempts)),
            Text(_detail(result)),
        )
    if len(rows) > max_rows:
        table.caption = f"{len(rows) - max_rows} more rows in the JSON report"
    return table


def plain_table(table: Table) -> str:
    """A rich table as plain aligned text, every cell whole (never wrapped or cut), for output
    that is not a terminal: a log, a CI page, a pipe to grep. The title and caption, when
    there are some, come first and last."""
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    text = list(plain_lines(table, lambda: zip(*columns, strict=True)))
    if table.caption:
        text.append(str(table.caption))
    return "\n".join(text)


def plain_lines(table: Table, rows: Callable[[], Iterable[Sequence[str]]]) -> Iterator[str]:
    """``table``'s title and header, then ``rows``, as lines of plain aligned text.

    ``rows`` is called twice, once for the columns' widths and once for the lines, so a table
    of 100,000 rows is never held, as cells or as text.
    """
    header = [str(column.header) for column in table.columns]
    widths = [len(name) for name in header]
    for row in rows():
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    if table.title:
        yield str(table.title)
    for line in itertools.chain([header], rows()):
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        yield "  ".join(cells).rstrip()


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def summary_line(report: Report) -> str:
    """One line of counts, e.g. ``300 targets: 280 created, 20 exists``."""
    counts = report.counts
    parts = [f"{n} {outcome}" for outcome, n in counts.items() if n]
    stats = report.stats
    # Time spent held back by rate limits is not time ldbulk was slow: say how much it was.
    # (Not the slow start's few milliseconds: "0.0 s paused" would say nothing.)
    paused = (
        f", {stats.paused_s:.1f} s of it paused for rate limits"
        if round(stats.paused_s, 1)
        else ""
    )
    return (
        f"{report.total} targets: {', '.join(parts) or 'nothing to do'} "
        f"({stats.requests} requests, {stats.throttled} throttled, {stats.elapsed_s:.1f} s"
        f"{paused})"
    )


def project_counts(report: Report) -> dict[str, dict[str, int]]:
    """Per project (in natural order: ``proj-2`` before ``proj-10``), the count of each
    outcome that occurred, in the outcomes' order."""
    per: dict[str, Counter[Outcome]] = {}
    for result in sorted(report.results, key=lambda result: natural_key(result.project)):
        per.setdefault(result.project, Counter())[result.outcome] += 1
    return {
        project: {outcome.value: counts[outcome] for outcome in Outcome if counts[outcome]}
        for project, counts in per.items()
    }


def project_rollup(
    report: Report, *, over: int = ROLLUP_OVER, most: int = ROLLUP_MOST_LINES
) -> list[str]:
    """One aligned line per project with its counts per outcome, when the run has more than
    ``over`` targets (none otherwise: a few targets read at a glance from the table).

    At most ``most`` project lines: above that, the projects with a target not provisioned
    come first, and the rest are one line of totals (a thousand lines of "100 created" would
    push what needs a look off the screen)."""
    if len(report.results) <= over:
        return []
    per = {printable(project): counts for project, counts in project_counts(report).items()}
    # Those with a target not provisioned first, then the rest, as far as ``most`` lines go.
    troubled = [p for p, counts in per.items() if not all(Outcome(o).ok for o in counts)]
    shown = list(dict.fromkeys(troubled + list(per)))[:most]
    width = max(len(project) for project in shown)
    lines = [
        f"{project.ljust(width)}  {', '.join(f'{n} {name}' for name, n in per[project].items())}"
        for project in shown
    ]
    hidden = per.keys() - set(shown)
    if hidden:
        rest: Counter[str] = Counter()
        for project in hidden:
            rest.update(per[project])
        totals = ", ".join(f"{rest[o.value]} {o.value}" for o in Outcome if rest[o.value])
        lines.append(f"... and {len(hidden)} more projects: {totals}")
    return lines
