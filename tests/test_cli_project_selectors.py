"""Lines over several projects at the command line: plan, apply, prune and export of
``project: "*"`` and validate's count of a ``projects`` list. ``python -m ldbulk`` subprocesses
against a sandbox subprocess, as in test_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import SandboxProcess, sandbox_process_fixtures
from test_cli import ldbulk
from test_project_selectors import ENV, STORES, TARGETS_LINE, WORLD

server, sandbox = sandbox_process_fixtures(world=WORLD)


def test_plan_then_apply_of_every_project_then_nothing_to_change(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    path = tmp_path / "every.yaml"
    path.write_text(STORES + '  - {project: "*", environments: "*", store: cache}\n')
    planned = ldbulk("plan", str(path), sandbox=sandbox, env=ENV)
    assert planned.returncode == 0, planned.stderr
    assert "5 to create" in planned.stdout
    assert sandbox.writes() == 0
    report = tmp_path / "report.json"
    applied = ldbulk("apply", str(path), "--report", str(report), sandbox=sandbox, env=ENV)
    assert applied.returncode == 0, applied.stderr
    rows = json.loads(report.read_text())["results"]
    assert sorted((row["project"], row["environment"]) for row in rows) == [
        ("api", "production"), ("api", "staging"), ("batch", "production"),
        ("web", "production"), ("web", "staging"),
    ]  # fmt: skip
    assert {row["source"] for row in rows} == {f"{path}:{TARGETS_LINE}"}
    again = ldbulk("plan", str(path), sandbox=sandbox, env=ENV)
    assert again.returncode == 0, again.stderr
    assert "Plan: 0 to create, 0 to update, 0 to delete; 5 unchanged." in again.stdout


def test_export_writes_every_project_and_plans_no_change(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    source = tmp_path / "source.yaml"
    source.write_text(STORES + '  - {project: "*", environments: [production], store: table}\n')
    assert ldbulk("apply", str(source), sandbox=sandbox, env=ENV).returncode == 0
    exported = tmp_path / "exported.yaml"
    result = ldbulk("export", "-o", str(exported), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(exported.read_text())
    assert document["targets"] == [
        {"project": "*", "environments": ["production"], "store": "segments"}
    ]
    assert 'project: "*"' in exported.read_text()
    # Its own variable for the store's secret: ${LD_DYNAMODB_EXTERNAL_ID_SEGMENTS}.
    variable = document["stores"]["segments"]["config"]["externalId"][2:-1]
    secret = ENV["LD_DYNAMODB_EXTERNAL_ID"]
    planned = ldbulk("plan", str(exported), sandbox=sandbox, env={variable: secret})
    assert planned.returncode == 0, planned.stderr
    assert "Plan: 0 to create, 0 to update, 0 to delete; 3 unchanged." in planned.stdout


def test_validate_counts_a_projects_list_as_one_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text(STORES + "  - {projects: [web, api, batch], environments: '*', store: cache}\n"
                    '  - {project: "*", environments: [production], store: table}\n')
    result = ldbulk("validate", str(path), "-o", "json", env=ENV)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["target_lines"] == 2


def test_a_prune_owns_every_project_a_line_matched(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    path = tmp_path / "every.yaml"
    path.write_text(STORES + '  - {project: "*", environments: "*", store: cache}\n')
    assert ldbulk("apply", str(path), sandbox=sandbox, env=ENV).returncode == 0
    path.write_text(STORES + '  - {project: "*", environments: [production], store: cache}\n')
    planned = ldbulk("plan", str(path), "--prune", sandbox=sandbox, env=ENV)
    assert planned.returncode == 0, planned.stderr
    assert "Plan: 0 to create, 0 to update, 2 to delete; 3 unchanged." in planned.stdout
    applied = ldbulk("apply", str(path), "--prune", "--yes", sandbox=sandbox, env=ENV)
    assert applied.returncode == 0, applied.stderr
    left = {(i["projectKey"], i["environmentKey"])
            for i in sandbox.get("/_sandbox/integrations")["integrations"]}
    assert left == {("web", "production"), ("api", "production"), ("batch", "production")}
