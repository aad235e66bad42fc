"""How ``ldbulk apply`` ends: what it says after an interrupt, the per-project lines of a big
run, JSON lines only with ``--log-format json``, the Markdown summary appended where it must
be, the journal removed after a complete run, and the modes of the files it writes.

``python -m ldbulk`` subprocesses against sandbox subprocesses, as in test_cli.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import sandbox_process_fixtures
from test_cli import (
    EXAMPLE,
    SandboxProcess,
    ldbulk,
    slow_run,
    start_sandbox,
    wildcard_manifest,
)

from ldbulk.api.sansio import ROUTE_CREATE, ROUTE_LIST
from ldbulk.cli.render import project_rollup
from ldbulk.engine.report import Outcome, Report, TargetResult

server, sandbox = sandbox_process_fixtures("--projects", "3", "--environments", "8")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object; fails on the first line that is not one."""
    events = []
    for line in text.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        events.append(event)
    return events


# --- after an interrupt -------------------------------------------------------------------


def test_an_interrupt_says_counts_journal_and_a_resume_command_that_works(
    tmp_path: Path,
) -> None:
    report = tmp_path / "r.json"
    with slow_run(tmp_path, projects=1, latency_ms=100) as run:
        apply = run.start("--concurrency", "2", "--report", str(report))
        run.wait_for_integrations(4)
        apply.send_signal(signal.SIGTERM)
        stdout, stderr = apply.communicate(timeout=60)
        assert apply.returncode == 143, stderr
        rows = json.loads(report.read_text())["results"]
        skipped = sum(row["outcome"] == "skipped" for row in rows)
        assert skipped > 0 and len(rows) == 60
        # No line per skipped target, no table of them: the report has their rows.
        assert "skipped" not in stdout.replace(f"{skipped} skipped", "")
        assert "WARNING" not in stderr
        assert (
            f"Interrupted by SIGTERM: {60 - skipped} of 60 targets settled, {skipped} not tried "
            f"(their rows are in the report {report})." in stderr
        )
        assert f"The journal is {report}.journal. To resume:" in stderr
        command = stderr.split("To resume:\n", 1)[1].splitlines()[0].strip()
        args = shlex.split(command)
        assert args[0] == "ldbulk" and args[-2:] == ["--resume", f"{report}.journal"]

        env = os.environ | {"LD_ACCESS_TOKEN": run.sandbox.token, "LD_BASE_URI": run.sandbox.url}
        resumed = subprocess.run(
            [sys.executable, "-m", "ldbulk", *args[1:]],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
        outcomes = {row["outcome"] for row in json.loads(report.read_text())["results"]}
        assert outcomes <= {"created", "unchanged"}
        assert run.stored() == 60
        # That run was complete: its journal is gone.
        assert not Path(f"{report}.journal").exists()


def test_an_interrupt_with_json_logs_is_json_lines_ending_in_one_summary(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    with slow_run(tmp_path, projects=1, latency_ms=100) as run:
        apply = run.start("--concurrency", "2", "--journal", str(journal), "--log-format", "json")
        run.wait_for_integrations(4)
        apply.send_signal(signal.SIGINT)
        stdout, stderr = apply.communicate(timeout=60)
    assert apply.returncode == 130, stderr
    assert stdout == ""
    events = json_lines(stderr)
    summaries = [event for event in events if event.get("event") == "summary"]
    assert len(summaries) == 1 and events[-1] is summaries[0]
    summary = summaries[0]
    assert summary["interrupted"] == "SIGINT"
    assert summary["journal"] == str(journal) and journal.exists()
    assert summary["resume_command"].endswith(f"--resume {journal}")
    assert summary["counts"]["skipped"] > 0
    assert not any(event.get("outcome") == "skipped" for event in events)


# --- the closing lines --------------------------------------------------------------------


def test_a_run_of_more_than_20_targets_ends_with_a_line_per_project(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    result = ldbulk("apply", str(wildcard_manifest(tmp_path, 3)), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-4:-1] == [f"proj-00{p}  8 created" for p in (1, 2, 3)]
    assert lines[-1].startswith("24 targets: 24 created")


def test_the_project_lines_count_each_outcome_and_a_small_run_has_none() -> None:
    def row(project: str, outcome: Outcome) -> TargetResult:
        return TargetResult(project=project, environment="e", integration="redis",
                            outcome=outcome)

    rows = [row("web", Outcome.CREATED)] * 15 + [row("web", Outcome.FAILED)] * 2
    rows += [row("payments-eu", Outcome.UNCHANGED)] * 4
    assert project_rollup(Report(results=tuple(rows))) == [
        "web          15 created, 2 failed",
        "payments-eu  4 unchanged",
    ]
    assert project_rollup(Report(results=tuple(rows[:20]))) == []


def test_a_run_over_many_projects_shows_those_that_need_a_look_then_totals() -> None:
    rows = [
        TargetResult(project=f"p{n:03d}", environment="e", integration="redis",
                     outcome=Outcome.FAILED if n in (7, 900) else Outcome.CREATED)
        for n in range(1000)
    ]
    lines = project_rollup(Report(results=tuple(rows)), most=3)
    assert lines == [
        "p007  1 failed",
        "p900  1 failed",
        "p000  1 created",
        "... and 997 more projects: 997 created",
    ]


# --- JSON lines ---------------------------------------------------------------------------


def test_json_logs_are_json_lines_with_fields_and_one_summary_and_nothing_on_stdout(
    tmp_path: Path,
) -> None:
    report = tmp_path / "r.json"
    # A third of the answers are 5xx: the listings are retried, and each retried answer is logged
    # at info, as a transport failure is, where the other answers are debug.
    with start_sandbox("--projects", "3", "--environments", "4", "--fault-rate", "0.3",
                       "--seed", "7") as faulty:
        result = ldbulk(
            "apply", str(EXAMPLE), "--report", str(report), "-vv", "--log-format", "json",
            sandbox=faulty,
        )
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout == ""
    events = json_lines(result.stderr)
    assert len({event["run_id"] for event in events}) == 1
    summaries = [event for event in events if event.get("event") == "summary"]
    assert len(summaries) == 1 and events[-1] is summaries[0]
    summary = summaries[0]
    rows = json.loads(report.read_text())["results"]
    assert summary["counts"]["total"] == len(rows) and summary["report"] == str(report)
    assert summary["exit_code"] == result.returncode
    for field in ("requests", "throttled", "paused_s", "elapsed_s"):
        assert isinstance(summary[field], int | float)
    answers = [event for event in events if "status" in event and "route" in event]
    retried = [event for event in answers if event["status"] >= 500]
    assert retried and {event["level"] for event in retried} == {"info"}
    assert {event["level"] for event in answers if event["status"] < 500} == {"debug"}
    assert all(event["method"] and isinstance(event["ms"], float) for event in answers)
    assert any(event["route"] == "GET /api/v2/integration-capabilities/big-segment-store"
               for event in answers)
    targets = [event for event in events if "target" in event]
    names = {f"{row['project']}/{row['environment']}/{row['integration']}" for row in rows}
    assert targets and {event["target"] for event in targets} <= names
    assert all(event["outcome"] and isinstance(event["attempt"], int) for event in targets)
    # Each target's line names its manifest line and store, as its report row does.
    where = {f"{row['project']}/{row['environment']}/{row['integration']}":
             (row["source"], row["store"]) for row in rows}  # fmt: skip
    assert all(
        (event["source"], event["store"]) == where[event["target"]] for event in targets
    )
    assert all(event["source"] and event["store"] for event in targets)


def test_json_logs_make_a_usage_error_a_json_line_too(tmp_path: Path) -> None:
    result = ldbulk("apply", str(tmp_path / "missing.yaml"), "--log-format", "json")
    assert result.returncode == 2
    # The start, the manifest's one problem, the count, and the summary that ends every run.
    [start, event, closing, summary] = json_lines(result.stderr)
    assert start["event"] == "start" and start["command"] == "apply"
    assert (summary["event"], summary["exit_code"]) == ("summary", 2)
    assert event["level"] == "error" and "missing.yaml" in event["message"]
    assert closing["message"] == "1 problem; nothing was sent."
    refused = ldbulk("apply", str(EXAMPLE), "--dry-run", "--report", "r.json",
                     "--log-format", "json")  # fmt: skip
    assert refused.returncode == 2
    [start, flags, summary] = json_lines(refused.stderr)  # any other usage error: one line
    assert (start["event"], summary["event"], summary["exit_code"]) == ("start", "summary", 2)
    assert "--dry-run" in flags["message"]


def test_json_logs_give_each_manifest_problem_a_line_with_its_place_as_fields(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "version: 1\nstores:\n  r: {integration: redis, config: {hots: x}}\ntargets:\n"
        "  - {project: web, environments: [prod], store: rr}\n"
    )
    result = ldbulk("validate", str(manifest), "--log-format", "json")
    assert result.returncode == 2
    start, *problems, last, summary = json_lines(result.stderr)
    assert (start["event"], summary["event"]) == ("start", "summary")
    assert [(event["line"], event["path"]) for event in problems] == [
        (3, "stores.r.config.hots"), (3, "stores.r.config"), (5, "targets[0].store"),
    ]
    assert all(event["file"] == str(manifest) and event["level"] == "error"
               and "\n" not in event["message"] for event in problems)
    assert last["message"] == "3 problems; nothing was sent."


@pytest.mark.parametrize(
    "args",
    [
        ("apply", "m.yaml", "--log-format", "json", "--concurrency", "abc"),
        ("--log-format=json", "apply", "--bogus"),
    ],
)
def test_json_logs_make_clicks_own_usage_errors_json_lines(args: tuple[str, ...]) -> None:
    result = ldbulk(*args)
    assert result.returncode == 2
    [start, event, summary] = json_lines(result.stderr)
    assert event["level"] == "error" and event["usage_error"] is True
    assert (start["event"], summary["event"], summary["exit_code"]) == ("start", "summary", 2)


# --- the Markdown summary -----------------------------------------------------------------


def test_markdown_is_appended_to_a_file_with_other_text_and_its_mode_kept(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# Nightly provisioning\n")
    summary.chmod(0o644)
    result = ldbulk("apply", str(EXAMPLE), "--markdown", str(summary), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    text = summary.read_text()
    assert text.startswith("# Nightly provisioning\n\n## ldbulk apply\n")
    assert mode(summary) == 0o644


def test_markdown_is_appended_to_an_empty_step_summary_and_to_a_fifo(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    step = tmp_path / "step"
    step.touch()
    inode = step.stat().st_ino
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()))
    reader.start()
    first = ldbulk("apply", str(EXAMPLE), "--markdown", str(step), sandbox=sandbox)
    second = ldbulk("apply", str(EXAMPLE), "--markdown", str(fifo), sandbox=sandbox)
    reader.join(timeout=30)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert step.read_text().startswith("## ldbulk apply\n") and step.stat().st_ino == inode
    assert read and read[0].startswith("## ldbulk apply\n")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    # A second run in the same CI step adds its summary below the first's.
    third = ldbulk("apply", str(EXAMPLE), "--markdown", str(step), sandbox=sandbox)
    assert third.returncode == 0, third.stderr
    assert step.read_text().count("## ldbulk apply\n") == 2 and step.stat().st_ino == inode


def test_an_earlier_runs_markdown_is_replaced(sandbox: SandboxProcess, tmp_path: Path) -> None:
    summary = tmp_path / "m.md"
    for _ in range(2):
        result = ldbulk("apply", str(EXAMPLE), "--markdown", str(summary), sandbox=sandbox)
        assert result.returncode == 0, result.stderr
    assert summary.read_text().count("## ldbulk apply") == 1
    assert summary.read_text().startswith("<!-- ldbulk apply")
    assert mode(summary) == 0o600


# --- the journal and file modes -----------------------------------------------------------


def test_a_complete_run_removes_its_journal_and_keep_journal_keeps_it(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    journal = Path(f"{report}.journal")
    removed = ldbulk("apply", str(EXAMPLE), "--report", str(report), sandbox=sandbox)
    assert removed.returncode == 0, removed.stderr
    assert report.exists() and not journal.exists()
    kept = ldbulk("apply", str(EXAMPLE), "--report", str(report), "--keep-journal",
                  sandbox=sandbox)
    assert kept.returncode == 0, kept.stderr
    targets = len(json.loads(report.read_text())["results"])
    assert len(journal.read_text().splitlines()) == 1 + targets


def test_a_run_that_left_targets_to_retry_keeps_its_journal(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    # A wrong token: every line ends unauthorized, which a resume tries again.
    with start_sandbox("--projects", "3", "--environments", "4") as running:
        wrong = SandboxProcess(url=running.url, token="api-wrong")
        result = ldbulk("apply", str(EXAMPLE), "--journal", str(journal), "--log-format", "json",
                        sandbox=wrong)
    assert result.returncode == 1, result.stderr
    assert journal.exists()
    summary = json_lines(result.stderr)[-1]
    assert summary["event"] == "summary" and summary["journal"] == str(journal)
    assert shlex.split(summary["resume_command"]) == [
        "ldbulk", "apply", str(EXAMPLE), "--journal", str(journal), "--log-format", "json",
        "--resume", str(journal),
    ]
    assert summary["interrupted"] is None


def test_report_junit_markdown_and_journal_are_all_mode_0600(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    files = [tmp_path / name for name in ("r.json", "j.xml", "m.md", "run.journal")]
    old_umask = os.umask(0o022)
    try:
        result = ldbulk(
            "apply", str(EXAMPLE), "--report", str(files[0]), "--junit", str(files[1]),
            "--markdown", str(files[2]), "--journal", str(files[3]), "--keep-journal",
            sandbox=sandbox,
        )
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    assert {path.name: mode(path) for path in files} == dict.fromkeys(
        (path.name for path in files), 0o600
    )


def test_a_report_file_lost_at_the_end_costs_neither_the_others_nor_the_journal(
    tmp_path: Path,
) -> None:
    """The JUnit path becomes a directory while the run goes on: the JSON report is still
    written, the failure is said in the command line's words, the exit is 1 (never a clean
    0), and the journal is kept with a resume command that writes the reports, creating
    nothing and listing no integration (the wildcard's environments are listed again)."""
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"

    def creates_and_listings(sandbox: SandboxProcess) -> list[dict[str, int]]:
        requests = sandbox.get("/_sandbox/stats")["requests"]
        return [requests.get(route, {}) for route in (ROUTE_CREATE, ROUTE_LIST)]

    journal = Path(f"{report}.journal")
    with slow_run(tmp_path, projects=1, latency_ms=100) as run:
        apply = run.start("--concurrency", "2", "--report", str(report), "--junit", str(junit))
        run.wait_for_integrations(2)
        junit.mkdir()
        _, stderr = apply.communicate(timeout=120)
        assert apply.returncode == 1, stderr
        assert "Traceback" not in stderr
        assert f"--junit: cannot write {junit}: Is a directory" in stderr
        outcomes = {row["outcome"] for row in json.loads(report.read_text())["results"]}
        assert outcomes == {"created"}
        assert journal.exists()
        (resume,) = [line.strip() for line in stderr.splitlines() if "--resume" in line]
        junit.rmdir()
        writes = creates_and_listings(run.sandbox)
        assert all(writes)  # the first run's creates and listing were counted on these routes
        again = ldbulk(*shlex.split(resume)[1:], sandbox=run.sandbox)
        assert again.returncode == 0, again.stderr
        assert creates_and_listings(run.sandbox) == writes
    assert junit.is_file() and not journal.exists()


@pytest.mark.parametrize("flag", ["--journal", "--report", "--junit", "--markdown", "--state"])
def test_an_output_that_is_a_symlink_is_refused_before_any_request_and_its_target_untouched(
    sandbox: SandboxProcess, tmp_path: Path, flag: str
) -> None:
    """A checkout may hold ``out/j -> ~/.bashrc``: the run stops with exit 2 and the reason,
    before its first request, and the file the link points at keeps its text and mode."""
    victim = tmp_path / "victim"
    victim.write_text("the victim's own text\n")
    victim.chmod(0o644)
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "j"
    link.symlink_to(victim)
    result = ldbulk("apply", str(EXAMPLE), flag, str(link), sandbox=sandbox)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert (
        f"{flag}: cannot write {link}: it is a symbolic link, and ldbulk never writes "
        "through one" in result.stderr
    )
    assert victim.read_text() == "the victim's own text\n" and mode(victim) == 0o644
    assert link.is_symlink()
    assert sandbox.get("/_sandbox/stats")["total"] == 0


def test_a_saved_plan_whose_path_is_a_symlink_is_refused_before_any_request(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("the victim's own text\n")
    link = tmp_path / "plan.json"
    link.symlink_to(victim)
    result = ldbulk("plan", str(EXAMPLE), "--out", str(link), sandbox=sandbox)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"--out: cannot write {link}: it is a symbolic link" in result.stderr
    assert victim.read_text() == "the victim's own text\n" and link.is_symlink()
    assert sandbox.get("/_sandbox/stats")["total"] == 0
