"""Environments as people count them (``env-2`` before ``env-10``) in the plan's, the
apply report's and the status table, whatever order LaunchDarkly lists them in.

``python -m ldbulk`` subprocesses against a sandbox subprocess, as in test_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SandboxProcess, sandbox_process_fixtures
from test_cli import ldbulk

from ldbulk.text import natural_key

# Listed by the sandbox in this order, as an account's environments are in creation order.
LISTED = ["env-10", "env-2", "env-1", "env-20", "env-3"]
NATURAL = ["env-1", "env-2", "env-3", "env-10", "env-20"]

WORLD = {"projects": [{"key": "web", "environments": [{"key": key} for key in LISTED]}]}

EVERY = """\
version: 1
stores:
  r: {integration: redis, config: {host: redis.internal}}
targets:
  - {project: web, environments: "*", store: r}
"""

# Environments that do not exist, so every one is a row of apply's table of problems.
MISSING = """\
version: 1
stores:
  r: {integration: redis, config: {host: redis.internal}}
targets:
  - {project: web, environments: [qa-10, qa-2, qa-1], store: r}
"""


server, sandbox = sandbox_process_fixtures(world=WORLD)


def column(stdout: str, prefix: str, part: int) -> list[str]:
    """The ``part``-th word of each line that starts with ``prefix``."""
    return [line.split()[part] for line in stdout.splitlines() if line.startswith(prefix)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def test_natural_key_counts_digits_as_numbers() -> None:
    assert sorted(LISTED, key=natural_key) == NATURAL
    assert sorted(["proj-10", "proj-9", "api"], key=natural_key) == ["api", "proj-9", "proj-10"]
    assert sorted(["env-02", "env-2", "env-1"], key=natural_key) == ["env-1", "env-2", "env-02"]


def test_the_plan_lists_environments_in_natural_order(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    result = ldbulk("plan", str(write(tmp_path, EVERY)), sandbox=sandbox)
    assert column(result.stdout, "web ", 1) == NATURAL, result.stdout


def test_the_status_table_lists_environments_in_natural_order(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    result = ldbulk("status", str(write(tmp_path, EVERY)), sandbox=sandbox)
    targets = column(result.stdout, "web/", 0)
    assert [target.split("/")[1] for target in targets] == NATURAL, result.stdout


def test_apply_reports_problems_in_natural_order(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    markdown = tmp_path / "r.md"
    result = ldbulk("apply", str(write(tmp_path, MISSING)), "--report", str(report),
                    "--markdown", str(markdown), sandbox=sandbox)
    assert result.returncode == 1
    targets = column(result.stdout, "web/", 0)
    assert targets == ["web/qa-1/redis", "web/qa-2/redis", "web/qa-10/redis"], result.stdout
    rows = [line.split("|")[2].strip() for line in markdown.read_text().splitlines()
            if line.startswith("| web ")]
    assert rows == ["qa-1", "qa-2", "qa-10"]
    # The JSON report keeps the manifest's order, a tool's to sort as it likes.
    results = json.loads(report.read_text())["results"]
    assert [row["environment"] for row in results] == ["qa-10", "qa-2", "qa-1"]
