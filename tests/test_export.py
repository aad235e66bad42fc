"""``export``: an account's integrations, set up without ldbulk, become a manifest that ``plan``
finds all in place, with secrets as references and never as values."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from test_cli import ldbulk as run_ldbulk
from test_cli import start_sandbox

import ldbulk
import ldbulk.testing
from ldbulk.cli.main import main
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]

REDIS_PASSWORD = "redis-pw-export-41d7"
EXTERNAL_ID = "ext-id-export-9b3c"
REDIS = ldbulk.RedisConfig(host="redis.internal", password=REDIS_PASSWORD, tls_enabled=True)
DYNAMODB = ldbulk.DynamoDBConfig(
    table_name="ld-big-segments",
    region="eu-west-1",
    role_arn="arn:aws:iam::123456789012:role/launchdarkly",
    external_id=EXTERNAL_ID,
)
SECRETS = {"redis": REDIS_PASSWORD, "dynamodb": EXTERNAL_ID}


def by_hand() -> list[ldbulk.Target]:
    """Two setups across two projects, each environment's name written out in full, as a
    person clicking through LaunchDarkly's UI would have left them."""
    redis = [("proj-001", "env-001"), ("proj-001", "env-002"), ("proj-002", "env-001")]
    dynamodb = [("proj-001", "env-003"), ("proj-002", "env-002"), ("proj-002", "env-003")]
    return [
        ldbulk.Target(
            project=project,
            environment=environment,
            config=REDIS,
            on=True,
            tags=("big-segments",),
            name=f"Big segments for {project}/{environment}",
        )
        for project, environment in redis
    ] + [
        ldbulk.Target(project=project, environment=environment, config=DYNAMODB)
        for project, environment in dynamodb
    ]


async def account(make_sandbox: SandboxFactory) -> ldbulk.Client:
    """A client of a sandbox whose integrations were set up by hand (see :func:`by_hand`)."""
    sandbox = await make_sandbox(projects=2, environments=3)
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        report = await ldbulk.provision(client, by_hand())
    assert report.counts["created"] == 6, report.counts
    return ldbulk.Client(sandbox.token, base_url=sandbox.url)


def variable_values(result: ldbulk.ExportResult) -> dict[str, str]:
    """Each variable set to the secret LaunchDarkly holds for its stores, as a user would."""
    stores = result.document["stores"]
    return {
        variable: SECRETS[stores[users[0]]["integration"]]
        for variable, users in result.variables.items()
    }


async def test_export_makes_one_store_per_setup_with_secrets_as_references(
    make_sandbox: SandboxFactory,
) -> None:
    async with await account(make_sandbox) as client:
        result = await ldbulk.export(client)
        requests = client.stats.requests
    document = result.document
    assert list(document) == ["version", "stores", "targets"]
    assert document["version"] == 1
    stores = document["stores"]
    assert sorted(stores) == ["ld-big-segments", "redis"]
    redis = stores["redis"]
    # The names written out per environment come back as one template.
    assert redis["name"] == "Big segments for {project}/{environment}"
    assert (redis["on"], redis["tags"]) == (True, ["big-segments"])
    assert redis["config"] == {
        "host": "redis.internal",
        "port": 6379,
        "username": "",
        "password": "${LD_REDIS_PASSWORD_REDIS}",
        "tlsEnabled": True,
    }
    dynamodb = stores["ld-big-segments"]["config"]
    assert dynamodb["externalId"] == "${LD_DYNAMODB_EXTERNAL_ID_LD_BIG_SEGMENTS}"
    assert result.variables == {
        "LD_DYNAMODB_EXTERNAL_ID_LD_BIG_SEGMENTS": (
            "ld-big-segments",
        ),
        "LD_REDIS_PASSWORD_REDIS": ("redis",),
    }
    assert document["targets"] == [
        {
            "project": "proj-001",
            "environments": ["env-003"],
            "store": "ld-big-segments",
        },
        {
            "project": "proj-001",
            "environments": ["env-001", "env-002"],
            "store": "redis",
        },
        {
            "project": "proj-002",
            "environments": ["env-002", "env-003"],
            "store": "ld-big-segments",
        },
        {"project": "proj-002", "environments": ["env-001"], "store": "redis"},
    ]
    assert result.skipped == ()
    # One list, then one read by id per integration (the list carries no config), then each
    # project's environments, to tell whether a store covers them all.
    assert requests == 1 + 6 + 2
    text = result.to_yaml() + repr(result)
    assert REDIS_PASSWORD not in text and EXTERNAL_ID not in text


async def test_an_exported_manifest_plans_every_target_as_existing(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    async with await account(make_sandbox) as client:
        result = await ldbulk.export(client)
        path = tmp_path / "exported.yaml"
        path.write_text(result.to_yaml(), encoding="utf-8")
        loaded = ldbulk.load_manifests([path], env=variable_values(result))
        targets = await ldbulk.resolve_targets(loaded, client)
        items = await ldbulk.plan(client, targets)
    # Unchanged: plan read each integration back and found it as the manifest says.
    assert {item.action for item in items} == {ldbulk.Action.UNCHANGED}
    # The manifest describes exactly what was set up, secrets included once resolved.
    described = {(t.key, t.config, t.on, t.tags, t.name) for t in targets}
    assert described == {(t.key, t.config, t.on, t.tags, t.name) for t in by_hand()}
    assert "&" not in path.read_text() and "*" not in path.read_text()  # no YAML aliases


async def test_a_field_answered_masked_is_exported_as_a_reference_never_as_its_mask(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(
        projects=2, environments=3, masked_fields={"password", "externalId", "roleArn"}
    )
    other_role = "arn:aws:iam::123456789012:role/launchdarkly-other"
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.provision(client, by_hand())
        await client.create_integration(
            "proj-001", "env-001", ldbulk.DynamoDBConfig(
                table_name="ld-big-segments", region="eu-west-1", role_arn=other_role,
                external_id=EXTERNAL_ID,
            ),
        )
        result = await ldbulk.export(client)
    text = result.to_yaml()
    assert "**" not in text
    stores = result.document["stores"]
    # Two role ARNs behind two masks: two stores, each with its own variable.
    dynamodb = [
        store["config"] for _, store in sorted(stores.items()) if store["integration"] == "dynamodb"
    ]
    assert [config["roleArn"] for config in dynamodb] == [
        "${LD_DYNAMODB_ROLE_ARN_LD_BIG_SEGMENTS}",
        "${LD_DYNAMODB_ROLE_ARN_LD_BIG_SEGMENTS_EU_WEST_1}",
    ]
    assert {"LD_DYNAMODB_ROLE_ARN_LD_BIG_SEGMENTS",
            "LD_DYNAMODB_ROLE_ARN_LD_BIG_SEGMENTS_EU_WEST_1"} <= set(result.variables)


async def test_an_unset_redis_password_stays_empty_and_apart_from_a_set_one(
    make_sandbox: SandboxFactory,
) -> None:
    async with await account(make_sandbox) as client:
        open_redis = ldbulk.RedisConfig(host="redis.internal", tls_enabled=True)
        await ldbulk.provision(
            client,
            [ldbulk.Target(project="proj-002", environment="env-003", config=open_redis)],
        )
        result = await ldbulk.export(client, projects=["proj-002"])
    stores = result.document["stores"]
    open_store = next(s for s in stores.values() if s["config"].get("password") == "")
    assert open_store["config"]["host"] == "redis.internal"
    # Only the stores with a secret need a variable.
    assert len(stores) == 3 and len(result.variables) == 2


async def test_export_of_some_projects_reads_only_their_integrations(
    make_sandbox: SandboxFactory,
) -> None:
    async with await account(make_sandbox) as client:
        result = await ldbulk.export(client, projects=["proj-002", "no-such-project"])
        requests = client.stats.requests
    assert [target["project"] for target in result.document["targets"]] == ["proj-002"] * 2
    # The list, then reads of proj-002's three integrations only, and its environments.
    assert requests == 1 + 3 + 1


def world_with_integrations() -> Mapping[str, Any]:
    environments = [{"key": key} for key in ("production", "staging", "qa")]
    return {
        "projects": [
            {"key": "web", "environments": environments},
            {"key": "mobile", "environments": environments},
        ],
        "integrations": [
            {
                "projectKey": project,
                "environmentKey": environment,
                "integrationKey": key,
                "config": REDIS.to_api() if key == "redis" else DYNAMODB.to_api(),
                "on": True,
            }
            for project, environment, key in [
                ("web", "production", "redis"),
                ("web", "staging", "redis"),
                ("mobile", "production", "dynamodb"),
                ("mobile", "qa", "dynamodb"),
            ]
        ],
    }


def test_the_export_command_writes_a_manifest_that_plans_clean_and_leaks_no_secret(
    tmp_path: Path,
) -> None:
    world = tmp_path / "world.json"
    world.write_text(json.dumps(world_with_integrations()), encoding="utf-8")
    output = tmp_path / "out" / "stores.yaml"
    with start_sandbox("--world", str(world)) as sandbox:
        exported = run_ldbulk("export", "-o", str(output), sandbox=sandbox, secrets=False)
        assert exported.returncode == 0, exported.stderr
        document = yaml.safe_load(output.read_text(encoding="utf-8"))
        variables = re.findall(r"LD_[A-Z0-9_]+", exported.stderr)
        assert sorted(set(variables)) == [
            "LD_DYNAMODB_EXTERNAL_ID_LD_BIG_SEGMENTS",
            "LD_REDIS_PASSWORD_REDIS",
        ]
        env = {name: EXTERNAL_ID if "DYNAMODB" in name else REDIS_PASSWORD for name in variables}
        planned = run_ldbulk("plan", str(output), sandbox=sandbox, env=env, secrets=False)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith("Plan: 0 to create, 0 to update, 0 to delete;"), (
        planned.stdout
    )
    assert "to update" in planned.stdout and "unchanged" in planned.stdout
    assert len(document["stores"]) == 2 and exported.stdout == ""
    everything = exported.stdout + exported.stderr + output.read_text(encoding="utf-8")
    assert REDIS_PASSWORD not in everything and EXTERNAL_ID not in everything


def test_a_project_option_that_is_no_project_key_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        main, ["export", "--project", "../admin"], env={"LD_ACCESS_TOKEN": "api-x"}
    )
    assert result.exit_code == 2
    assert "not a project key" in result.output


def test_an_output_that_is_a_symlink_is_refused_before_any_request(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("the victim's own text\n")
    link = tmp_path / "stores.yaml"
    link.symlink_to(victim)
    result = CliRunner().invoke(
        main, ["export", "-o", str(link), "--base-uri", "http://127.0.0.1:9"],
        env={"LD_ACCESS_TOKEN": "api-x"},
    )
    assert result.exit_code == 2, result.output
    assert "--output: cannot write" in result.output and "symbolic link" in result.output
    assert victim.read_text() == "the victim's own text\n" and link.is_symlink()


async def test_odd_hosts_and_names_still_export_to_a_manifest_that_loads(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=2)
    # A variable named after this host would end in _TOKEN, which the loader refuses; a name
    # with braces must not read as placeholders.
    redis = ldbulk.RedisConfig(host="CI_TOKEN", password=REDIS_PASSWORD)
    odd = [
        ldbulk.Target(
            project="proj-001", environment=env, config=redis, name=f"{{legacy}} store of {env}"
        )
        for env in ("env-001", "env-002")
    ]
    async with ldbulk.Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.provision(client, odd)
        result = await ldbulk.export(client)
    assert list(result.variables) == ["LD_REDIS_PASSWORD_CI_TOKEN_VALUE"]
    loaded = ldbulk.loads_manifest(result.to_yaml(), env=variable_values(result))
    (store,) = loaded.stores
    assert store.name == "ci_token"
    assert [store.render_name("proj-001", env) for env in ("env-001", "env-002")] == [
        target.name for target in odd
    ]


def listed(env: str, key: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "_id": f"id-{env}",
        "integrationKey": key,
        "projectKey": "web",
        "environmentKey": env,
    }
    if config is not None:
        item["config"] = dict(config)
    return item


async def test_what_a_manifest_cannot_describe_is_skipped_and_what_vanished_is_left_out() -> None:
    transport = ldbulk.testing.MemoryTransport()
    base = "/api/v2/integration-capabilities/big-segment-store"
    items = [
        listed("a", "kafka"),
        listed("b", "redis"),
        listed("c", "redis"),
        listed("d", "dynamodb"),
    ]
    transport.add("GET", base, json={"items": items})
    transport.add("GET", f"{base}/web/b/redis/id-b", 404, json={"code": "not_found"})
    bad_port = {"host": "redis.internal", "port": "99999", "password": "********"}
    transport.add("GET", f"{base}/web/c/redis/id-c", json=listed("c", "redis", bad_port))
    transport.add(
        "GET", f"{base}/web/d/dynamodb/id-d", json=listed("d", "dynamodb", DYNAMODB.to_api())
    )
    environments = [{"_id": key, "key": key, "name": key} for key in "abcde"]
    transport.add(
        "GET", "/api/v2/projects/web/environments?limit=100&offset=0", json={"items": environments}
    )
    async with ldbulk.Client(
        "api-test", base_url="http://127.0.0.1:1", transport=transport
    ) as client:
        result = await ldbulk.export(client)
    assert [(s.environment, s.integration) for s in result.skipped] == [
        ("a", "kafka"),
        ("c", "redis"),
    ]
    assert "port" in result.skipped[1].reason
    # The integration deleted between the list and its read is simply no longer there.
    assert result.document["targets"] == [
        {"project": "web", "environments": ["d"], "store": "ld-big-segments"}
    ]
    # The unknown integration is never read by id; the project's environments are listed.
    assert len(transport.requests) == 1 + 3 + 1
    assert EXTERNAL_ID not in repr(result) + result.to_yaml()
