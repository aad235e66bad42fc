"""The state file (``--state``) is a shortcut the access token vouches for: whatever it cannot
vouch for (an edited file, another base URL, another token, an older format, a version ahead of
the account's) is read, never taken at its word."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REDIS_MANIFEST, SandboxFactory

import ldbulk
from ldbulk.api.models import RedisConfig, Target
from ldbulk.engine.report import Outcome, TargetResult
from ldbulk.engine.seen import Seen
from ldbulk.http.client import Client
from ldbulk.sandbox import Sandbox, SandboxOptions

PASSWORD = "seen-redis-secret"


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    """The account of REDIS_MANIFEST: one project of three environments."""
    return await make_sandbox(projects=1, environments=3)


def manifest() -> ldbulk.ManifestSet:
    return ldbulk.loads_manifest(REDIS_MANIFEST, env={"LD_REDIS_PASSWORD": PASSWORD})


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=1) + "\n")


async def move_host_by_hand(client: Client, sandbox: Sandbox) -> int:
    """Change env-002's host as someone in LaunchDarkly's UI would; its new version."""
    integration = sandbox.integration("proj-001", "env-002", "redis")
    assert integration is not None
    changed = await client.update_integration(
        "proj-001", "env-002", "redis", integration.id,
        [{"op": "replace", "path": "/config/host", "value": "by-hand.lan"}],
    )
    return changed.version


async def test_a_hand_edited_state_file_cannot_hide_drift_and_is_ignored_with_a_warning(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "seen.json"
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(), state=state)
        version = await move_host_by_hand(client, sandbox)

        # The change is hidden by bumping the recorded version to the one LaunchDarkly lists.
        def bump(document: dict[str, Any]) -> None:
            for item in document["integrations"]:
                if item["key"][1] == "env-002":
                    item["version"] = version

        edit(state, bump)
        with caplog.at_level(logging.WARNING, logger="ldbulk"):
            report = await ldbulk.apply(client, manifest(), state=state)
        again = await ldbulk.apply(client, manifest(), state=state)
    # Ignored as a whole: every integration read, the hand change found and undone.
    assert report.counts["updated"] == 1 and report.counts["unchanged"] == 2
    assert report.stats.requests == 1 + 3 + 1
    assert "signature does not verify" in caplog.text
    # Rewritten by that run, so the next one trusts it again.
    assert again.counts["unchanged"] == 3 and again.stats.requests == 1


async def test_a_state_file_written_against_another_base_url_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two servers holding the same ids at the same versions, one of them with another host:
    # a restored copy, say. The token is the same, so only the base URL tells them apart.
    token, world, state = "api-seen-test", tmp_path / "world.json", tmp_path / "seen.json"
    async with Sandbox(SandboxOptions(projects=1, environments=3, token=token,
                                      state=world)) as first:
        async with Client(token, base_url=first.url) as client:
            await ldbulk.apply(client, manifest(), state=state)

    def move(document: dict[str, Any]) -> None:
        for item in document["integrations"]:
            if item["environmentKey"] == "env-002":
                item["config"]["host"] = "elsewhere.lan"  # same id, same version

    edit(world, move)
    async with Sandbox(SandboxOptions(projects=1, environments=3, token=token,
                                      state=world)) as second:
        assert second.url != first.url
        async with Client(token, base_url=second.url) as client:
            with caplog.at_level(logging.WARNING, logger="ldbulk"):
                report = await ldbulk.apply(client, manifest(), state=state)
    assert report.counts["updated"] == 1 and report.counts["unchanged"] == 2
    assert "another base URL" in caplog.text
    assert json.loads(state.read_text())["baseUrl"] == second.url


async def test_a_state_file_signed_with_another_token_is_read_past_once(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "seen.json"
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(), state=state)
    signed = json.loads(state.read_text())["mac"]
    key = Client("api-another-token", base_url=sandbox.url).derive_key("ldbulk state file")
    with caplog.at_level(logging.WARNING, logger="ldbulk"):
        seen = Seen.load(state, key=key, base_url=sandbox.url)
    assert "signature does not verify" in caplog.text
    assert repr(seen).endswith("entries=0)")
    # The file holds neither the token nor anything derived from it but the signature.
    text = state.read_text()
    assert sandbox.token not in text and key.hex() not in text and len(signed) == 64


def test_a_recorded_version_ahead_of_the_listed_one_is_no_match() -> None:
    target = Target(project="p", environment="e", config=RedisConfig(host="h"))
    seen = Seen(key=b"k" * 32, base_url="https://app.launchdarkly.com")
    seen.record(target, TargetResult(project="p", environment="e", integration="redis",
                                     outcome=Outcome.UPDATED, integration_id="i-1", version=5))
    listed = ldbulk.Integration(id="i-1", integration_key="redis", project_key="p",
                                environment_key="e", version=5)
    assert seen.unchanged(target, listed)
    for version in (3, 4, 6):
        assert not seen.unchanged(target, ldbulk.Integration(
            id="i-1", integration_key="redis", project_key="p", environment_key="e",
            version=version,
        ))


async def test_an_older_state_file_is_ignored_with_a_warning_and_a_newer_one_refused(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    older, newer = tmp_path / "older.json", tmp_path / "newer.json"
    older.write_text(json.dumps({"kind": "ldbulk-seen", "format": 1, "salt": "00",
                                 "integrations": []}))
    newer.write_text(json.dumps({"kind": "ldbulk-seen", "format": 99, "integrations": []}))
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        with caplog.at_level(logging.WARNING, logger="ldbulk"):
            report = await ldbulk.apply(client, manifest(), state=older)
        assert report.counts["created"] == 3
        assert "older ldbulk" in caplog.text
        assert json.loads(older.read_text())["format"] == 2
        sent = client.stats.requests
        with pytest.raises(ldbulk.ConfigError, match="format 99"):
            await ldbulk.apply(client, manifest(), state=newer)
        assert client.stats.requests == sent  # refused before any request
