"""What the command line says when something is off, read as an operator reads it: a refused
token once, a ``--wait`` that gave up, an environment that does not exist, a field the
manifest leaves out, a world file that is not one.

``python -m ldbulk`` subprocesses against a sandbox subprocess, as in test_cli.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SandboxProcess, sandbox_process_fixtures
from test_cli import ROOT, ldbulk

from ldbulk.sandbox.cli import sandbox_command
from ldbulk.sandbox.world import read_world_file

WORLD = {
    "projects": [
        {"key": "web", "environments": [{"key": "prod"}, {"key": "staging"}]},
        {"key": "api", "environments": [{"key": "prod"}]},
    ],
    # Made by hand with a username the manifests below leave out.
    "integrations": [{
        "projectKey": "api", "environmentKey": "prod", "integrationKey": "redis",
        "config": {"host": "redis.internal", "username": "ldbulk"},
    }],
}

MANIFEST = """\
version: 1
stores:
  r: {integration: redis, config: {host: redis.internal}}
targets:
  - {project: web, environments: "*", store: r}
  - {project: web, environments: [qa], store: r}
  - {project: api, environments: [prod], store: r}
"""


server, sandbox = sandbox_process_fixtures(world=WORLD)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    return path


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["apply", "plan", "status"])
def test_a_wrong_token_is_one_error_naming_the_401_and_what_to_check(
    sandbox: SandboxProcess, manifest: Path, command: str
) -> None:
    result = ldbulk(command, str(manifest),
                    env={"LD_ACCESS_TOKEN": "api-not-this-one", "LD_BASE_URI": sandbox.url})
    assert result.returncode == 1, result.stderr
    (error,) = lines(result.stderr)
    assert error.startswith("ldbulk: LaunchDarkly refused the access token (")
    assert "401" in error and "Invalid access token" in error
    assert "Check $LD_ACCESS_TOKEN or --token-file" in error
    # No row per project or target saying the same 401 again: apply's closing count alone.
    expected = ["3 targets: 3 unauthorized"] if command == "apply" else []
    assert [line.split(" (")[0] for line in lines(result.stdout)] == expected


def test_status_wait_that_gives_up_says_it_timed_out_and_how_far_it_got(
    sandbox: SandboxProcess, manifest: Path
) -> None:
    result = ldbulk("status", str(manifest), "--wait", "0.5", "--interval", "0.2",
                    sandbox=sandbox)
    assert result.returncode == 1
    # web's two and web/qa's are not there; api/prod's (made by hand) is available.
    assert lines(result.stdout)[-1] == "timed out after 0.5 s: 1 of 4 stores available."


def test_status_without_wait_gives_the_count_alone(
    sandbox: SandboxProcess, manifest: Path
) -> None:
    result = ldbulk("status", str(manifest), sandbox=sandbox)
    assert lines(result.stdout)[-1] == "1 of 4 stores available."


def test_an_environment_that_does_not_exist_is_named_in_status_and_plan(
    sandbox: SandboxProcess, manifest: Path
) -> None:
    status = ldbulk("status", str(manifest), "-o", "json", sandbox=sandbox)
    problems = {(s["project"], s["environment"]): s["problem"]
                for s in json.loads(status.stdout)["stores"]}
    assert problems[("web", "qa")] == "not found: no environment qa in project web"
    assert problems[("web", "prod")] == "not provisioned"
    table = ldbulk("status", str(manifest), sandbox=sandbox, env={"COLUMNS": "300"})
    assert re.search(r"web/qa/redis .* not found: no environment qa in project web",
                     table.stdout), table.stdout
    plan = ldbulk("plan", str(manifest), sandbox=sandbox, env={"COLUMNS": "300"})
    (row,) = [line for line in plan.stdout.splitlines() if " qa " in line]
    assert row.split() == ["web", "qa", "redis", "not_found", "no", "environment", "qa",
                           "in", "project", "web"]


def test_plan_shows_unset_for_a_field_the_manifest_leaves_out(
    sandbox: SandboxProcess, manifest: Path
) -> None:
    result = ldbulk("plan", str(manifest), sandbox=sandbox, env={"COLUMNS": "300"})
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("api ")]
    assert "config.username: ldbulk → (unset)" in row
    as_json = ldbulk("plan", str(manifest), "-o", "json", sandbox=sandbox)
    (item,) = [i for i in json.loads(as_json.stdout)["items"] if i["project"] == "api"]
    assert {"field": "config.username", "current": "ldbulk", "wanted": "(unset)"} in (
        item["changes"]
    )


@pytest.mark.parametrize(
    ("world", "said"),
    [
        ("projects:\n  - key: web\n    environments: [prod]\n",
         "projects[0].environments[0]: expected an environment (a mapping with key"),
        ("projects: 3\n", "projects: expected a list"),
        ("projects:\n  - name: web\n", "projects[0].key: required key missing"),
        ("- web\n", "expected a mapping of projects, integrations and unreachableHosts"),
    ],
)
def test_a_bad_world_file_is_said_in_its_own_words(
    tmp_path: Path, world: str, said: str
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(world)
    result = CliRunner().invoke(sandbox_command, ["--world", str(path)])
    assert result.exit_code == 2
    assert said in result.output
    assert "README" in result.output
    assert not re.search(r"Spec\b|\btuple\b|\bdict\b", result.output), result.output


def test_the_readmes_world_file_example_is_a_world_file(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The sandbox", 1)[1]
    (example,) = re.findall(r"\n  ```yaml\n(.*?)\n  ```\n", section, re.DOTALL)
    path = tmp_path / "world.yaml"
    path.write_text("\n".join(line.removeprefix("  ") for line in example.splitlines()))
    world = read_world_file(path)
    assert [project.key for project in world.projects] == ["checkout"]
    assert [env.key for env in world.projects[0].environments] == ["production", "staging"]
    assert world.integrations[0].config == {"host": "redis.internal", "port": 6380}
