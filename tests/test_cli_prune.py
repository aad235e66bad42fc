"""Deletes at the command line: what a prune owns, the question before it deletes, and the
guards that refuse it. ``python -m ldbulk`` subprocesses against a sandbox subprocess, as in
test_cli.py."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TEAM_A_STORES, sandbox_process_fixtures
from test_cli import SECRETS, SandboxProcess, assert_clean_failure, ldbulk

from ldbulk.api import sansio

WORLD = {
    "projects": [
        {"key": "web", "environments": [{"key": k} for k in ("production", "staging", "qa")]},
        {"key": "api", "environments": [{"key": k} for k in ("production", "staging", "qa")]},
    ]
}

WEB = """\
  - {project: web, environments: [production, staging], store: cache}
  - {project: web, environments: [production, staging], store: table}
"""
API = WEB.replace("project: web", "project: api")
TEAM_B = """\
version: 1
defaults: {ownershipTag: team-b}
stores: {cache: {integration: redis, config: {host: redis.internal}}}
targets: [{project: api, environments: [qa], store: cache}]
"""


server, sandbox = sandbox_process_fixtures(world=WORLD)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def deletes(sandbox: SandboxProcess) -> int:
    routes = sandbox.get("/_sandbox/stats")["requests"]
    return sum(routes.get(sansio.ROUTE_DELETE, {}).values())


def existing(sandbox: SandboxProcess) -> set[tuple[str, str, str, tuple[str, ...]]]:
    items = sandbox.get("/_sandbox/integrations")["integrations"]
    return {(i["projectKey"], i["environmentKey"], i["integrationKey"], tuple(i["tags"]))
            for i in items}


@pytest.fixture
def removed_block(sandbox: SandboxProcess, tmp_path: Path) -> str:
    """Team A's manifest over web and api, applied, with team B's beside it; then api's
    block removed from team A's manifest (the path returned)."""
    both = write(tmp_path, "team-a.yaml", TEAM_A_STORES + WEB + API)
    other = write(tmp_path, "team-b.yaml", TEAM_B)
    for path in (both, other):
        assert ldbulk("apply", path, sandbox=sandbox).returncode == 0
    return write(tmp_path, "team-a.yaml", TEAM_A_STORES + WEB)


def test_removing_a_block_plans_its_deletes_and_apply_deletes_them_only_with_consent(
    sandbox: SandboxProcess, removed_block: str
) -> None:
    planned = ldbulk("plan", removed_block, "--prune", sandbox=sandbox)
    assert planned.returncode == 0, planned.stderr
    assert "4 to delete" in planned.stdout

    before = sandbox.writes()
    refused = ldbulk("apply", removed_block, "--prune", sandbox=sandbox)
    assert refused.returncode == 2, refused.stderr
    assert_clean_failure(refused)
    assert "--yes" in refused.stderr and "api/production/redis" in refused.stderr
    assert sandbox.writes() == before and deletes(sandbox) == 0

    report = Path(removed_block).with_name("report.json")
    applied = ldbulk("apply", removed_block, "--prune", "--yes", "--report", str(report),
                     sandbox=sandbox)
    assert applied.returncode == 0, applied.stderr
    assert deletes(sandbox) == 4
    rows = json.loads(report.read_text())["results"]
    assert sorted((r["project"], r["environment"], r["integration"]) for r in rows
                  if r["outcome"] == "deleted") == [
        ("api", env, key) for env in ("production", "staging") for key in ("dynamodb", "redis")
    ]
    # Team B's integration, in the project whose block went, stays.
    assert ("api", "qa", "redis", ("team-b",)) in existing(sandbox)
    assert len(existing(sandbox)) == 4 + 1


def test_auto_approve_is_the_same_consent(
    sandbox: SandboxProcess, removed_block: str
) -> None:
    applied = ldbulk("apply", removed_block, "--prune", "--auto-approve", sandbox=sandbox)
    assert applied.returncode == 0, applied.stderr
    assert deletes(sandbox) == 4


def test_more_deletes_than_allowed_are_refused_and_nothing_is_written(
    sandbox: SandboxProcess, removed_block: str
) -> None:
    before = sandbox.writes()
    refused = ldbulk("apply", removed_block, "--prune", "--yes", "--max-deletes", "3",
                     sandbox=sandbox)
    assert refused.returncode == 2, refused.stderr
    assert_clean_failure(refused)
    assert "more than the 3 allowed" in refused.stderr
    assert sandbox.writes() == before
    allowed = ldbulk("apply", removed_block, "--prune", "--yes", "--max-deletes", "4",
                     sandbox=sandbox)
    assert allowed.returncode == 0, allowed.stderr
    assert deletes(sandbox) == 4


def test_max_deletes_without_prune_is_a_usage_error(tmp_path: Path) -> None:
    result = ldbulk("apply", write(tmp_path, "m.yaml", TEAM_A_STORES + WEB), "--max-deletes", "1",
                    env={"LD_ACCESS_TOKEN": "api-x", "LD_BASE_URI": "http://127.0.0.1:9"})
    assert result.returncode == 2
    assert "--max-deletes" in result.stderr and "--prune" in result.stderr
    assert_clean_failure(result)


def test_with_the_shared_tag_a_removed_block_is_orphaned_with_a_hint_and_never_deleted(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    shared = TEAM_A_STORES.replace("defaults: {ownershipTag: team-a}\n", "")
    both = write(tmp_path, "m.yaml", shared + WEB + API)
    assert ldbulk("apply", both, sandbox=sandbox).returncode == 0
    removed = write(tmp_path, "m.yaml", shared + WEB)

    planned = ldbulk("plan", removed, "--prune", sandbox=sandbox, env={"COLUMNS": "300"})

    assert planned.returncode == 0, planned.stderr
    assert "0 to delete" in planned.stdout and "4 orphaned" in planned.stdout
    orphaned = sorted(tuple(line.split()[:4]) for line in planned.stdout.splitlines()
                      if "orphaned" in line.split()[3:4])
    assert orphaned == [("api", env, key, "orphaned")
                        for env in ("production", "staging") for key in ("dynamodb", "redis")]
    hint = " ".join(planned.stderr.split())
    assert "4 integration(s) carry the shared tag managed-by-ldbulk" in hint
    assert "defaults.ownershipTag" in hint
    applied = ldbulk("apply", removed, "--prune", "--yes", sandbox=sandbox)
    assert applied.returncode == 0, applied.stderr
    assert deletes(sandbox) == 0 and len(existing(sandbox)) == 8


def test_a_typo_in_an_explicit_list_deletes_nothing_in_its_project(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    shared = TEAM_A_STORES.replace("defaults: {ownershipTag: team-a}\n", "")
    right = write(tmp_path, "m.yaml", shared + WEB.replace(", staging]", ", staging, qa]"))
    assert ldbulk("apply", right, sandbox=sandbox).returncode == 0
    typo = write(tmp_path, "m.yaml", shared + WEB.replace("[production,", "[prodution,"))
    planned = ldbulk("plan", typo, "--prune", sandbox=sandbox)
    assert "0 to delete" in planned.stdout
    assert '"prodution"' in planned.stderr
    report = tmp_path / "report.json"
    applied = ldbulk("apply", typo, "--prune", "--yes", "--report", str(report),
                     sandbox=sandbox)
    assert applied.returncode == 1, applied.stderr
    assert deletes(sandbox) == 0 and len(existing(sandbox)) == 6
    rows = {(r["environment"], r["integration"]): r for r in
            json.loads(report.read_text())["results"]}
    assert rows[("prodution", "redis")]["outcome"] == "not_found"
    kept = rows[("production", "redis")]
    assert kept["outcome"] == "skipped" and kept["error"]["code"] == "not_pruned"
    assert '"prodution"' in kept["error"]["message"]
    assert {rows[(env, key)]["error"]["code"] for env in ("production", "qa")
            for key in ("redis", "dynamodb")} == {"not_pruned"}


def on_a_terminal(args: list[str], sandbox: SandboxProcess, answer: str) -> tuple[int, str]:
    """``ldbulk ARGS`` with a terminal for stdin, answering ``answer`` to its question."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    environment |= SECRETS | {"LD_ACCESS_TOKEN": sandbox.token, "LD_BASE_URI": sandbox.url}
    main, terminal = pty.openpty()
    try:
        os.write(main, answer.encode() + b"\n")  # typed ahead: the terminal keeps it
        process = subprocess.run(
            [sys.executable, "-m", "ldbulk", *args], stdin=terminal, capture_output=True,
            text=True, env=environment, timeout=120, check=False,
        )
    finally:
        os.close(terminal)
        os.close(main)
    return process.returncode, process.stderr


@pytest.mark.parametrize(("answer", "code", "deleted"), [("yes", 0, 4), ("y", 2, 0)])
def test_on_a_terminal_apply_shows_the_deletes_and_only_yes_goes_on(
    sandbox: SandboxProcess, removed_block: str, answer: str, code: int, deleted: int
) -> None:
    returncode, stderr = on_a_terminal(
        ["apply", removed_block, "--prune", "--no-progress"], sandbox, answer
    )
    assert returncode == code, stderr
    assert "would delete 4 integrations" in stderr and "api/staging/dynamodb" in stderr
    assert deletes(sandbox) == deleted


def test_ctrl_c_at_the_question_deletes_nothing_and_exits_130(
    sandbox: SandboxProcess, removed_block: str
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    environment |= SECRETS | {"LD_ACCESS_TOKEN": sandbox.token, "LD_BASE_URI": sandbox.url}
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ldbulk", "apply", removed_block, "--prune", "--no-progress"],
        stdin=terminal, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
    )
    assert process.stderr is not None
    asked = b""
    try:
        deadline = time.monotonic() + 60
        while b"Only 'yes' goes on" not in asked and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], 1)
            if ready:
                asked += os.read(process.stderr.fileno(), 4096)
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=30)
    finally:
        os.close(terminal)
        os.close(main)
        process.stderr.close()
        if process.poll() is None:
            process.kill()
    assert b"Only 'yes' goes on" in asked
    assert returncode == 130
    assert deletes(sandbox) == 0
