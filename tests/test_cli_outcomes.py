"""Every target gets one honest outcome at the command line, and every report asked for is
written: a refused token, an unreachable or broken API, a missing project, a stop, a resume.

``python -m ldbulk`` subprocesses against sandbox subprocesses, as in test_cli.py.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import sandbox_process_fixtures
from test_cli import EXAMPLE, SECRETS, SandboxProcess, SlowRun, ldbulk, start_sandbox, stopped

EXPLICIT = """\
version: 1
stores:
  r: {integration: redis, config: {host: h}}
targets:
  - {project: proj-001, environments: [env-001, env-002], store: r}
"""

WILDCARDS = """\
version: 1
stores:
  r: {integration: redis, config: {host: h}}
targets:
  - {project: proj-001, environments: "*", store: r}
  - {project: ghost, environments: "*", store: r}
  - {project: proj-002, environments: {tags: [prod]}, store: r}
"""


server, sandbox = sandbox_process_fixtures()


def write(tmp_path: Path, text: str) -> Path:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    return manifest


def outputs(tmp_path: Path) -> dict[str, Path]:
    return {flag: tmp_path / name for flag, name in
            (("--report", "r.json"), ("--junit", "j.xml"), ("--markdown", "m.md"))}


def output_args(paths: dict[str, Path]) -> list[str]:
    return [arg for flag, path in paths.items() for arg in (flag, str(path))]


def results(report: Path) -> list[dict[str, object]]:
    return list(json.loads(report.read_text())["results"])


def test_a_wrong_token_is_unauthorized_with_launchdarklys_words_everywhere(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    paths = outputs(tmp_path)
    result = ldbulk(
        "apply", str(write(tmp_path, EXPLICIT)), *output_args(paths),
        env={"LD_ACCESS_TOKEN": "api-wrong", "LD_BASE_URI": sandbox.url},
    )
    assert result.returncode == 1, result.stderr
    rows = results(paths["--report"])
    assert [row["outcome"] for row in rows] == ["unauthorized", "unauthorized"]
    assert json.loads(paths["--report"].read_text())["summary"]["unauthorized"] == 2
    for path in paths.values():
        assert "Invalid access token" in path.read_text(), path
    # Said once, with what to check.
    assert result.stderr.count("refused the access token") == 1
    assert "LD_ACCESS_TOKEN" in result.stderr and "--token-file" in result.stderr
    assert sandbox.writes() == 0


def test_an_unreachable_api_still_writes_every_report_with_a_row_per_line(
    tmp_path: Path,
) -> None:
    paths = outputs(tmp_path)
    result = ldbulk(
        "apply", str(write(tmp_path, WILDCARDS)), *output_args(paths),
        "--base-url", "http://127.0.0.1:9",
        env={"LD_ACCESS_TOKEN": "api-any"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    rows = results(paths["--report"])
    assert [(row["project"], row["environment"]) for row in rows] == [
        ("proj-001", '"*"'), ("ghost", '"*"'), ("proj-002", "{tags: [prod]}")
    ]
    assert {row["outcome"] for row in rows} == {"failed"}
    assert all("127.0.0.1:9" in json.dumps(row["error"]) for row in rows)
    assert paths["--junit"].read_text().count("<testcase") == 3
    assert paths["--markdown"].exists()


def test_a_missing_project_behind_a_wildcard_is_its_lines_not_found_and_the_rest_goes_on(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    result = ldbulk(
        "apply", str(write(tmp_path, WILDCARDS)), "--report", str(report), sandbox=sandbox
    )
    assert result.returncode == 1, result.stderr
    rows = results(report)
    ghost = [row for row in rows if row["project"] == "ghost"]
    assert [row["outcome"] for row in ghost] == ["not_found"]
    assert 'project \\"ghost\\" not found' in json.dumps(ghost[0]["error"])
    created = [row for row in rows if row["outcome"] == "created"]
    assert len(created) == 4 + 2  # every environment of proj-001, the prod ones of proj-002


class _NotJSON(http.server.BaseHTTPRequestHandler):
    """An API that answers every request 200 with a body that is not JSON."""

    def do_GET(self) -> None:
        body = b"<html>not the API</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def broken_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotJSON)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", ["plan", "apply", "status"])
def test_a_malformed_answer_after_requests_were_sent_exits_1_not_2(
    broken_api: str, tmp_path: Path, command: str
) -> None:
    result = ldbulk(
        command, str(write(tmp_path, EXPLICIT)), "--base-url", broken_api,
        env={"LD_ACCESS_TOKEN": "api-any"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "non-JSON body" in result.stdout + result.stderr


def test_dry_run_refuses_output_flags_it_would_ignore(tmp_path: Path) -> None:
    result = ldbulk("apply", str(EXAMPLE), "--dry-run", "--report", str(tmp_path / "r.json"))
    assert result.returncode == 2
    assert "--dry-run" in result.stderr and "--report" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_report_and_journal_may_not_share_a_path(tmp_path: Path) -> None:
    same = tmp_path / "r.json"
    result = ldbulk("apply", str(EXAMPLE), "--report", str(same), "--journal", str(same))
    assert result.returncode == 2
    assert "same file" in result.stderr


def test_resume_refuses_a_report_before_any_request_and_leaves_it_intact(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    first = ldbulk("apply", str(EXAMPLE), "--report", str(report), sandbox=sandbox)
    assert first.returncode == 0, first.stderr
    before = report.read_text()
    requests = sandbox.get("/_sandbox/stats")["total"]
    result = ldbulk("apply", str(EXAMPLE), "--resume", str(report), sandbox=sandbox)
    assert result.returncode == 2
    assert "not an ldbulk journal" in result.stderr
    assert result.stderr.count("\n") == 1
    assert report.read_text() == before
    assert sandbox.get("/_sandbox/stats")["total"] == requests


def test_sigterm_sends_no_create_that_was_waiting_on_the_pacer(tmp_path: Path) -> None:
    """5 creates per 30-second window: the rest wait on the pacer. After SIGTERM, none of
    them may go out, however long the window still has to run."""
    manifest = write(
        tmp_path,
        "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n"
        "  - {project: proj-001, environments: '*', store: r}\n",
    )
    report = tmp_path / "r.json"
    with start_sandbox(
        "--projects", "1", "--environments", "30", "--route-limit", "5", "--window-s", "30"
    ) as slow:
        run = SlowRun(sandbox=slow, manifest=manifest)
        apply = run.start("--report", str(report))
        run.wait_for_integrations(5)
        stderr = stopped(apply)
        assert apply.returncode == 143, stderr
        outcomes = [row["outcome"] for row in results(report)]
        assert outcomes.count("created") == run.stored() == 5
        assert outcomes.count("skipped") == 25
        assert "--resume" in stderr and f"{report}.journal" in stderr


def test_plan_shows_drift_field_by_field_and_never_a_secret(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    applied = ldbulk("apply", str(EXAMPLE), sandbox=sandbox)
    assert applied.returncode == 0, applied.stderr
    moved = write(tmp_path, EXAMPLE.read_text().replace("redis.demo.internal", "redis-moved.lan"))
    result = ldbulk("plan", str(moved), sandbox=sandbox, env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert "0 to create" in summary and " 0 to update" not in summary, summary
    assert "config.host: redis.demo.internal → redis-moved.lan" in result.stdout
    assert "not compared: password" in result.stdout
    for secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr


def test_a_journal_that_cannot_be_written_is_bad_input_and_nothing_is_sent(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = ldbulk(
        "apply", str(EXAMPLE), "--journal", str(blocker / "run.journal"), sandbox=sandbox
    )
    assert result.returncode == 2, result.stderr
    assert "journal" in result.stderr and "Traceback" not in result.stderr
    assert sandbox.get("/_sandbox/stats")["total"] == 0


def test_the_report_may_not_overwrite_the_journal_being_resumed(tmp_path: Path) -> None:
    journal = tmp_path / "r.json.journal"
    result = ldbulk(
        "apply", str(EXAMPLE), "--resume", str(journal), "--journal", str(tmp_path / "new"),
        "--report", str(journal),
    )
    assert result.returncode == 2
    assert "same file" in result.stderr


def test_resuming_into_a_new_journal_carries_the_settled_results_over(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.journal", tmp_path / "second.journal"
    kept = ("--keep-journal",)
    assert ldbulk("apply", str(EXAMPLE), "--journal", str(first), *kept,
                  sandbox=sandbox).returncode == 0
    resumed = ldbulk(
        "apply", str(EXAMPLE), "--resume", str(first), "--journal", str(second), *kept,
        sandbox=sandbox,
    )
    assert resumed.returncode == 0, resumed.stderr
    header, *lines = second.read_text().splitlines()
    assert json.loads(header)["kind"] == "ldbulk-journal"
    assert len(lines) == 9
    assert {json.loads(line)["outcome"] for line in lines} == {"created"}


@pytest.mark.parametrize("flag", ["--report", "--junit", "--markdown", "--journal", "--state"])
def test_a_file_that_could_never_be_written_stops_the_run_before_any_request(
    sandbox: SandboxProcess, tmp_path: Path, flag: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be\n")
    requests = sandbox.get("/_sandbox/stats")["total"]
    result = ldbulk("apply", str(EXAMPLE), flag, str(blocker / "out"), sandbox=sandbox)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{flag}: cannot write {blocker / 'out'}: a file stands where its directory" in (
        result.stderr
    )
    assert sandbox.get("/_sandbox/stats")["total"] == requests
