"""``export`` writes the manifest a person would have: natural order, stores named after what
they are, ``on: true`` bare, ``environments: "*"`` for a store that covers a project, and a
comment above the integrations made by hand that applying the file takes over."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

import ldbulk
from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]

PASSWORD = "idioms-pw-5e1a"


def redis(host: str) -> dict[str, Any]:
    return {"host": host, "port": 6379, "password": PASSWORD, "tlsEnabled": True}


def dynamodb(table: str) -> dict[str, Any]:
    return ldbulk.DynamoDBConfig(
        table_name=table, region="eu-west-1",
        role_arn="arn:aws:iam::123456789012:role/launchdarkly", external_id="ext-idioms",
    ).to_api()  # fmt: skip


def world(
    projects: dict[str, Sequence[str]],
    integrations: Sequence[tuple[str, str, str, dict[str, Any], bool]],
) -> dict[str, Any]:
    """Projects with their environments, and integrations (project, environment, key, config,
    whether ldbulk's ownership tag is on it)."""
    return {
        "projects": [
            {"key": key, "environments": [{"key": env} for env in envs]}
            for key, envs in projects.items()
        ],
        "integrations": [
            {
                "projectKey": project,
                "environmentKey": env,
                "integrationKey": key,
                "config": config,
                "on": True,
                "tags": [DEFAULT_OWNERSHIP_TAG] if owned else [],
            }
            for project, env, key, config, owned in integrations
        ],
    }


async def exported(make_sandbox: SandboxFactory, account: dict[str, Any]) -> ldbulk.ExportResult:
    sandbox = await make_sandbox(world=account)
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        return await ldbulk.export(client)


async def test_projects_environments_and_stores_come_in_natural_order(
    make_sandbox: SandboxFactory,
) -> None:
    envs = ["env-10", "env-2", "env-1", "env-3"]
    cache = redis("cache.internal")
    # A project without integrations: not every project has the same targets, so each is named.
    result = await exported(make_sandbox, world(
        {"p-10": envs, "p-9": envs, "p-0": envs},
        [(project, env, "redis", cache, True) for project in ("p-10", "p-9") for env in envs[:3]],
    ))  # fmt: skip
    targets = result.document["targets"]
    assert [target["project"] for target in targets] == ["p-9", "p-10"]
    assert [target["environments"] for target in targets] == [["env-1", "env-2", "env-10"]] * 2
    text = result.to_yaml()
    assert "environments: [env-1, env-2, env-10]" in text
    assert text.index("project: p-9") < text.index("project: p-10")


async def test_stores_are_named_after_their_host_or_table_and_kept_apart(
    make_sandbox: SandboxFactory,
) -> None:
    envs = ["production", "staging", "qa", "dev"]
    result = await exported(make_sandbox, world({"web": envs}, [
        ("web", "production", "redis", redis("cache.eu.example.com"), True),
        ("web", "staging", "redis", redis("cache.us.example.com"), True),
        ("web", "qa", "redis", redis("10.0.0.7"), True),
        ("web", "dev", "dynamodb", dynamodb("ld-segments"), True),
    ]))  # fmt: skip
    stores = result.document["stores"]
    # The first label says what the store is; the next store of that label takes the host.
    assert sorted(stores) == ["cache", "cache.us.example.com", "ld-segments", "redis-10.0.0.7"]
    assert stores["cache"]["config"]["host"] == "cache.eu.example.com"
    assert stores["ld-segments"]["config"]["tableName"] == "ld-segments"
    assert "LD_REDIS_PASSWORD_CACHE" in result.variables


async def test_on_is_written_bare_and_the_file_loads_back(make_sandbox: SandboxFactory) -> None:
    result = await exported(make_sandbox, world(
        {"web": ["production", "staging"]},
        [("web", "production", "redis", redis("cache.internal"), True)],
    ))  # fmt: skip
    text = result.to_yaml()
    assert "\n    on: true\n" in text and "'on'" not in text
    env = {name: PASSWORD for name in result.variables}
    loaded = ldbulk.loads_manifest(text, env=env)
    (store,) = loaded.stores
    assert store.on is True


async def test_a_store_covering_every_environment_of_a_project_is_written_with_a_wildcard(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    cache = redis("cache.internal")
    account = world(
        {"web": ["production", "staging"], "api": ["production", "staging", "qa"]},
        [("web", "production", "redis", cache, True), ("web", "staging", "redis", cache, True),
         ("api", "production", "redis", cache, True), ("api", "qa", "redis", cache, True)],
    )  # fmt: skip
    sandbox = await make_sandbox(world=account)
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        result = await ldbulk.export(client)
        path = tmp_path / "exported.yaml"
        path.write_text(result.to_yaml(), encoding="utf-8")
        loaded = ldbulk.load_manifests([path], env={name: PASSWORD for name in result.variables})
        targets = await ldbulk.resolve_targets(loaded, client)
        items = await ldbulk.plan(client, targets)
    assert result.document["targets"] == [
        {"project": "api", "environments": ["production", "qa"], "store": "cache"},
        {"project": "web", "environments": "*", "store": "cache"},
    ]
    assert yaml.safe_load(path.read_text())["targets"][1]["environments"] == "*"
    assert result.integrations == 4
    # The wildcard resolves to the same environments: plan finds nothing to change.
    assert sorted(t.key for t in targets) == sorted(
        (project, env, "redis")
        for project, env in [("api", "production"), ("api", "qa"),
                             ("web", "production"), ("web", "staging")]
    )  # fmt: skip
    assert {item.action for item in items} == {ldbulk.Action.UNCHANGED}


async def test_integrations_made_by_hand_are_named_in_a_comment_that_the_file_takes_them_over(
    make_sandbox: SandboxFactory,
) -> None:
    cache = redis("cache.internal")
    result = await exported(make_sandbox, world(
        {"web": ["production", "staging", "qa"], "api": ["production", "staging"]},
        [("web", "production", "redis", cache, False), ("web", "staging", "redis", cache, True),
         ("web", "qa", "redis", cache, False), ("api", "production", "redis", cache, True)],
    ))  # fmt: skip
    assert result.by_hand == {("web", "cache"): ("production", "qa")}
    text = result.to_yaml()
    lines = text.splitlines()
    web = lines.index("- project: web")
    comment = [line for line in lines[:web] if line.startswith("#")]
    # Above web's target only: api's integration carries the tag.
    assert comment and lines[web - 1].startswith("#")
    said = " ".join(line.lstrip("# ") for line in comment)
    assert "production, qa" in said and "takes them over" in said
    assert DEFAULT_OWNERSHIP_TAG in said
    assert not lines[lines.index("- project: api") - 1].startswith("#")
    # Still a manifest: the comment changes nothing of what it says.
    loaded = ldbulk.loads_manifest(text, env={name: PASSWORD for name in result.variables})
    assert len(loaded.stores) == 1
