"""``plan --markdown``: the plan as a pull request comment a reviewer can read.

The count line first (terraform's), then what a reviewer must not miss: the deletes, the
lines and targets not found, the orphaned integrations. The changes come grouped, one line
per identical change ("30 x config.host: a -> b", with a multiplication sign and an arrow),
and every row sits below in a collapsed
``<details>``. The whole stays under GitHub's limit for a comment (65,536 characters): the
groups and rows that do not fit are cut, and a note says how many. A hidden HTML marker
heads it, so a workflow finds its previous comment and updates it rather than adding one.

Every value is HTML-escaped inside ``<code>`` (LaunchDarkly's current values are not ours: no
markup, mention or table break may come through), and shown as the table shows it: a
reference as written, a secret as ``(hidden)``.
"""

from __future__ import annotations

import collections
import html
from collections.abc import Iterable, Sequence
from typing import Final

from ldbulk.engine.plan import Action, PlanItem
from ldbulk.engine.resolve import Unresolved
from ldbulk.text import printable

MARKER: Final = "<!-- ldbulk-plan -->"
# GitHub refuses a comment longer than this (characters); a margin for what a workflow adds.
COMMENT_LIMIT: Final = 65_536
DEFAULT_BUDGET: Final = COMMENT_LIMIT - 1_536
# The most rows of one called-out list (deletes, not found) shown before the details.
CALLED_OUT: Final = 50
TIMES: Final = "\N{MULTIPLICATION SIGN}"


def code(value: str) -> str:
    """A value as inline code, safe in a table cell and in HTML."""
    text = html.escape(printable(value), quote=False).replace("|", "&#124;")
    return f"<code>{text}</code>"


def _target(item: PlanItem) -> str:
    return code("/".join(item.key))


def _differences(item: PlanItem) -> str:
    if item.action is Action.UPDATE:
        return ", ".join(code(str(change)) for change in item.drift.changes) or "tags"
    if item.action in (Action.DELETE, Action.ORPHANED, Action.UNMANAGED):
        return code(item.integration_id or "")
    return ""


def change_groups(items: Iterable[PlanItem]) -> list[tuple[int, str]]:
    """Identical changes counted: updates by field and values, creates by integration key,
    deletes by integration key; most frequent first."""
    groups: collections.Counter[str] = collections.Counter()
    for item in items:
        if item.action is Action.UPDATE:
            for change in item.drift.changes:
                groups[f"update {code(str(change))}"] += 1
            if not item.drift.changes:
                groups["update: add the ownership tag"] += 1
        elif item.action in (Action.CREATE, Action.DELETE):
            groups[f"{item.action.value} {code(item.key[2])}"] += 1
    return sorted(((n, what) for what, n in groups.items()), key=lambda g: (-g[0], g[1]))


class _Budget:
    """Lines added while they fit in ``left`` characters; counts what did not."""

    def __init__(self, left: int) -> None:
        self.left = left
        self.lines: list[str] = []

    def add(self, line: str) -> bool:
        if len(line) + 1 > self.left:
            return False
        self.lines.append(line)
        self.left -= len(line) + 1
        return True

    def add_rows(self, rows: Sequence[str], *, reserve: int = 200) -> int:
        """As many of ``rows`` as fit (keeping ``reserve`` for what follows); returns how many
        were cut."""
        for shown, row in enumerate(rows):
            if len(row) + 1 > self.left - reserve:
                return len(rows) - shown
            self.add(row)
        return 0


def to_markdown(
    items: Sequence[PlanItem],
    unresolved: Sequence[Unresolved],
    summary: str,
    *,
    budget: int = DEFAULT_BUDGET,
) -> str:
    """The plan as a comment of at most ``budget`` characters, headed by :data:`MARKER`."""
    out = _Budget(budget)
    out.add(MARKER)
    out.add("### ldbulk plan")
    out.add("")
    out.add(f"**{html.escape(summary, quote=False)}**")
    cut = 0
    for title, rows in _called_out(items, unresolved):
        out.add("")
        out.add(f"{title} ({len(rows)}):")
        out.add("")
        shown = rows[:CALLED_OUT]
        cut += out.add_rows([f"- {row}" for row in shown]) + len(rows) - len(shown)
    groups = change_groups(items)
    if groups:
        out.add("")
        out.add("| count | change |")
        out.add("|---:|---|")
        cut += out.add_rows([f"| {n} {TIMES} | {what} |" for n, what in groups])
    rows = [
        f"| {_target(item)} | {item.action.value} | {_differences(item)} |"
        for item in items
        if item.action is not Action.UNCHANGED and item.action is not Action.EXISTS
    ]
    if rows:
        out.add("")
        out.add(f"<details><summary>Every row that changes or needs a look ({len(rows)})"
                "</summary>")
        out.add("")
        out.add("| target | action | differences |")
        out.add("|---|---|---|")
        cut += out.add_rows(rows, reserve=400)
        out.add("")
        out.add("</details>")
    if cut:
        out.lines.append("")
        out.lines.append(
            f"_{cut} line(s) cut to stay under GitHub's {COMMENT_LIMIT:,}-character comment "
            "limit: the whole plan is in `ldbulk plan -o json` and the saved plan._"
        )
    return "\n".join(out.lines) + "\n"


def _called_out(
    items: Sequence[PlanItem], unresolved: Sequence[Unresolved]
) -> list[tuple[str, list[str]]]:
    """What a reviewer must not miss, each list with its title: deletes, what was not found,
    orphaned integrations."""
    sections = []
    deletes = [f"{_target(i)} {code(i.integration_id or '')}"
               for i in items if i.action is Action.DELETE]
    if deletes:
        sections.append((":warning: **To delete**", deletes))
    missing = [_target(i) for i in items if i.action is Action.NOT_FOUND]
    missing += [_unresolved(line) for line in unresolved]
    if missing:
        sections.append((":x: **Not found** (apply would fail on these)", missing))
    orphans = [f"{_target(i)} {code(i.integration_id or '')}"
               for i in items if i.action is Action.ORPHANED]
    if orphans:
        sections.append(("**Orphaned** (carry the shared tag outside these manifests' scope: "
                         "never touched)", orphans))
    return sections


def _unresolved(line: Unresolved) -> str:
    error = line.result().error
    why = code(error.message) if error is not None else ""
    return f"{code(line.problem.file)}:{line.problem.line}: {why}"
