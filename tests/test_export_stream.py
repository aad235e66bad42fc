"""``export`` of a large account: each read written down as it is made, paced by the client,
shown as it goes, and a stopped export resumed without reading again what it had read."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_export import by_hand

import ldbulk
from ldbulk.api.sansio import ROUTE_GET
from ldbulk.cli.main import main
from ldbulk.engine.export import ExportWatch
from ldbulk.engine.export_partial import load_partial, partial_path
from ldbulk.errors import Stopped
from ldbulk.http.scope import RequestScope
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
    scope = RequestScope()
    read: list[int] = []

    def one_read() -> None:
        read.append(1)
        if len(read) == 2:
            scope.stop.set()  # as Ctrl-C does, two reads in

    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        with pytest.raises(Stopped):
            await ldbulk.export(
                client, scope=scope, concurrency=1, partial=partial,
                watch=ExportWatch(read=one_read),
            )  # fmt: skip
    # Each read was written down as it was made, and nothing of a secret with it.
    kept = load_partial(partial, ())
    assert len(kept) == 2 == reads_by_id(sandbox)
    assert "redis-pw-export" not in partial.read_text() and "ext-id" not in partial.read_text()
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


def test_the_command_leaves_no_partial_file_once_the_manifest_is_written(
    tmp_path: Path,
) -> None:
    from test_cli import ldbulk as run_ldbulk
    from test_cli import start_sandbox
    from test_export import world_with_integrations

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
