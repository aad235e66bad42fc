"""``export`` of a large account: each read written down as it is made, paced by the client,
shown as it goes, and a stopped export resumed without reading again what it had read."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_cli import ldbulk as run_ldbulk
from test_cli import start_sandbox
from test_export import by_hand, world_with_integrations

import ldbulk
from ldbulk.api.sansio import ROUTE_GET
from ldbulk.cli.main import main
from ldbulk.engine.export import ExportWatch
from ldbulk.engine.export_partial import load_partial, partial_path
from ldbulk.errors import Stopped
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]

def reads_by_id(sandbox: Sandbox) -> int:
    """The reads by id the sandbox has answered so far."""
    return sum(sandbox.stats.requests.get(ROUTE_GET, {}).values())


async def account(make_sandbox: SandboxFactory, **options: object) -> Sandbox:
    sandbox = await make_sandbox(projects=2, environments=3, **options)
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        report = await ldbulk.provision(client, by_hand())
    assert report.counts["created"] == 6
    return sandbox


async def test_a_stopped_export_resumes_from_its_partial_file_reading_only_the_rest(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = await account(make_sandbox)
    partial = partial_path(tmp_path / "stores.yaml")
    stop = asyncio.Event()
    read: list[int] = []

    def one_read() -> None:
        read.append(1)
        if len(read) == 2:
            stop.set()  # as Ctrl-C does, two reads in

    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        with pytest.raises(Stopped):
            await ldbulk.export(
                client, stop=stop, concurrency=1, partial=partial,
                watch=ExportWatch(read=one_read),
            )  # fmt: skip
    # Each read was written down as it was made, and nothing of a secret with it.
    kept = load_partial(partial, ())
    assert len(kept) == 2 == reads_by_id(sandbox)
    assert "redis-pw-export" not in partial.read_text() and "ext-id" not in partial.read_text()
    assert partial.stat().st_mode & 0o777 == 0o600  # it names projects, environments, hosts
    listed: list[tuple[int, int]] = []
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        resumed = await ldbulk.export(
            client, partial=partial,
            watch=ExportWatch(listed=lambda todo, before: listed.append((todo, before))),
        )  # fmt: skip
        whole = await ldbulk.export(client)
    # The resume read the four it had not; the whole export after it, all six again.
    assert listed == [(4, 2)]
    assert reads_by_id(sandbox) == 2 + 4 + 6
    assert resumed == whole
    assert len(load_partial(partial, ())) == 6


async def test_a_partial_file_of_another_selection_is_not_resumed_from(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = await account(make_sandbox)
    partial = tmp_path / "stores.yaml.partial"
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.export(client, projects=["proj-001"], partial=partial)
        listed: list[tuple[int, int]] = []
        await ldbulk.export(
            client, partial=partial,
            watch=ExportWatch(listed=lambda todo, before: listed.append((todo, before))),
        )  # fmt: skip
    assert listed == [(6, 0)]


async def test_reads_go_through_the_pacer_and_each_is_reported(
    make_sandbox: SandboxFactory,
) -> None:
    # Three reads a window: the six reads need two windows' turns, never a 429.
    sandbox = await account(make_sandbox, route_limit=3, window_s=1.0)
    seen: list[str] = []
    watch = ExportWatch(
        listed=lambda todo, before: seen.append(f"listed {todo} {before}"),
        read=lambda: seen.append("read"),
    )
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        throttled = sandbox.stats.throttled
        result = await ldbulk.export(client, watch=watch)
    assert seen == ["listed 6 0"] + ["read"] * 6
    assert sandbox.stats.throttled == throttled
    assert result.integrations == 6


async def test_an_export_watch_may_be_coroutine_functions(make_sandbox: SandboxFactory) -> None:
    sandbox = await account(make_sandbox)
    seen: list[str] = []

    async def listed(todo: int, before: int) -> None:
        await asyncio.sleep(0)
        seen.append(f"listed {todo} {before}")

    async def read() -> None:
        await asyncio.sleep(0)
        seen.append("read")

    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        result = await ldbulk.export(client, watch=ExportWatch(listed=listed, read=read))
    assert seen == ["listed 6 0"] + ["read"] * 6
    assert result.integrations == 6


def test_the_command_leaves_no_partial_file_once_the_manifest_is_written(
    tmp_path: Path,
) -> None:
    world = tmp_path / "world.json"
    world.write_text(json.dumps(world_with_integrations()), encoding="utf-8")
    output = tmp_path / "stores.yaml"
    with start_sandbox("--world", str(world)) as sandbox:
        exported = run_ldbulk("export", "-o", str(output), sandbox=sandbox, secrets=False)
    assert exported.returncode == 0, exported.stderr
    assert output.exists() and not partial_path(output).exists()
    assert "4 integration(s) exported as 2 store(s)." in exported.stderr


def test_an_output_whose_partial_file_is_a_symlink_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("the victim's own text\n")
    partial_path(tmp_path / "stores.yaml").symlink_to(victim)
    result = CliRunner().invoke(
        main, ["export", "-o", str(tmp_path / "stores.yaml"), "--base-uri", "http://127.0.0.1:9"],
        env={"LD_ACCESS_TOKEN": "api-x"},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert victim.read_text() == "the victim's own text\n"


def test_an_interrupted_command_writes_no_output_keeps_its_reads_and_resumes(
    tmp_path: Path,
) -> None:
    environments = [f"env-{number}" for number in range(1, 13)]
    world = tmp_path / "world.json"
    world.write_text(json.dumps({
        "projects": [{"key": "web", "environments": [{"key": e} for e in environments]}],
        "integrations": [
            {"projectKey": "web", "environmentKey": e, "integrationKey": "redis",
             "config": {"host": "cache.internal"}, "on": True, "tags": ["managed-by-ldbulk"]}
            for e in environments
        ],
    }), encoding="utf-8")  # fmt: skip
    output = tmp_path / "stores.yaml"
    partial = partial_path(output)
    # Three requests a route and second: the reads take a few windows, time to stop them.
    with start_sandbox("--world", str(world), "--route-limit", "3", "--window-s", "1") as sandbox:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LD_")}
        env |= {"LD_ACCESS_TOKEN": sandbox.token, "LD_BASE_URI": sandbox.url}
        process = subprocess.Popen(
            [sys.executable, "-m", "ldbulk", "export", "-o", str(output)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while not (partial.exists() and len(partial.read_text().splitlines()) >= 2):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        # Nothing in the output's place; the reads made are kept beside it.
        assert not output.exists()
        kept = len(load_partial(partial, ()))
        assert 1 <= kept < len(environments), stderr
        assert f"Stopped: {kept} of 12 integration(s) read" in stderr
        resumed = run_ldbulk("export", "-o", str(output), sandbox=sandbox, secrets=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {kept} integration(s) read before, {12 - kept} to read." in resumed.stderr
    assert "12 integration(s) exported as 1 store(s)." in resumed.stderr
    assert not partial.exists()
    targets = yaml.safe_load(output.read_text(encoding="utf-8"))["targets"]
    assert targets == [{"project": "web", "environments": "*", "store": "cache"}]
