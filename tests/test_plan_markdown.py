"""``plan --markdown``: a plan sized for a pull request comment, grouped, cut to fit GitHub's
limit with a note, headed by a hidden marker a workflow finds its comment by."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import sandbox_server
from test_cli import EXAMPLE, SandboxProcess, ldbulk

from ldbulk.cli.plan import summary_line
from ldbulk.cli.plan_markdown import COMMENT_LIMIT, MARKER, to_markdown
from ldbulk.engine.drift import Drift, FieldChange
from ldbulk.engine.plan import Action, PlanItem


def update(n: int, current: str, wanted: str, field: str = "config.host") -> PlanItem:
    return PlanItem(
        key=(f"proj-{n // 100:03d}", f"env-{n:05d}", "redis"),
        action=Action.UPDATE,
        integration_id=f"id{n:05d}",
        drift=Drift(changes=(FieldChange(field=field, current=current, wanted=wanted),)),
    )


def render(items: list[PlanItem]) -> str:
    return to_markdown(items, [], summary_line(items, []))


def test_5000_different_changes_stay_under_the_comment_limit_and_name_the_counts() -> None:
    items = [update(n, f"old-{n}.internal", f"new-{n}.internal") for n in range(5000)]
    items += [PlanItem(key=("p", f"gone-{n}", "redis"), action=Action.DELETE,
                       integration_id=f"del{n}") for n in range(300)]
    text = render(items)
    assert len(text) < COMMENT_LIMIT
    assert text.startswith(MARKER + "\n")
    # The count line is the first thing said, under the heading.
    [first, *_] = [line for line in text.splitlines()[1:] if line and not line.startswith("#")]
    assert first == "**Plan: 0 to create, 5000 to update, 300 to delete.**"
    assert "To delete** (300)" in text
    [note] = re.findall(r"_(\d+) line\(s\) cut to stay under GitHub's 65,536-character", text)
    assert int(note) > 0
    # Every group, every row and every delete is either shown or counted as cut.
    shown = text.count("<code>config.host: old-") + text.count("<code>del")
    assert shown + int(note) == 5000 * 2 + 300 * 2


def test_identical_changes_are_one_line_with_their_count_and_nothing_is_cut() -> None:
    items = [update(n, "a.internal", "b.internal") for n in range(30)]
    items += [update(n, "6379", "6380", field="config.port") for n in range(30, 32)]
    items += [PlanItem(key=("p", f"e{n}", "dynamodb"), action=Action.CREATE) for n in range(4)]
    text = render(items)
    host = "update <code>config.host: a.internal → b.internal</code>"
    assert f"| 30 \N{MULTIPLICATION SIGN} | {host} |" in text
    assert "| 4 \N{MULTIPLICATION SIGN} | create <code>dynamodb</code> |" in text
    assert "| 2 \N{MULTIPLICATION SIGN} | update <code>config.port: 6379 → 6380</code> |" in text
    assert "<details><summary>Every row that changes or needs a look (36)</summary>" in text
    assert "cut to stay under" not in text


def test_values_from_the_account_cannot_bring_markup_mentions_or_table_breaks() -> None:
    text = render([update(1, "<img src=x onerror=alert(1)>|@org/team", "b\x1b[31m")])
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;&#124;@org/team" in text
    assert "\x1b" not in text


def test_deletes_orphans_and_lines_not_found_are_called_out_before_the_details() -> None:
    items = [
        PlanItem(key=("web", "old", "redis"), action=Action.DELETE, integration_id="d1"),
        PlanItem(key=("ops", "x", "redis"), action=Action.ORPHANED, integration_id="o1"),
        PlanItem(key=("web", "typo", "redis"), action=Action.NOT_FOUND),
    ]
    text = render(items)
    details = text.index("<details>")
    for called_out in ("To delete** (1)", "Not found** (apply would fail on these) (1)",
                       "Orphaned** (carry"):
        assert -1 < text.index(called_out) < details


server = sandbox_server()


def test_plan_markdown_to_stdout_or_a_file_keeps_the_exit_code(
    server: SandboxProcess, tmp_path: Path
) -> None:
    server.reset()
    result = ldbulk("plan", str(EXAMPLE), "--markdown", "-", "--detailed-exitcode",
                    sandbox=server)
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith(MARKER + "\n")  # the comment, and not the table
    assert "**Plan: 9 to create, 0 to update, 0 to delete.**" in result.stdout
    comment = tmp_path / "plan.md"
    result = ldbulk("plan", str(EXAMPLE), "--markdown", str(comment), sandbox=server)
    assert result.returncode == 0, result.stderr
    assert comment.read_text().startswith(MARKER + "\n")
    assert "Plan: 9 to create" in result.stdout  # the table still on stdout
    refused = ldbulk("plan", str(EXAMPLE), "--markdown", "-", "-o", "json", sandbox=server)
    assert refused.returncode == 2
