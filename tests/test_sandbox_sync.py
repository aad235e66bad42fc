"""The sandbox's simulated sync: ``_status`` says when a store becomes available, or why not.

Every test moves a fake clock; nothing waits and no timing is asserted.
"""

from __future__ import annotations

from typing import Any

import pytest

from ldbulk import Client, RedisConfig, RetryPolicy
from ldbulk.errors import ConfigError
from ldbulk.sandbox import Sandbox, SandboxOptions

START = 1_700_000_000.0
WORLD: dict[str, Any] = {
    "projects": [{"key": "shop", "environments": [{"key": "prod"}, {"key": "test"}]}],
    "integrations": [
        {
            "projectKey": "shop",
            "environmentKey": "prod",
            "integrationKey": "redis",
            "config": {"host": "redis.prod.internal"},
        },
        {
            "projectKey": "shop",
            "environmentKey": "test",
            "integrationKey": "redis",
            "config": {"host": "Redis.Down.Internal", "port": 6380},
        },
    ],
    "unreachableHosts": ["redis.down.internal"],
}


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def client_for(sandbox: Sandbox) -> Client:
    return Client(sandbox.token, base_url=sandbox.url, retry=RetryPolicy(max_attempts=1))


async def statuses(sandbox: Sandbox) -> dict[str, Any]:
    """Each integration's status from the list, by environment."""
    async with client_for(sandbox) as client:
        return {item.environment_key: item.status for item in await client.list_integrations()}


async def test_without_a_delay_a_new_store_is_available_at_once(make_sandbox: Any) -> None:
    clock = FakeClock(START)
    sandbox = await make_sandbox(projects=1, environments=1, clock=clock)
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="r"))
    assert created.status.available is True
    assert created.status.last_sync == START * 1000


async def test_a_new_store_becomes_available_after_the_sync_delay(make_sandbox: Any) -> None:
    clock = FakeClock(START)
    sandbox = await make_sandbox(projects=1, environments=1, sync_delay_s=30, clock=clock)
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="r"))
        assert (created.status.available, created.status.last_sync) == (False, None)
        assert created.status.potentially_stale is True
        clock.now += 29.999
        [listed] = await client.list_integrations()
        assert (listed.status.available, listed.status.last_sync) == (False, None)
        clock.now = START + 30
        # The list body is cached between changes; a settled sync is a change of its own.
        [listed] = await client.list_integrations()
        one = await client.get_integration("proj-001", "env-001", "redis", created.id)
    for status in (listed.status, one.status):
        assert (status.available, status.potentially_stale) == (True, False)
        assert status.last_sync == (START + 30) * 1000


async def test_a_new_config_syncs_again_and_a_new_name_does_not(make_sandbox: Any) -> None:
    clock = FakeClock(START)
    sandbox = await make_sandbox(projects=1, environments=1, sync_delay_s=5, clock=clock)
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="r"))
        clock.now += 10
        renamed = await client.update_integration(
            "proj-001", "env-001", "redis", created.id,
            [{"op": "replace", "path": "/name", "value": "n"}],
        )
        assert renamed.status.available is True
        moved = await client.update_integration(
            "proj-001", "env-001", "redis", created.id,
            [{"op": "replace", "path": "/config/host", "value": "r2"}],
        )
        assert moved.status.available is False
        clock.now += 5
        again = await client.get_integration("proj-001", "env-001", "redis", created.id)
    assert again.status.last_sync == (START + 15) * 1000


async def test_stores_of_the_world_have_synced_already(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(world=WORLD, sync_delay_s=60, clock=FakeClock(START))
    prod = (await statuses(sandbox))["prod"]
    assert (prod.available, prod.last_sync) == (True, START * 1000)


async def test_an_unreachable_host_reports_its_error_once_the_delay_has_passed(
    make_sandbox: Any,
) -> None:
    clock = FakeClock(START)
    sandbox = await make_sandbox(world=WORLD, sync_delay_s=2, clock=clock)
    # Host names compare case-insensitively, as DNS does.
    down = (await statuses(sandbox))["test"]
    assert (down.available, down.potentially_stale, down.last_sync) == (False, True, None)
    assert down.last_error == START * 1000
    [error] = down.errors
    assert error.timestamp == START * 1000
    assert "Redis.Down.Internal:6380" in (error.message or "")


async def test_a_new_store_on_an_unreachable_host_is_pending_then_failing(
    make_sandbox: Any,
) -> None:
    clock = FakeClock(START)
    world = {**WORLD, "integrations": []}
    sandbox = await make_sandbox(world=world, sync_delay_s=2, clock=clock)
    async with client_for(sandbox) as client:
        created = await client.create_integration(
            "shop", "prod", RedisConfig(host="redis.down.internal")
        )
        assert (created.status.available, created.status.last_error) == (False, None)
        clock.now += 2
        failing = await client.get_integration("shop", "prod", "redis", created.id)
    assert failing.status.available is False
    assert failing.status.last_error == (START + 2) * 1000
    assert failing.status.last_sync is None


def test_a_negative_sync_delay_is_refused() -> None:
    with pytest.raises(ConfigError, match="sync_delay_s"):
        SandboxOptions(sync_delay_s=-1)
