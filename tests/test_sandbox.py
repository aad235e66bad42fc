"""The sandbox behaves like LaunchDarkly's API: the real client against it on a loopback port."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from ldbulk import (
    BadRequest,
    Client,
    ConfigError,
    Conflict,
    DynamoDBConfig,
    NotFound,
    RedisConfig,
    RetryPolicy,
    ServerError,
    TransportError,
    Unauthorized,
)
from ldbulk.api.fields import looks_masked
from ldbulk.sandbox import Sandbox, SandboxOptions
from ldbulk.sandbox.masking import mask

BSS = "/api/v2/integration-capabilities/big-segment-store"
ONE_RETRY = RetryPolicy(max_attempts=1)
DYNAMO = DynamoDBConfig(
    table_name="segments",
    region="eu-west-1",
    role_arn="arn:aws:iam::123456789012:role/ld-segments",
    external_id="ext-123",
)


def client_for(sandbox: Sandbox, **kwargs: Any) -> Client:
    kwargs.setdefault("retry", ONE_RETRY)
    return Client(sandbox.token, base_url=sandbox.url, **kwargs)


async def raw(
    sandbox: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    *,
    beta: bool = True,
    token: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request with plain aiohttp, for what the client would refuse to send."""
    headers = {"Authorization": sandbox.token if token is None else token}
    if beta:
        headers["LD-API-Version"] = "beta"
    data = None if body is None else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, sandbox.url + path, data=data, headers=headers) as response,
    ):
        content = await response.read()
        return (
            response.status,
            dict(response.headers),
            json.loads(content) if content else None,
        )


# -- authentication and the beta header ---------------------------------------------------


async def test_wrong_token_is_401_and_nothing_is_created(sandbox: Sandbox) -> None:
    async with Client("api-not-the-token", base_url=sandbox.url, retry=ONE_RETRY) as client:
        with pytest.raises(Unauthorized) as caught:
            await client.create_integration("proj-001", "env-001", RedisConfig(host="r"))
    assert caught.value.code == "unauthorized"
    assert sandbox.integrations == {}


async def test_bearer_prefix_is_not_the_raw_token(sandbox: Sandbox) -> None:
    status, _, body = await raw(sandbox, "GET", "/api/v2/projects", token=f"Bearer {sandbox.token}")
    assert status == 401
    assert set(body) == {"code", "message", "id"}


async def test_beta_routes_need_the_beta_header(sandbox: Sandbox) -> None:
    status, _, body = await raw(sandbox, "GET", BSS, beta=False)
    assert (status, body["code"]) == (403, "forbidden")
    assert "LD-API-Version" in body["message"]


async def test_projects_and_environments_need_no_beta_header(sandbox: Sandbox) -> None:
    assert (await raw(sandbox, "GET", "/api/v2/projects", beta=False))[0] == 200
    path = "/api/v2/projects/proj-001/environments"
    assert (await raw(sandbox, "GET", path, beta=False))[0] == 200


async def test_client_sends_the_beta_header(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        assert await client.list_integrations() == []


# -- not found ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "environment", "integration_key", "unknown"),
    [
        ("nope", "env-001", "redis", "project"),
        ("proj-001", "nope", "redis", "environment"),
        ("proj-001", "env-001", "postgres", "integration key"),
    ],
)
async def test_unknown_keys_are_404(
    sandbox: Sandbox, project: str, environment: str, integration_key: str, unknown: str
) -> None:
    status, _, body = await raw(
        sandbox, "POST", f"{BSS}/{project}/{environment}/{integration_key}", {"config": {}}
    )
    assert (status, body["code"]) == (404, "not_found")
    assert unknown in body["message"].lower()


async def test_unknown_integration_id_is_404(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="r"))
        with pytest.raises(NotFound):
            await client.get_integration("proj-001", "env-001", "redis", "0" * 24)
        # The id exists, but under another environment: still not found.
        with pytest.raises(NotFound):
            await client.get_integration("proj-001", "env-002", "redis", created.id)


async def test_environments_of_unknown_project_is_404(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        with pytest.raises(NotFound):
            [env async for env in client.environments("nope")]


async def test_unknown_route_is_a_json_404(sandbox: Sandbox) -> None:
    status, _, body = await raw(sandbox, "GET", "/api/v2/flags")
    assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", BSS, "GET"),
        ("DELETE", f"{BSS}/proj-001/env-001/redis", "POST"),
        ("POST", f"{BSS}/proj-001/env-001/redis/{'0' * 24}", "DELETE, GET, PATCH"),
        ("POST", "/api/v2/projects", "GET"),
    ],
)
async def test_a_wrong_method_on_a_known_path_is_405_naming_the_allowed_ones(
    sandbox: Sandbox, method: str, path: str, allow: str
) -> None:
    status, headers, body = await raw(sandbox, method, path, {})
    assert (status, headers["Allow"], body["code"]) == (405, allow, "method_not_allowed")
    assert set(body) == {"code", "message", "id"}


# -- validation of formVariables -------------------------------------------------------------


@pytest.mark.parametrize(
    ("integration_key", "config", "field"),
    [
        ("redis", {"port": "6379"}, "host"),
        ("redis", {"host": "r", "port": "not-a-port"}, "port"),
        ("redis", {"host": "r", "port": "70000"}, "port"),
        ("redis", {"host": "r", "tlsEnabled": "yes"}, "tlsEnabled"),
        ("redis", {"host": "r", "password": 5}, "password"),
        ("redis", {"host": "r", "database": "0"}, "database"),
        # ldbulk's own bookkeeping of a config is no formVariable either.
        ("redis", {"host": "r", "references": {"host": "${H}"}}, "references"),
        ("dynamodb", {**DYNAMO.to_api(), "region": "mars-1"}, "region"),
        ("dynamodb", {**DYNAMO.to_api(), "roleArn": "not-an-arn"}, "roleArn"),
        ("dynamodb", {k: v for k, v in DYNAMO.to_api().items() if k != "tableName"}, "tableName"),
        ("dynamodb", {k: v for k, v in DYNAMO.to_api().items() if k != "externalId"}, "externalId"),
    ],
)
async def test_invalid_config_is_400_naming_the_field(
    sandbox: Sandbox, integration_key: str, config: dict[str, Any], field: str
) -> None:
    path = f"{BSS}/proj-001/env-001/{integration_key}"
    status, _, body = await raw(sandbox, "POST", path, {"config": config})
    assert (status, body["code"]) == (400, "invalid_request")
    assert f"config.{field}" in body["message"]
    assert sandbox.integrations == {}


async def test_invalid_request_fields_are_400(sandbox: Sandbox) -> None:
    path = f"{BSS}/proj-001/env-001/redis"
    for body, field in (({}, "config"), ({"config": {"host": "r"}, "on": "yes"}, "on")):
        status, _, answer = await raw(sandbox, "POST", path, body)
        assert status == 400
        assert answer["message"].startswith(field)


async def test_client_reports_a_400_as_bad_request(sandbox: Sandbox) -> None:
    # DynamoDBConfig checks the region before sending; bypass it to see the server's answer.
    config = object.__new__(DynamoDBConfig)
    object.__setattr__(config, "table_name", "t")
    object.__setattr__(config, "region", "mars-1")
    object.__setattr__(config, "role_arn", DYNAMO.role_arn)
    object.__setattr__(config, "external_id", "x")
    object.__setattr__(config, "unset", frozenset())
    async with client_for(sandbox) as client:
        with pytest.raises(BadRequest) as caught:
            await client.create_integration("proj-001", "env-001", config)
    assert "region" in caught.value.message


# -- create, conflict, redaction ------------------------------------------------------------


async def test_second_create_for_the_same_environment_and_key_is_409(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        first = await client.create_integration("proj-001", "env-001", RedisConfig(host="a"))
        with pytest.raises(Conflict):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="b"))
        # Another integration key, or another environment, is a different slot.
        await client.create_integration("proj-001", "env-001", DYNAMO)
        await client.create_integration("proj-001", "env-002", RedisConfig(host="b"))
    stored = sandbox.integration("proj-001", "env-001", "redis")
    assert stored is not None and stored.id == first.id
    assert stored.config is not None and stored.config["host"] == "a"
    assert len(sandbox.integrations) == 3


async def test_secrets_are_redacted_on_every_read_but_stored(sandbox: Sandbox) -> None:
    config = RedisConfig(host="r", password="hunter2-secret", username="u", tls_enabled=True)
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", config, on=True)
        fetched = await client.get_integration("proj-001", "env-001", "redis", created.id)
        patched = await client.update_integration(
            "proj-001", "env-001", "redis", created.id,
            [{"op": "replace", "path": "/on", "value": False}],
        )
    for seen in (created, fetched, patched):
        assert seen.config is not None
        assert seen.config["password"] != "hunter2-secret"
        assert seen.config["username"] == "u" and seen.config["tlsEnabled"] is True
    assert all(b"hunter2-secret" not in response.body for response in sandbox.responses)
    stored = sandbox.integration("proj-001", "env-001", "redis")
    assert stored is not None and stored.config is not None
    assert stored.config["password"] == "hunter2-secret"


async def test_the_password_is_masked_in_launchdarklys_style_by_default(sandbox: Sandbox) -> None:
    config = RedisConfig(host="r", password="hunter2-secret")
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", config)
        short = await client.create_integration(
            "proj-001", "env-002", RedisConfig(host="r", password="pw")
        )
    assert created.config is not None and created.config["password"] == "hun********ret"
    # Too short to show any of it: only stars.
    assert short.config is not None and short.config["password"] == "********"


async def test_a_sandbox_masks_the_fields_it_is_told_and_keeps_them_through_a_whole_patch(
    make_sandbox: Any,
) -> None:
    sandbox = await make_sandbox(masked_fields={"password", "externalId", "roleArn"})
    config = DynamoDBConfig(
        table_name="segments", region="eu-west-1",
        role_arn="arn:aws:iam::123456789012:role/ld-segments", external_id="ext-7f3e9a1234",
    )
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", config)
        assert created.config is not None
        assert created.config["externalId"] == "ext********234"
        assert created.config["roleArn"] == "arn********nts"
        assert created.config["tableName"] == "segments"  # not told: in clear
        # The config read back, masks and all, written whole: the values behind them stay.
        patched = await client.update_integration(
            "proj-001", "env-001", "dynamodb", created.id,
            [{"op": "replace", "path": "/config",
              "value": {**created.config, "tableName": "segments-2"}}],
        )
    assert patched.config is not None and patched.config["tableName"] == "segments-2"
    stored = sandbox.integration("proj-001", "env-001", "dynamodb")
    assert stored is not None and stored.config is not None
    assert (stored.config["externalId"], stored.config["roleArn"]) == (
        config.external_id, config.role_arn,
    )
    assert all(b"ext-7f3e9a1234" not in response.body for response in sandbox.responses)


@pytest.mark.parametrize("value", ["p", "pw-1", "x" * 11, "x" * 12, "ext-7f3e9a1234", "a" * 200])
def test_every_mask_the_sandbox_shows_is_one_ldbulk_reads_as_masked(value: str) -> None:
    assert looks_masked(mask(value))
    assert value not in mask(value)


def test_a_masked_field_that_is_no_config_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"masked_fields: not a config key.*externalID"):
        SandboxOptions(masked_fields=frozenset({"externalID"}))


async def test_port_is_stored_and_returned_as_a_string(sandbox: Sandbox) -> None:
    status, _, body = await raw(
        sandbox, "POST", f"{BSS}/proj-001/env-001/redis", {"config": {"host": "r", "port": 6380}}
    )
    assert status == 201
    assert body["config"]["port"] == "6380"
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-002", RedisConfig(host="r"))
    assert created.config is not None and created.config["port"] == "6379"
    stored = sandbox.integration("proj-001", "env-001", "redis")
    assert stored is not None and stored.config is not None and stored.config["port"] == "6380"


async def test_create_answers_201_with_the_spec_fields(sandbox: Sandbox) -> None:
    body = {"config": {"host": "r"}, "on": True, "tags": ["t"], "name": "n"}
    status, _, answer = await raw(sandbox, "POST", f"{BSS}/proj-001/env-001/redis", body)
    assert status == 201
    assert answer["version"] == 1
    assert (answer["on"], answer["tags"], answer["name"]) == (True, ["t"], "n")
    assert answer["_links"]["self"]["href"].endswith(answer["_id"])


async def test_list_all_has_no_config(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        await client.create_integration("proj-001", "env-001", RedisConfig(host="r"))
        await client.create_integration("proj-002", "env-003", DYNAMO)
        listed = await client.list_integrations()
    assert {(i.project_key, i.environment_key, i.integration_key) for i in listed} == {
        ("proj-001", "env-001", "redis"),
        ("proj-002", "env-003", "dynamodb"),
    }
    assert all(item.config is None for item in listed)
    _, _, body = await raw(sandbox, "GET", BSS)
    assert all("config" not in item for item in body["items"])


# -- patch and delete ---------------------------------------------------------------------


async def test_patch_with_a_test_op_applies_and_bumps_the_version(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="old"))
        patched = await client.update_integration(
            "proj-001", "env-001", "redis", created.id,
            [
                {"op": "test", "path": "/version", "value": 1},
                {"op": "replace", "path": "/config/host", "value": "new"},
                {"op": "add", "path": "/tags/-", "value": "patched"},
            ],
        )
    assert patched.version == 2
    assert patched.config is not None and patched.config["host"] == "new"
    assert patched.tags == ("patched",)


async def test_patch_whose_test_fails_is_409_and_not_applied(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="old"))
        with pytest.raises(Conflict):
            await client.update_integration(
                "proj-001", "env-001", "redis", created.id,
                [
                    {"op": "replace", "path": "/config/host", "value": "new"},
                    {"op": "test", "path": "/version", "value": 7},
                ],
            )
        after = await client.get_integration("proj-001", "env-001", "redis", created.id)
    assert after.version == 1
    assert after.config is not None and after.config["host"] == "old"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ([{"op": "replace", "path": "/config/port", "value": "abc"}], "config.port"),
        ([{"op": "remove", "path": "/config/host"}], "config.host"),
        ([{"op": "replace", "path": "/version", "value": 9}], "version"),
        ([{"op": "replace", "path": "/_id", "value": "x"}], "_id"),
        ([{"op": "replace", "path": "/on", "value": "yes"}], "on"),
        ([{"op": "jump", "path": "/on"}], "jump"),
        ([{"op": "replace", "path": "/nothing/here", "value": 1}], "/nothing/here"),
    ],
)
async def test_invalid_patch_is_400_and_not_applied(
    sandbox: Sandbox, patch: list[dict[str, Any]], field: str
) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
        with pytest.raises(BadRequest) as caught:
            await client.update_integration("proj-001", "env-001", "redis", created.id, patch)
    assert field in caught.value.message
    stored = sandbox.integration("proj-001", "env-001", "redis")
    assert stored is not None and stored.version == 1


async def test_patching_a_read_back_config_keeps_the_secret(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration(
            "proj-001", "env-001", RedisConfig(host="h", password="pw-1")
        )
        assert created.config is not None
        config = {**created.config, "host": "h2"}
        await client.update_integration(
            "proj-001", "env-001", "redis", created.id,
            [{"op": "replace", "path": "/config", "value": config}],
        )
    stored = sandbox.integration("proj-001", "env-001", "redis")
    assert stored is not None and stored.config is not None
    assert (stored.config["host"], stored.config["password"]) == ("h2", "pw-1")


async def test_patch_accepts_a_comment_envelope(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
    body = {"comment": "why", "patch": [{"op": "replace", "path": "/name", "value": "n"}]}
    status, _, answer = await raw(
        sandbox, "PATCH", f"{BSS}/proj-001/env-001/redis/{created.id}", body
    )
    assert (status, answer["name"], answer["version"]) == (200, "n", 2)


async def test_delete_is_204_and_removes_it(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        created = await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
        await client.delete_integration("proj-001", "env-001", "redis", created.id)
        with pytest.raises(NotFound):
            await client.get_integration("proj-001", "env-001", "redis", created.id)
        with pytest.raises(NotFound):
            await client.delete_integration("proj-001", "env-001", "redis", created.id)
        assert await client.list_integrations() == []
        # The slot is free again.
        await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
    assert (
        sandbox.stats.count(
            f"DELETE {BSS}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}/{{id}}", 204
        )
        == 1
    )


# -- projects and environments ------------------------------------------------------------


async def test_projects_paginate_with_next_links_and_total_count(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(projects=25, environments=1)
    hrefs, keys = [], []
    path: str | None = "/api/v2/projects?limit=10&offset=0"
    while path is not None:
        status, _, body = await raw(sandbox, "GET", path, beta=False)
        assert status == 200 and body["totalCount"] == 25
        keys += [item["key"] for item in body["items"]]
        next_link = body["_links"].get("next")
        path = next_link["href"] if next_link else None
        hrefs.append(path)
    assert keys == [f"proj-{i:03d}" for i in range(1, 26)]
    assert hrefs == [
        "/api/v2/projects?limit=10&offset=10",
        "/api/v2/projects?limit=10&offset=20",
        None,
    ]


async def test_bad_page_parameters_are_400(sandbox: Sandbox) -> None:
    too_far = f"offset={2**63}"
    for query in ("limit=0", "limit=x", "offset=-1", "limit=1001", "limit=1_0", too_far):
        status, _, _ = await raw(sandbox, "GET", f"/api/v2/projects?{query}", beta=False)
        assert status == 400


async def test_client_follows_environment_pages(make_sandbox: Any) -> None:
    # More environments than the client's page size, so it must follow _links.next.
    sandbox = await make_sandbox(projects=1, environments=150)
    async with client_for(sandbox) as client:
        environments = [env async for env in client.environments("proj-001")]
        projects = [project.key async for project in client.projects()]
    assert projects == ["proj-001"]
    assert [env.key for env in environments] == [f"env-{j:03d}" for j in range(1, 151)]
    assert {env.tags for env in environments} == {("dev",), ("prod",)}
    assert environments[0].tags == ("dev",) and environments[1].tags == ("prod",)
    assert sandbox.stats.count("GET /api/v2/projects/{projectKey}/environments", 200) == 2


async def test_environment_items_carry_sdk_keys_the_client_drops(sandbox: Sandbox) -> None:
    _, _, body = await raw(sandbox, "GET", "/api/v2/projects/proj-001/environments", beta=False)
    item = body["items"][0]
    assert item["apiKey"].startswith("sdk-") and item["mobileKey"].startswith("mob-")
    async with client_for(sandbox) as client:
        environments = [env async for env in client.environments("proj-001")]
    assert item["apiKey"] not in repr(environments)
    assert item["mobileKey"] not in repr(environments)


# -- faults ---------------------------------------------------------------------------------


async def statuses(sandbox: Sandbox, count: int) -> list[int]:
    return [(await raw(sandbox, "GET", BSS))[0] for _ in range(count)]


async def test_faults_are_reproducible_with_a_seed(make_sandbox: Any) -> None:
    first = await make_sandbox(fault_rate=0.4, seed=7)
    second = await make_sandbox(fault_rate=0.4, seed=7)
    other = await make_sandbox(fault_rate=0.4, seed=8)
    seen = await statuses(first, 30)
    assert seen == await statuses(second, 30)
    assert seen != await statuses(other, 30)
    assert 200 in seen and any(status >= 500 for status in seen)
    assert first.stats.faults == sum(status >= 500 for status in seen)


async def test_a_faulted_create_is_not_applied(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(fault_rate=1.0, seed=1)
    async with client_for(sandbox) as client:
        with pytest.raises(ServerError):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
    assert sandbox.integrations == {}


async def test_commit_then_drop_stores_the_integration_and_cuts_the_connection(
    make_sandbox: Any,
) -> None:
    sandbox = await make_sandbox(drop_after_commit=1.0, seed=3)
    async with client_for(sandbox) as client:
        with pytest.raises(TransportError):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
        # The create was applied even though no answer came back.
        listed = await client.list_integrations()
        with pytest.raises(Conflict):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
    assert [(i.project_key, i.environment_key) for i in listed] == [("proj-001", "env-001")]
    assert sandbox.integration("proj-001", "env-001", "redis") is not None
    assert sandbox.stats.dropped == 1


async def test_drops_are_reproducible_with_a_seed(make_sandbox: Any) -> None:
    async def run(seed: int) -> list[bool]:
        sandbox = await make_sandbox(drop_after_commit=0.5, seed=seed, projects=1, environments=20)
        dropped = []
        async with client_for(sandbox) as client:
            for j in range(1, 21):
                try:
                    await client.create_integration(
                        "proj-001", f"env-{j:03d}", RedisConfig(host="h")
                    )
                    dropped.append(False)
                except TransportError:
                    dropped.append(True)
        assert len(sandbox.integrations) == 20
        return dropped

    seen = await run(11)
    assert seen == await run(11)
    assert True in seen and False in seen


async def test_latency_still_answers(make_sandbox: Any) -> None:
    sandbox = await make_sandbox(latency_ms=20)
    async with client_for(sandbox) as client:
        assert await client.list_integrations() == []


# -- introspection ------------------------------------------------------------------------


async def test_stats_count_requests_by_route_and_status(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
        with pytest.raises(Conflict):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
        await client.list_integrations()
    await raw(sandbox, "GET", BSS, beta=False)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.url}/_sandbox/stats") as r,
    ):
        assert r.status == 200
        stats = await r.json()
    create = f"POST {BSS}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}"
    assert stats["requests"][create] == {"201": 1, "409": 1}
    assert stats["requests"][f"GET {BSS}"] == {"200": 1, "403": 1}
    assert (stats["total"], stats["integrations"], stats["throttled"]) == (4, 1, 0)
    assert stats == sandbox.stats.to_json()


async def test_reset_returns_to_the_loaded_world(make_sandbox: Any) -> None:
    world = {
        "projects": [{"key": "p", "environments": [{"key": "e1"}, {"key": "e2"}]}],
        "integrations": [
            {
                "projectKey": "p",
                "environmentKey": "e1",
                "integrationKey": "redis",
                "config": {"host": "h"},
            }
        ],
    }
    sandbox = await make_sandbox(world=world)
    async with client_for(sandbox) as client:
        existing = await client.list_integrations()
        await client.create_integration("p", "e2", RedisConfig(host="h"))
        await client.delete_integration("p", "e1", "redis", existing[0].id)
    assert set(sandbox.integrations) == {("p", "e2", "redis")}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.url}/_sandbox/reset") as r,
    ):
        assert r.status == 200
        body = await r.json()
    assert (body["total"], body["integrations"]) == (0, 1)
    assert set(sandbox.integrations) == {("p", "e1", "redis")}
    assert sandbox.stats.total == 0


async def test_seeded_integrations_exist_from_the_start_and_after_a_reset(
    make_sandbox: Any,
) -> None:
    sandbox = await make_sandbox(projects=2, environments=3, seed_integrations=4)
    seeded = {("proj-001", f"env-00{i}", "redis") for i in (1, 2, 3)} | {
        ("proj-002", "env-001", "redis")
    }
    assert set(sandbox.integrations) == seeded
    assert all(i.tags == ("managed-by-ldbulk",) for i in sandbox.integrations.values())
    async with client_for(sandbox) as client:
        (first, *_) = await client.list_integrations()
        await client.delete_integration(
            first.project_key, first.environment_key, first.integration_key, first.id
        )
        assert len(sandbox.integrations) == 3
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.url}/_sandbox/reset") as r,
    ):
        assert r.status == 200
    assert set(sandbox.integrations) == seeded


async def test_more_seeded_integrations_than_environments_is_refused() -> None:
    with pytest.raises(ConfigError, match="need as many environments"):
        Sandbox(SandboxOptions(projects=1, environments=2, seed_integrations=3))


async def test_sandbox_integrations_endpoint_redacts(sandbox: Sandbox) -> None:
    async with client_for(sandbox) as client:
        await client.create_integration(
            "proj-001", "env-001", RedisConfig(host="h", password="pw-9")
        )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.url}/_sandbox/integrations") as r,
    ):
        text = await r.text()
    assert "pw-9" not in text and json.loads(text)["integrations"][0]["config"]["host"] == "h"
