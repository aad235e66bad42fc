"""The report: counts, exit code, the stable JSON shape, and its renderings."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from xml.etree import ElementTree

import attrs
import pytest
from rich.console import Console

from ldbulk.api.limits import RateLimitState
from ldbulk.api.models import ErrorBody
from ldbulk.cli import render
from ldbulk.cli.common import print_line, print_table
from ldbulk.cli.progress import ProgressDisplay, eta_s
from ldbulk.engine.report import Outcome, Report, RunStats, TargetResult
from ldbulk.http.pacer import Pacer, tallying_waits

STATS = RunStats(requests=5, throttled=1, retries=2, elapsed_s=1.23456, paused_s=0.5)


def result(environment: str, outcome: Outcome, **fields: object) -> TargetResult:
    return TargetResult(
        project="web",
        environment=environment,
        integration="redis",
        outcome=outcome,
        **fields,  # type: ignore[arg-type]
    )


REPORT = Report(
    results=(
        result("prod", Outcome.CREATED, status=201, integration_id="id-1", attempts=1),
        result("stage", Outcome.EXISTS, integration_id="id-2"),
        result(
            "qa",
            Outcome.NOT_FOUND,
            status=404,
            attempts=1,
            error=ErrorBody(code="not_found", message="Unknown [env] | pipe", id="req-9"),
        ),
        result("dev", Outcome.SKIPPED, error=ErrorBody(code="skipped", message="stopped")),
    ),
    stats=STATS,
)


def test_counts_are_keyed_by_outcome_and_sum_to_the_total() -> None:
    counts = REPORT.counts
    assert list(counts) == list(Outcome)
    assert all(isinstance(key, Outcome) for key in counts)
    assert (counts["created"], counts["exists"], counts["not_found"], counts["skipped"]) == (
        1,
        1,
        1,
        1,
    )
    assert counts[Outcome.FAILED] == 0
    assert sum(counts.values()) == REPORT.total == 4
    # The JSON report's summary keeps its documented "total".
    assert REPORT.to_json()["summary"]["total"] == 4


def test_exit_code_is_zero_only_when_every_target_is_provisioned() -> None:
    assert REPORT.exit_code == 1
    ok = Report(results=REPORT.results[:2])
    assert ok.ok and ok.exit_code == 0
    assert Report(results=()).exit_code == 0


def test_json_has_the_documented_stable_shape() -> None:
    data = json.loads(REPORT.dumps())
    assert list(data) == [
        "version", "ldbulk", "started_at", "finished_at", "base_url", "summary", "stats", "results"
    ]
    assert data["version"] == 2
    assert data["stats"] == {
        "requests": 5,
        "throttled": 1,
        "retries": 2,
        "elapsed_s": 1.235,
        "paused_s": 0.5,
    }
    assert data["results"][2] == {
        "project": "web",
        "environment": "qa",
        "integration": "redis",
        "outcome": "not_found",
        "status": 404,
        "integration_id": None,
        "attempts": 1,
        "error": {"code": "not_found", "message": "Unknown [env] | pipe", "id": "req-9"},
        "elapsed_s": 0.0,
        "waited_s": 0.0,
        "changed": [],
        "version": None,
        "source": None,
        "store": None,
    }


def test_results_read_back_from_json_are_equal() -> None:
    data = json.loads(REPORT.dumps())
    assert tuple(TargetResult.from_json(item) for item in data["results"]) == REPORT.results


def test_junit_has_one_testcase_per_target_with_failures_and_skips() -> None:
    suite = ElementTree.fromstring(render.to_junit(REPORT))  # noqa: S314 - our own output
    assert suite.get("tests") == "4"
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["prod/redis", "stage/redis", "qa/redis", "dev/redis"]
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("type") == "not_found"
    assert "req-9" in (failure.get("message") or "")
    assert cases[3].find("skipped") is not None


def test_markdown_lists_counts_and_only_the_targets_not_provisioned() -> None:
    text = render.to_markdown(REPORT)
    assert "| created | 1 |" in text
    assert "| failed |" not in text  # zero counts are left out
    assert "| web | qa | redis | not_found | 404 |" in text
    assert "Unknown [env] \\| pipe" in text  # a pipe would break the table
    assert "prod" not in text.split("| project |")[1]


def test_markdown_of_a_clean_run_says_so() -> None:
    assert "Every target is provisioned." in render.to_markdown(Report(results=REPORT.results[:2]))


def test_terminal_table_prints_error_text_literally() -> None:
    console = Console(record=True, width=200)
    console.print(render.to_table(REPORT, only_problems=True))
    text = console.export_text()
    assert "Unknown [env] | pipe" in text  # not taken as rich markup
    assert "web/prod/redis" not in text
    assert "web/qa/redis" in text


def test_terminal_table_is_capped_with_a_caption() -> None:
    many = Report(results=tuple(result(f"e{i}", Outcome.CREATED) for i in range(60)))
    table = render.to_table(many, max_rows=50)
    assert table.row_count == 50
    assert "10 more rows" in str(table.caption)


def test_summary_line_counts_outcomes() -> None:
    line = render.summary_line(REPORT)
    assert line.startswith("4 targets: 1 created, 1 exists, 1 not_found, 1 skipped")
    assert line.endswith("(5 requests, 1 throttled, 1.2 s, 0.5 s of it paused for rate limits)")
    # A slow start's few milliseconds are no pause worth a word.
    brief = attrs.evolve(REPORT, stats=attrs.evolve(STATS, paused_s=0.03))
    assert render.summary_line(brief).endswith("(5 requests, 1 throttled, 1.2 s)")


HOSTILE = "\x00\x1b[31mred\x07\x9b2J\ud800"
HOSTILE_REPORT = Report(
    results=(
        result(
            "qa",
            Outcome.FAILED,
            status=400,
            attempts=1,
            error=ErrorBody(code="bad\x1b[0m", message=HOSTILE, id="req\x1b]8;;x\x07"),
        ),
        result("prod", Outcome.CREATED, status=201, integration_id="id\x1b[2K\x00"),
        result("dev", Outcome.SKIPPED, error=ErrorBody(code="skipped", message=HOSTILE)),
    ),
    stats=STATS,
)


def _unprintable(text: str) -> set[str]:
    """Control characters (other than the layout's own newlines) and lone surrogates."""
    controls = {*range(0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)} - {ord("\n")}
    return {c for c in text if ord(c) in controls}


def test_junit_of_server_text_with_control_characters_is_well_formed_xml() -> None:
    xml = render.to_junit(HOSTILE_REPORT)
    assert not _unprintable(xml)
    suite = ElementTree.fromstring(xml.encode())  # noqa: S314 - our own output
    failure = suite.findall("testcase")[0].find("failure")
    assert failure is not None
    # Escaped visibly, so what the server said stays readable.
    assert "\\x1b[31mred\\x07" in (failure.get("message") or "")


def test_markdown_of_server_text_has_no_control_characters() -> None:
    text = render.to_markdown(HOSTILE_REPORT)
    assert not _unprintable(text)
    assert "\\x00\\x1b[31mred\\x07" in text


def test_terminal_table_of_server_text_sends_no_escape_sequences() -> None:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(render.to_table(HOSTILE_REPORT))
    console.print(render.summary_line(HOSTILE_REPORT))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert not _unprintable(out)
    assert "\\x1b[31mred" in out


def test_outside_a_terminal_tables_are_plain_aligned_text_with_every_key_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    long_key = "production-eu-west-with-a-very-long-environment-key-" + "x" * 60
    report = Report(results=(
        result(long_key, Outcome.NOT_FOUND, status=404,
               error=ErrorBody(code="not_found", message="Unknown environment " * 5)),
        result("qa", Outcome.FAILED, status=503),
    ))
    print_table(render.to_table(report, only_problems=True))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ldbulk apply"
    assert lines[1].split() == ["target", "outcome", "status", "integration", "id", "attempts",
                                "detail"]
    assert lines[2].startswith(f"web/{long_key}/redis  not_found  404")
    assert lines[3].startswith("web/qa/redis") and len(lines) == 4
    # Aligned: every column starts at the same offset on every line.
    assert lines[2].index("not_found") == lines[3].index("failed") == lines[1].index("outcome")
    assert not any(char in "".join(lines) for char in "│┃━─")


def test_outside_a_terminal_a_summary_line_is_one_line_at_any_length(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = "Plan: 0 to create, 1 to update, 0 to delete; 4 unchanged, " + "x" * 150 + "[bold]."
    print_line(line)
    assert capsys.readouterr().out == line + "\n"


def test_on_an_80_column_terminal_the_bar_gives_way_and_every_number_shows_whole() -> None:
    console = Console(record=True, width=80)
    display = ProgressDisplay(600, enabled=True, already_done=0, budget_per_s=lambda: 10.0,
                              console=console)
    display.paused(time.time() + 60)  # still paused: its clock shows too
    for _ in range(100):
        display.settled(result("prod", Outcome.CREATED))
    console.print(display.bar.make_tasks_table(display.bar.tasks))
    line = console.export_text()
    assert "…" not in line, line
    # The rate gives way first (the count and the elapsed time imply it), then the pause's
    # words; every number and the clock stay whole, and the bar keeps 20 characters.
    assert re.search(
        r"100/600 +elapsed \d:\d\d:\d\d eta 0:00:50 paused \d\d:\d\d:\d\d\n", line
    ), line
    bar = re.search(r"^apply ([━╸╺ ]+) 100/600", line)
    assert bar is not None and len(bar.group(1)) >= 20, line


def test_on_a_wide_terminal_the_rate_shows_too() -> None:
    console = Console(record=True, width=120)
    display = ProgressDisplay(600, enabled=True, already_done=0, console=console)
    for _ in range(100):
        display.settled(result("prod", Outcome.CREATED))
    console.print(display.bar.make_tasks_table(display.bar.tasks))
    assert re.search(r"100/600 [\d.]+/s elapsed", console.export_text())


def test_the_progress_line_labels_its_elapsed_time_and_its_eta() -> None:
    display = ProgressDisplay(4, enabled=True, already_done=0)
    console = Console(record=True, width=200)
    console.print(display.bar.make_tasks_table(display.bar.tasks))
    line = console.export_text()
    assert re.search(r"elapsed \d:\d\d:\d\d eta ", line), line


@pytest.mark.looptime
async def test_a_targets_wait_for_the_pacer_is_tallied_apart_from_its_time() -> None:
    """The JUnit case time is the request time: a throttled run's cases would otherwise add
    up to many times the suite's."""
    pacer = Pacer()
    ticket = await pacer.acquire("POST /r")
    pacer.observe("POST /r", 201, RateLimitState(route_limit=1, route_remaining=0,
                                                  reset_ms=None), ticket)
    with tallying_waits() as waits:
        started = asyncio.get_running_loop().time()
        await pacer.acquire("POST /r")  # the budget is spent: it waits for the next window
        waited = asyncio.get_running_loop().time() - started
    assert waits.seconds == waited > 0
    result = attrs.evolve(REPORT.results[0], elapsed_s=waited + 0.25, waited_s=waits.seconds)
    junit = render.to_junit(Report(results=(result,)))
    case = ElementTree.fromstring(junit).find("testcase")  # noqa: S314 - our own output
    assert case is not None and case.get("time") == "0.250"
    prop = case.find("properties/property")
    assert prop is not None and prop.get("name") == "rate_limit_wait_s"


def test_the_json_report_is_written_row_by_row_one_result_per_line() -> None:
    text = io.StringIO()
    REPORT.write(text)
    assert json.loads(text.getvalue()) == REPORT.to_json()
    rows = [line for line in text.getvalue().splitlines() if line.startswith('    {"project"')]
    assert len(rows) == len(REPORT.results)
    assert json.loads(Report(results=()).dumps())["results"] == []


def test_the_eta_is_the_slower_of_the_rate_so_far_and_the_budget() -> None:
    # 500 left: the first second's burst says 1 s; a budget of 100 per 10 s says 50 s.
    assert eta_s(500, 1.0, 10.0) == 50.0
    # Latency, not the budget, holds the run back: the rate says more.
    assert eta_s(500, 80.0, 100.0) == 80.0
    assert eta_s(500, None, 10.0) == 50.0 and eta_s(500, 3.0, None) == 3.0
    assert eta_s(500, None, None) is None
