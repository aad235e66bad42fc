"""The kit for a repository of manifests: the GitHub Action (its plan step run as GitHub runs
it), the example workflow and the action against GitHub's schemas, and the pre-commit hook's
entry on a good and a bad manifest."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import sandbox_server
from test_cli import EXAMPLE, SECRETS, SandboxProcess

from ldbulk.cli.plan_markdown import MARKER

ROOT = Path(__file__).parent.parent
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / "examples" / "github").glob("*.yml"))
HOOKS = ROOT / ".pre-commit-hooks.yaml"

BAD_MANIFEST = (
    "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n"
    "  - {project: web, environments: [prod], store: rr}\n"
)


def ldbulk_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``ldbulk`` is this checkout's, as pip would install it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "ldbulk"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m ldbulk "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {key: value for key, value in os.environ.items() if not key.startswith("LD_")}
    return env | {"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}


@pytest.mark.parametrize(
    ("schema", "files"),
    [("vendor.github-actions", [ACTION]), ("vendor.github-workflows", WORKFLOWS)],
)
def test_the_action_and_the_example_workflow_match_githubs_schemas(
    schema: str, files: list[Path]
) -> None:
    assert files
    result = subprocess.run(
        [Path(sys.executable).parent / "check-jsonschema", "--builtin-schema", schema,
         *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_workflow_plans_pull_requests_and_never_overlaps_two_applies() -> None:
    [workflow] = [yaml.safe_load(path.read_text()) for path in WORKFLOWS]
    jobs = workflow["jobs"]
    groups = {jobs[name]["concurrency"]["group"] for name in ("apply", "nightly")}
    assert len(groups) == 1
    assert not any(jobs[name]["concurrency"]["cancel-in-progress"] for name in ("apply", "nightly"))
    script = next(step["with"]["script"] for step in jobs["plan"]["steps"]
                  if "github-script" in step.get("uses", ""))
    assert MARKER in script
    assert any("--state" in step.get("run", "") for step in jobs["nightly"]["steps"])


def test_each_event_of_the_example_workflow_runs_its_one_job() -> None:
    [workflow] = [yaml.safe_load(path.read_text()) for path in WORKFLOWS]
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    assert triggers["schedule"][0]["cron"]
    conditions = {name: job["if"] for name, job in workflow["jobs"].items()}
    assert conditions["plan"] == "github.event_name == 'pull_request'"
    assert conditions["apply"] == "github.event_name == 'push'"
    assert "github.event_name == 'schedule'" in conditions["nightly"]


def test_the_action_installs_then_validates_then_plans_with_the_exit_code_and_markdown(
) -> None:
    steps = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    runs = [step.get("run", "") for step in steps]
    [install] = [n for n, run in enumerate(runs) if "pip install" in run]
    [validate] = [n for n, run in enumerate(runs) if "ldbulk validate" in run]
    [plan] = [n for n, run in enumerate(runs) if "ldbulk plan" in run]
    assert install < validate < plan
    assert "--detailed-exitcode" in runs[plan] and "--markdown" in runs[plan]


def plan_step() -> dict[str, Any]:
    action = yaml.safe_load(ACTION.read_text())
    [step] = [step for step in action["runs"]["steps"] if step.get("id") == "plan"]
    return dict(step)


server = sandbox_server()


def run_plan_step(tmp_path: Path, manifests: str, sandbox: SandboxProcess) -> tuple[
        subprocess.CompletedProcess[str], dict[str, str], Path]:
    """The action's plan step as GitHub runs a bash step, its inputs' defaults in its env."""
    step = plan_step()
    inputs = yaml.safe_load(ACTION.read_text())["inputs"]
    env = ldbulk_on_path(tmp_path) | SECRETS | {
        "LD_ACCESS_TOKEN": sandbox.token, "LD_BASE_URI": sandbox.url,
        "MANIFESTS": manifests, "ARGS": "",
        "PLAN_FILE": inputs["plan-file"]["default"],
        "MARKDOWN_FILE": inputs["markdown-file"]["default"],
        "GITHUB_OUTPUT": str(tmp_path / "output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    output = tmp_path / "output"
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines()) \
        if output.exists() else {}
    return result, outputs, tmp_path / "summary"


def test_the_actions_plan_step_sets_its_outputs_and_the_step_summary(
    server: SandboxProcess, tmp_path: Path
) -> None:
    server.reset()
    result, outputs, summary = run_plan_step(tmp_path, str(EXAMPLE), server)
    assert result.returncode == 0, result.stderr  # changes pending is a plan, not a failure
    assert outputs == {"exit-code": "3", "has-changes": "true", "plan-file": "ldbulk.plan",
                       "markdown-file": "ldbulk-plan.md"}
    assert (tmp_path / "ldbulk.plan").exists()
    assert summary.read_text().startswith(MARKER)


def test_the_actions_plan_step_fails_on_a_line_not_found_and_on_bad_input(
    server: SandboxProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    missing.write_text("version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\n"
                       "targets:\n  - {project: nope, environments: [e], store: r}\n")
    result, outputs, _ = run_plan_step(tmp_path, str(missing), server)
    assert result.returncode == 1 and outputs["exit-code"] == "1"
    assert outputs["has-changes"] == "false"
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_MANIFEST)
    result, outputs, _ = run_plan_step(tmp_path, str(bad), server)
    assert result.returncode == 2 and outputs["exit-code"] == "2"


def test_the_pre_commit_hook_passes_a_good_manifest_and_fails_a_bad_one(tmp_path: Path) -> None:
    [hook] = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "ldbulk-validate"
    pattern = re.compile(hook["files"])
    assert pattern.search("manifests/prod.yaml") and pattern.search("manifests/a/b.yml")
    assert not pattern.search("README.md")
    env = ldbulk_on_path(tmp_path)  # no store secret set: validate needs none
    good = subprocess.run([*shlex.split(hook["entry"]), str(EXAMPLE)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_MANIFEST)
    failed = subprocess.run([*shlex.split(hook["entry"]), str(EXAMPLE), str(bad)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 2
    assert f"{bad}:5: targets[0].store" in failed.stderr
