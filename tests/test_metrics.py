"""``--metrics-file``: the Prometheus text format node_exporter's textfile collector reads,
parsed back with the reference client's own parser.

``python -m ldbulk`` subprocesses against a sandbox subprocess, as in test_cli.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import yaml
from conftest import sandbox_process_fixtures
from prometheus_client.parser import text_string_to_metric_families
from test_cli import EXAMPLE, ROOT, SandboxProcess, ldbulk, slow_run

from ldbulk.cli.metrics import LAST_SUCCESS

server, sandbox = sandbox_process_fixtures()


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the file, by name and labels (the parser fails on a malformed file)."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          command: str, **labels: str) -> float:
    return found[name, tuple(sorted({"command": command, **labels}.items()))]


def test_apply_metrics_count_each_outcome_as_the_report_does(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    metrics, report = tmp_path / "ldbulk.prom", tmp_path / "r.json"
    result = ldbulk("apply", str(EXAMPLE), "--report", str(report), "--metrics-file",
                    str(metrics), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    found = samples(metrics)
    summary = json.loads(report.read_text())["summary"]
    stats = json.loads(report.read_text())["stats"]
    for outcome, count in summary.items():
        if outcome != "total":
            assert value(found, "ldbulk_targets", "apply", outcome=outcome) == count, outcome
    assert value(found, "ldbulk_requests_total", "apply") == stats["requests"] > 0
    assert value(found, "ldbulk_throttled_requests_total", "apply") == stats["throttled"]
    assert value(found, "ldbulk_retries_total", "apply") == stats["retries"]
    assert value(found, "ldbulk_rate_limit_paused_seconds_total", "apply") >= 0
    assert value(found, "ldbulk_run_duration_seconds", "apply") > 0
    assert value(found, "ldbulk_exit_code", "apply") == 0
    assert value(found, LAST_SUCCESS, "apply") >= value(
        found, "ldbulk_last_run_timestamp_seconds", "apply")
    # Prometheus' naming rules: the prefix, and a counter's samples end in _total.
    assert all(name.startswith("ldbulk_") for name, _ in found)
    text = metrics.read_text()
    assert "# TYPE ldbulk_requests_total counter" in text and "_total_created" not in text
    assert sandbox.token not in text and "redis-pw" not in text
    # What the README's table and alert rules name is what the file has.
    readme = (ROOT / "README.md").read_text()
    families = {name for name, _ in found}
    assert set(re.findall(r"\bldbulk_[a-z_]+", readme)) <= families


def test_the_readmes_alert_rules_are_yaml_on_these_metrics() -> None:
    readme = (ROOT / "README.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
               if "LdbulkNoSuccessfulRun" in b]
    rules = yaml.safe_load(block)["groups"][0]["rules"]
    assert [rule["alert"] for rule in rules] == ["LdbulkNoSuccessfulRun",
                                                 "LdbulkTargetsNotProvisioned"]
    assert "26 * 3600" in rules[0]["expr"] and LAST_SUCCESS in rules[0]["expr"]


def test_an_interrupted_apply_writes_143_and_keeps_the_last_success(tmp_path: Path) -> None:
    metrics = tmp_path / "ldbulk.prom"
    metrics.write_text(f'{LAST_SUCCESS}{{command="apply"}} 1.7e+09\n')
    with slow_run(tmp_path, projects=1, latency_ms=100) as run:
        apply = run.start("--concurrency", "2", "--metrics-file", str(metrics))
        run.wait_for_integrations(4)
        apply.send_signal(signal.SIGTERM)
        _, stderr = apply.communicate(timeout=60)
    assert apply.returncode == 143, stderr
    found = samples(metrics)
    assert value(found, "ldbulk_exit_code", "apply") == 143
    assert value(found, "ldbulk_targets", "apply", outcome="skipped") > 0
    assert value(found, LAST_SUCCESS, "apply") == 1.7e9


def test_the_last_success_is_kept_across_runs_that_fail(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    metrics = tmp_path / "ldbulk.prom"
    good = ldbulk("apply", str(EXAMPLE), "--metrics-file", str(metrics), sandbox=sandbox)
    assert good.returncode == 0, good.stderr
    success = value(samples(metrics), LAST_SUCCESS, "apply")

    missing = tmp_path / "missing.yaml"
    missing.write_text("version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\n"
                       "targets:\n  - {project: nope, environments: [e], store: r}\n")
    failed = ldbulk("apply", str(missing), "--metrics-file", str(metrics), sandbox=sandbox)
    assert failed.returncode == 1, failed.stderr
    found = samples(metrics)
    assert value(found, "ldbulk_exit_code", "apply") == 1
    assert value(found, "ldbulk_unresolved_lines", "apply") == 0  # a row of the report
    assert value(found, LAST_SUCCESS, "apply") == success

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nstores: {}\ntargets: [{project: p}]\n")
    refused = ldbulk("apply", str(bad), "--metrics-file", str(metrics), sandbox=sandbox)
    assert refused.returncode == 2, refused.stderr
    found = samples(metrics)
    assert value(found, "ldbulk_exit_code", "apply") == 2
    assert value(found, "ldbulk_requests_total", "apply") == 0
    assert value(found, LAST_SUCCESS, "apply") == success


def test_a_first_run_that_fails_has_no_last_success(tmp_path: Path) -> None:
    metrics = tmp_path / "ldbulk.prom"
    result = ldbulk("plan", str(EXAMPLE), "--metrics-file", str(metrics),
                    env={"LD_ACCESS_TOKEN": ""})
    assert result.returncode == 2, result.stderr
    found = samples(metrics)
    assert value(found, "ldbulk_exit_code", "plan") == 2
    assert not any(name == LAST_SUCCESS for name, _ in found)


def test_plan_and_status_metrics_count_actions_and_available_stores(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    metrics = tmp_path / "plan.prom"
    result = ldbulk("plan", str(EXAMPLE), "--metrics-file", str(metrics), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    found = samples(metrics)
    assert value(found, "ldbulk_targets", "plan", outcome="create") == 9
    assert value(found, "ldbulk_targets", "plan", outcome="update") == 0
    assert value(found, "ldbulk_requests_total", "plan") > 0

    assert ldbulk("apply", str(EXAMPLE), sandbox=sandbox).returncode == 0
    metrics = tmp_path / "status.prom"
    result = ldbulk("status", str(EXAMPLE), "--metrics-file", str(metrics), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    found = samples(metrics)
    assert value(found, "ldbulk_targets", "status", outcome="available") == 9
    assert value(found, "ldbulk_targets", "status", outcome="unavailable") == 0


def test_a_metrics_file_that_could_never_be_written_is_refused_before_any_request(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    (tmp_path / "dir.prom").mkdir()
    result = ldbulk("apply", str(EXAMPLE), "--metrics-file", str(tmp_path / "dir.prom"),
                    sandbox=sandbox)
    assert result.returncode == 2
    assert "--metrics-file" in result.stderr and sandbox.writes() == 0


def test_a_metrics_file_is_never_written_through_a_symlink(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    os.symlink(target, tmp_path / "link.prom")
    result = ldbulk("apply", str(EXAMPLE), "--metrics-file", str(tmp_path / "link.prom"),
                    sandbox=sandbox)
    assert result.returncode == 2
    assert target.read_text() == "keep\n"
