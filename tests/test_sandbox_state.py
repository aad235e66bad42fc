"""Worlds from files and the state file that keeps integrations across restarts."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ldbulk import Client, ConfigError, DynamoDBConfig, RedisConfig, RetryPolicy
from ldbulk.sandbox import Sandbox, SandboxOptions
from ldbulk.sandbox.world import REDACTED_VALUE, read_world_file

DYNAMO = DynamoDBConfig(table_name="segments", region="us-east-1",
                        role_arn="arn:aws:iam::123456789012:role/ld",
                        external_id="ext-1")

WORLD_YAML = """
projects:
  - key: checkout
    name: Checkout
    tags: [payments]
    environments:
      - key: production
        tags: [prod]
      - key: staging
integrations:
  - projectKey: checkout
    environmentKey: production
    integrationKey: redis
    config: {host: redis.internal, port: 6380}
    on: true
"""


def client_for(sandbox: Sandbox) -> Client:
    return Client(sandbox.token, base_url=sandbox.url, retry=RetryPolicy(max_attempts=1))


async def test_world_file_in_yaml_gives_projects_environments_and_integrations(
    make_sandbox: Any, tmp_path: Path
) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(WORLD_YAML)
    sandbox = await make_sandbox(world=world)
    async with client_for(sandbox) as client:
        projects = [project async for project in client.projects()]
        environments = [env async for env in client.environments("checkout")]
        existing = await client.list_integrations()
    assert [(p.key, p.name, p.tags) for p in projects] == [("checkout", "Checkout", ("payments",))]
    assert [(e.key, e.tags) for e in environments] == [("production", ("prod",)), ("staging", ())]
    assert [(i.environment_key, i.on, i.version) for i in existing] == [("production", True, 1)]
    stored = sandbox.integration("checkout", "production", "redis")
    assert stored is not None and stored.config is not None and stored.config["port"] == "6380"


def test_world_file_in_json_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"projects": [{"key": "p", "environments": [{"key": "e"}]}]}))
    assert read_world_file(path).projects[0].environments[0].key == "e"


@pytest.mark.parametrize(
    ("world", "message"),
    [
        ({"projects": [{"key": 1}]}, "projects[0].key"),
        ({"projects": [{"key": "p"}, {"key": "p"}]}, "appears twice"),
        (
            {
                "projects": [{"key": "p", "environments": [{"key": "e"}]}],
                "integrations": [
                    {
                        "projectKey": "p",
                        "environmentKey": "x",
                        "integrationKey": "redis",
                        "config": {},
                    }
                ],
            },
            "no environment",
        ),
        (
            {
                "projects": [{"key": "p", "environments": [{"key": "e"}]}],
                "integrations": [
                    {
                        "projectKey": "p",
                        "environmentKey": "e",
                        "integrationKey": "redis",
                        "config": {},
                    }
                ],
            },
            "config.host",
        ),
    ],
)
def test_a_bad_world_is_a_config_error_naming_the_problem(
    world: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Sandbox(SandboxOptions(world=world))


def test_bad_options_are_config_errors() -> None:
    for options in ({"fault_rate": 1.5}, {"window_s": 0}, {"route_limit": 0}, {"port": 70000}):
        with pytest.raises(ConfigError):
            SandboxOptions(**options)


async def test_state_file_round_trip(make_sandbox: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = await make_sandbox(state=state)
    async with client_for(first) as client:
        redis = await client.create_integration(
            "proj-001", "env-001", RedisConfig(host="h", password="pw-secret"), tags=["a"]
        )
        await client.create_integration("proj-002", "env-002", DYNAMO)
        await client.update_integration(
            "proj-001", "env-001", "redis", redis.id,
            [{"op": "replace", "path": "/on", "value": True}],
        )
    before = first.integrations
    await first.stop()

    text = state.read_text()
    assert "pw-secret" not in text
    assert len(json.loads(text)["integrations"]) == 2
    assert os.listdir(tmp_path) == ["state.json"]  # no temp file left behind

    second = await make_sandbox(state=state)
    after = second.integrations
    assert set(after) == set(before)
    restored = after[("proj-001", "env-001", "redis")]
    assert (restored.id, restored.version, restored.on, restored.tags) == (
        redis.id,
        2,
        True,
        ("a",),
    )
    # Secrets never reach the disk: the restored store reads back redacted, like any other.
    assert restored.config is not None and restored.config["password"] == REDACTED_VALUE
    assert (
        after[("proj-002", "env-002", "dynamodb")].config
        == before[("proj-002", "env-002", "dynamodb")].config
    )
    async with client_for(second) as client:
        fetched = await client.get_integration("proj-001", "env-001", "redis", redis.id)
    assert fetched.version == 2


async def test_state_file_replaces_the_worlds_integrations(
    make_sandbox: Any, tmp_path: Path
) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(WORLD_YAML)
    state = tmp_path / "state.json"
    first = await make_sandbox(world=world, state=state)
    async with client_for(first) as client:
        (existing,) = await client.list_integrations()
        await client.delete_integration("checkout", "production", "redis", existing.id)
    await first.stop()
    second = await make_sandbox(world=world, state=state)
    assert second.integrations == {}


async def test_state_is_written_while_running(make_sandbox: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    sandbox = await make_sandbox(state=state)
    async with client_for(sandbox) as client:
        await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
    for _ in range(100):
        if state.exists() and json.loads(state.read_text())["integrations"]:
            break
        await asyncio.sleep(0.05)
    assert len(json.loads(state.read_text())["integrations"]) == 1


def test_a_state_file_for_another_world_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "integrations": [
                    {
                        "projectKey": "gone",
                        "environmentKey": "e",
                        "integrationKey": "redis",
                        "config": {"host": "h"},
                    }
                ]
            }
        )
    )
    with pytest.raises(ConfigError, match="no environment"):
        Sandbox(SandboxOptions(state=state))
    state.write_text("{not json")
    with pytest.raises(ConfigError, match="state file"):
        Sandbox(SandboxOptions(state=state))
