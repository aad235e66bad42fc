"""A JSON log read line by line: the ``start`` event first and the ``summary`` event last, for
every way a run ends (0, 1, 2, an interrupt), and a warning line with its fields for each
manifest line that gave no target.

``python -m ldbulk`` subprocesses against sandbox subprocesses, as in test_cli.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import sandbox_process_fixtures
from test_cli import EXAMPLE, SECRETS, SandboxProcess, ldbulk, slow_run
from test_cli_closing import json_lines

from ldbulk import __version__
from ldbulk.manifest import load_manifests

server, sandbox = sandbox_process_fixtures()


def framed(stderr: str, code: int) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The start event, the lines between, the summary: the start first and the summary
    last, each once, with the run's one id."""
    start, *between, summary = json_lines(stderr)
    assert start["event"] == "start" and summary["event"] == "summary", stderr
    assert not any(event.get("event") in ("start", "summary") for event in between)
    assert summary["exit_code"] == code
    assert len({event["run_id"] for event in [start, *between, summary]}) == 1
    return start, between, summary


def test_a_run_that_converges_starts_with_its_facts_and_ends_with_exit_0(
    sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)
    result = ldbulk("apply", str(EXAMPLE), "--log-format", "json", sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    start, _, summary = framed(result.stderr, 0)
    assert start["version"] == __version__ and start["command"] == "apply"
    assert start["manifests"] == [str(EXAMPLE)]
    assert start["manifests_digest"] == load_manifests([EXAMPLE]).digest
    assert start["base_url"] == sandbox.url
    assert summary["counts"]["total"] == 9 and summary["interrupted"] is None
    assert sandbox.token not in result.stderr
    assert not any(secret in result.stderr for secret in SECRETS.values())


def test_a_line_that_gives_no_target_is_a_warning_with_its_fields_and_the_run_exits_1(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n"
        "  - {project: proj-001, environments: [env-001], store: r}\n"
        "  - {project: nope, environments: '*', store: r}\n"
    )
    for command in ("apply", "plan", "status"):
        result = ldbulk(command, str(manifest), "--log-format", "json", sandbox=sandbox)
        assert result.returncode == 1, result.stderr
        _, between, summary = framed(result.stderr, 1)
        [warning] = [event for event in between if event.get("unresolved")]
        assert warning["level"] == "warning", command
        assert warning["source"] == f"{manifest}:6" and warning["project"] == "nope"
        assert warning["environment"] == '"*"' and warning["outcome"] == "not_found"
        assert "nope" in warning["error"]
        assert summary["command"] == command


def test_a_target_not_provisioned_is_a_warning_with_its_fields(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n"
        "  - {project: proj-001, environments: [env-001, env-404], store: r}\n"
    )
    result = ldbulk("apply", str(manifest), "--log-format", "json", sandbox=sandbox)
    assert result.returncode == 1, result.stderr
    _, between, _ = framed(result.stderr, 1)
    [warning] = [event for event in between if event.get("level") == "warning"]
    assert warning["target"] == "proj-001/env-404/redis" and warning["outcome"] == "not_found"
    assert warning["source"] == f"{manifest}:5" and warning["store"] == "r"
    assert warning["error"]


def test_bad_input_still_starts_and_ends_with_a_summary_naming_the_problems(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: x}}\ntargets:\n"
        "  - {project: web, environments: [prod], store: rr}\n"
    )
    for command in ("validate", "plan", "apply"):
        result = ldbulk(command, str(manifest), "--log-format", "json",
                        env={"LD_ACCESS_TOKEN": "api-x", "LD_BASE_URI": "http://127.0.0.1:9"})
        assert result.returncode == 2, result.stderr
        start, _, summary = framed(result.stderr, 2)
        assert start["command"] == summary["command"] == command
        [problem] = summary["problems"]
        assert (problem["file"], problem["line"], problem["path"]) == (
            str(manifest), 5, "targets[0].store")
        assert problem["message"].startswith('unknown store "rr"')
        assert summary["requests"] == 0


def test_an_interrupted_apply_starts_and_ends_with_a_summary(tmp_path: Path) -> None:
    with slow_run(tmp_path, projects=1, latency_ms=100) as run:
        apply = run.start("--concurrency", "2", "--log-format", "json")
        run.wait_for_integrations(4)
        apply.send_signal(signal.SIGTERM)
        _, stderr = apply.communicate(timeout=60)
    assert apply.returncode == 143, stderr
    _, _, summary = framed(stderr, 143)
    assert summary["interrupted"] == "SIGTERM" and summary["counts"]["skipped"] > 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_plan_exits_with_the_signals_code_and_a_summary(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    with slow_run(tmp_path, projects=1, latency_ms=3000) as run:
        env = os.environ | {"LD_ACCESS_TOKEN": run.sandbox.token, "LD_BASE_URI": run.sandbox.url}
        plan = subprocess.Popen(
            [sys.executable, "-m", "ldbulk", "plan", str(run.manifest), "--log-format", "json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert plan.stderr is not None
        first = plan.stderr.readline()  # the start: the command runs, its requests wait
        plan.send_signal(signum)
        _, rest = plan.communicate(timeout=30)
    assert plan.returncode == code, rest
    _, _, summary = framed(first + rest, code)
    assert summary["interrupted"] == signum.name and summary["command"] == "plan"


def test_a_saved_plans_apply_starts_with_the_plans_manifests_and_its_target_count(
    sandbox: SandboxProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)  # for load_manifests below
    saved = tmp_path / "ldbulk.plan"
    planned = ldbulk("plan", str(EXAMPLE), "--out", str(saved), sandbox=sandbox)
    assert planned.returncode == 0, planned.stderr
    result = ldbulk("apply", str(saved), "--log-format", "json", sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    start, _, summary = framed(result.stderr, 0)
    # Known before the first request: what the plan carries out, from what it was made.
    assert start["plan"] == str(saved) and start["manifests"] == [str(EXAMPLE)]
    assert start["manifests_digest"] == load_manifests([EXAMPLE]).digest
    assert start["targets"] == summary["counts"]["total"] == 9


def test_a_run_from_manifests_starts_without_a_plan_or_a_target_count(
    sandbox: SandboxProcess,
) -> None:
    result = ldbulk("plan", str(EXAMPLE), "--log-format", "json", sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    start, _, _ = framed(result.stderr, 0)
    assert start["plan"] is None and start["targets"] is None  # known once resolved
