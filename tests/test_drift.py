"""Drift: how existing integrations differ from the manifest, shown without a secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldbulk import apply, loads_manifest
from ldbulk.api.models import DynamoDBConfig, Integration, RedisConfig, Target
from ldbulk.engine.drift import HIDDEN, compare
from ldbulk.engine.plan import Action, plan
from ldbulk.engine.provision import provision
from ldbulk.engine.update import update_for
from ldbulk.errors import ConfigError
from ldbulk.http.client import Client
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]

REDIS = RedisConfig(host="redis-a.internal", port=6379, password="pw-1f3a")
DYNAMO = DynamoDBConfig(table_name="segments", region="eu-west-1",
                        role_arn="arn:aws:iam::123456789012:role/ld",
                        external_id="ext-9b2c")


def read_back(target: Target, config: dict[str, Any], **fields: Any) -> Integration:
    """The integration as a read by id answers it."""
    return Integration(
        id="i-1",
        integration_key=target.integration_key,
        project_key=target.project,
        environment_key=target.environment,
        config=config,
        **fields,
    )


def test_an_integration_as_the_manifest_says_has_no_changes_but_names_the_redacted_secret() -> None:
    target = Target(project="p", environment="e", config=REDIS)
    answer = {**REDIS.to_api(), "password": "********"}
    drift = compare(target, read_back(target, answer))
    assert drift.changes == ()
    assert drift.uncompared == ("password",)


def test_each_differing_field_is_named_with_both_sides() -> None:
    target = Target(project="p", environment="e", config=REDIS, on=True, tags=("a",), name="n")
    answer = {**REDIS.to_api(), "host": "redis-b.internal", "port": "6380"}
    drift = compare(target, read_back(target, answer, on=False, tags=("a",), name="old"))
    assert [str(change) for change in drift.changes] == [
        "config.host: redis-b.internal → redis-a.internal",
        "config.port: 6380 → 6379",
        "on: false → true",
        "name: old → n",
    ]


def test_a_value_from_a_reference_is_shown_as_its_reference_on_both_sides() -> None:
    config = attrs.evolve(REDIS, references={"host": "${REDIS_HOST}"})
    target = Target(project="p", environment="e", config=config)
    # What LaunchDarkly holds quotes the new value (say, a host moved back and forth).
    answer = {**REDIS.to_api(), "host": "redis-a.internal.old"}
    (change,) = compare(target, read_back(target, answer)).changes
    assert change.wanted == "${REDIS_HOST}"
    assert "redis-a.internal" not in str(change)


def test_a_secret_that_launchdarkly_returns_is_compared_but_never_shown() -> None:
    target = Target(project="p", environment="e", config=DYNAMO)
    answer = {**DYNAMO.to_api(), "externalId": "ext-other-77"}
    (change,) = compare(target, read_back(target, answer)).changes
    assert (change.field, change.current, change.wanted) == ("config.externalId", HIDDEN, HIDDEN)


@pytest.mark.parametrize(
    ("config", "field", "mask"),
    [
        (DYNAMO, "externalId", "ext********9b2c"),
        (DYNAMO, "roleArn", "arn********/ld"),
        (DYNAMO, "tableName", "***"),
        (attrs.evolve(REDIS, username="svc-cache"), "username", "svc****che"),
        (REDIS, "host", "red********nal"),
    ],
)
def test_a_field_answered_masked_is_unknown_not_different_whatever_its_name(
    config: RedisConfig | DynamoDBConfig, field: str, mask: str
) -> None:
    target = Target(project="p", environment="e", config=config)
    integration = read_back(target, {**config.to_api(), field: mask}, tags=("managed-by-ldbulk",))
    drift = compare(target, integration)
    assert drift.changes == ()
    assert field in drift.uncompared
    assert update_for(target, integration, drift=drift) is None
    # Written only on request, as the password is.
    rotated = update_for(target, integration, rotate_secrets=True)
    assert rotated is not None and f"config.{field}" in rotated.fields


@given(
    field=st.sampled_from(["host", "port", "username", "tableName", "region", "roleArn",
                           "externalId"]),
    head=st.text(max_size=5), stars=st.integers(min_value=3, max_value=12),
    tail=st.text(max_size=5),
)
def test_any_mask_of_any_field_is_never_drift(field: str, head: str, stars: int, tail: str) -> None:
    config: RedisConfig | DynamoDBConfig = REDIS if field in REDIS.to_api() else DYNAMO
    target = Target(project="p", environment="e", config=config)
    answer = {**config.to_api(), field: head + "*" * stars + tail}
    drift = compare(target, read_back(target, answer, tags=("managed-by-ldbulk",)))
    assert drift.changes == ()
    assert update_for(target, read_back(target, answer, tags=("managed-by-ldbulk",))) is None


@pytest.mark.parametrize("value", ["ext**9b2c", "*", "a*b*c", "ext-other-77"])
def test_fewer_than_three_stars_in_a_row_is_a_value_and_is_compared(value: str) -> None:
    target = Target(project="p", environment="e", config=DYNAMO)
    drift = compare(target, read_back(target, {**DYNAMO.to_api(), "externalId": value}))
    assert [change.field for change in drift.changes] == ["config.externalId"]
    assert drift.uncompared == ()


def test_a_wanted_value_that_holds_stars_matches_itself() -> None:
    config = attrs.evolve(REDIS, username="a***b")
    target = Target(project="p", environment="e", config=config)
    drift = compare(target, read_back(target, {**config.to_api(), "password": "********"}))
    assert drift.changes == ()
    assert drift.uncompared == ("password",)


async def test_plan_lists_exactly_the_drifted_integrations_with_one_read_each(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=3)
    targets = [
        Target(project="proj-001", environment=f"env-00{i}", config=REDIS) for i in (1, 2, 3)
    ]
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await provision(client, targets)
        moved = attrs.evolve(REDIS, host="redis-moved.internal")
        wanted = [targets[0], attrs.evolve(targets[1], config=moved), targets[2]]
        before = client.stats.requests
        items = await plan(client, wanted)
        sent = client.stats.requests - before
        quick = await plan(client, wanted, create_only=True)
    assert [item.action for item in items] == [
        Action.UNCHANGED,
        Action.UPDATE,
        Action.UNCHANGED,
    ]
    assert items[1].fields == ("config.host",)  # created by ldbulk: the tag is there
    assert [str(change) for change in items[1].drift.changes] == [
        "config.host: redis-a.internal → redis-moved.internal"
    ]
    assert sent == 1 + 3  # the listing, and one read by id per existing integration
    assert [item.action for item in quick] == [Action.EXISTS] * 3


def test_a_field_whose_reference_was_not_set_is_named_not_compared_and_never_written() -> None:
    unset = RedisConfig(
        host="unset", password="", references={"host": "${REDIS_HOST}", "password": "${PW}"},
        unset={"host", "password"},
    )
    target = Target(project="p", environment="e", config=unset)
    answer = {**REDIS.to_api(), "port": "6380", "password": "********"}
    drift = compare(target, read_back(target, answer))
    assert drift.unset == (("host", "${REDIS_HOST}"),)
    assert [str(change) for change in drift.changes] == ["config.port: 6380 → 6379"]
    update = update_for(target, read_back(target, answer), rotate_secrets=True)
    assert update is not None and update.fields == ("config.port", "tags")


async def test_apply_refuses_manifests_whose_references_are_not_all_set() -> None:
    loaded = loads_manifest(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: '${REDIS_HOST}'}}\n"
        "targets:\n  - {project: p, environments: [e], store: r}\n",
        env={},
        require_secrets=False,
    )
    async with Client("api-x", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(ConfigError, match=r"not set: \$\{REDIS_HOST\}"):
            await apply(client, loaded)
        assert client.stats.requests == 0
