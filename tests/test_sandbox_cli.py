"""``ldbulk sandbox``: one start line, served until SIGTERM/SIGINT, clean exit."""

from __future__ import annotations

import email.utils
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from ldbulk import Client, RedisConfig
from ldbulk.sandbox.cli import sandbox_command
from ldbulk.sandbox.launch import launch_sandbox


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_module_serves_until_a_signal_and_exits_cleanly(
    stop_signal: signal.Signals, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    args = ("--projects", "2", "--environments", "2", "--state", str(state))
    with launch_sandbox(*args, stderr=subprocess.PIPE) as sandbox:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url), sandbox.url
        assert re.fullmatch(r"api-\S+", sandbox.token)
        async with Client(sandbox.token, base_url=sandbox.url) as client:
            assert [p.key async for p in client.projects()] == ["proj-001", "proj-002"]
            await client.create_integration("proj-002", "env-002", RedisConfig(host="h"))
        returncode = sandbox.stop(stop_signal)
        assert sandbox.process.stderr is not None
        stderr = sandbox.process.stderr.read()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr
    assert '"environmentKey": "env-002"' in state.read_text()


def test_the_module_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ldbulk.sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Run a local LaunchDarkly API sandbox" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault-rate", "2"], "--fault-rate"),
        (["--drop-after-commit", "-0.1"], "--drop-after-commit"),
        (["--port", "70000"], "--port"),
        (["--window-s", "0"], "--window-s"),
        (["--route-limit", "0"], "--route-limit"),
        (["--background-rate", "-1"], "--background-rate"),
        (["--projects", "x"], "--projects"),
        (["--world", "/no/such/world.yaml"], "--world"),
        (["--state", "/no/such/dir/state.json"], "--state"),
        (["--mask", "externalID"], "--mask"),
    ],
)
def test_bad_option_values_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sandbox_command, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_world_and_generated_sizes_exclude_each_other(tmp_path: Path) -> None:
    world = tmp_path / "w.json"
    world.write_text('{"projects": []}')
    result = CliRunner().invoke(sandbox_command, ["--world", str(world), "--projects", "2"])
    assert result.exit_code == 2
    assert "exclude" in result.output


def test_a_bad_world_file_is_a_usage_error(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text("projects:\n  - key: p\n    environments: nope\n")
    result = CliRunner().invoke(sandbox_command, ["--world", str(world)])
    assert result.exit_code == 2
    assert "environments" in result.output
    assert "Traceback" not in result.output


def test_the_command_line_loads_the_server_only_to_run_it() -> None:
    # `ldbulk --version` and every other command import the sandbox command; aiohttp.web is
    # the server's alone. A fresh interpreter, as the modules a test run loaded would hide it.
    code = "import ldbulk.cli, sys; print('aiohttp.web' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_print_env_prints_an_export_line_that_a_shell_can_eval_then_serves() -> None:
    with launch_sandbox("--projects", "1", "--environments", "1", "--print-env") as sandbox:
        assert sandbox.process.stdout is not None
        export = sandbox.process.stdout.readline()
        assert export.startswith("export LD_BASE_URI=")
        shell = subprocess.run(
            ["bash", "-c", 'eval "$1"; printf "%s %s" "$LD_BASE_URI" "$LD_ACCESS_TOKEN"',
             "_", export],
            capture_output=True, text=True, timeout=30, check=True,
        )
        assert shell.stdout == f"{sandbox.url} {sandbox.token}"
        request = urllib.request.Request(
            sandbox.url + "/api/v2/projects", headers={"Authorization": sandbox.token}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert [p["key"] for p in json.load(response)["items"]] == ["proj-001"]


def test_clock_offset_runs_the_servers_clock_and_its_dates_that_far_off() -> None:
    with launch_sandbox("--projects", "1", "--clock-offset", "-3600", "--route-limit", "5") as sb:
        request = urllib.request.Request(
            sb.url + "/api/v2/projects", headers={"Authorization": sb.token}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            date = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
            reset = int(response.headers["X-Ratelimit-Reset"]) / 1000
    assert -3600 - 5 <= date - time.time() <= -3600 + 1
    assert 0 < reset - date <= 11
