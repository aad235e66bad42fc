"""Every sandbox response matches the published OpenAPI schemas (``tests/spec/``).

The ``make_sandbox`` fixture already validates whatever each integration test saw; this file
makes sure the validator has teeth and that one run touches every route and status it serves.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from conftest import SpecValidator

from ldbulk import Client, Conflict, NotFound, RedisConfig, RetryPolicy, ServerError
from ldbulk.sandbox import RecordedResponse

BSS = "/api/v2/integration-capabilities/big-segment-store"
ONE = f"{BSS}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}"


def test_validator_rejects_an_integration_without_status(spec_validator: SpecValidator) -> None:
    body = b'{"_id": "x", "integrationKey": "redis", "projectKey": "p", "environmentKey": "e"}'
    response = RecordedResponse(method="GET", route=f"GET {ONE}/{{id}}", status=200, body=body)
    problems = spec_validator.problems(response)
    assert any("_status" in problem for problem in problems)
    assert any("config" in problem for problem in problems)


def test_validator_rejects_a_port_that_is_not_a_string_typed_link(
    spec_validator: SpecValidator,
) -> None:
    body = b'{"_links": {"self": {"href": 5}}, "items": []}'
    response = RecordedResponse(method="GET", route="GET /api/v2/projects", status=200, body=body)
    assert spec_validator.problems(response)


def test_validator_rejects_an_undocumented_status(spec_validator: SpecValidator) -> None:
    body = b'{"code": "x", "message": "y", "id": "z"}'
    response = RecordedResponse(method="GET", route=f"GET {BSS}", status=409, body=body)
    assert spec_validator.problems(response) == [
        f"GET {BSS} -> 409: status not documented by the spec"
    ]


def test_validator_wants_no_body_on_204(spec_validator: SpecValidator) -> None:
    response = RecordedResponse(
        method="DELETE", route=f"DELETE {ONE}/{{id}}", status=204, body=b"{}"
    )
    assert spec_validator.problems(response)


async def test_one_run_over_every_route_matches_the_spec(
    make_sandbox: Any, spec_validator: SpecValidator
) -> None:
    sandbox = await make_sandbox(projects=3, environments=4, route_limit=1000)
    async with Client(
        sandbox.token, base_url=sandbox.url, retry=RetryPolicy(max_attempts=1)
    ) as client:
        created = await client.create_integration(
            "proj-001", "env-001", RedisConfig(host="h", password="p"), tags=["t"], name="n"
        )
        with pytest.raises(Conflict):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="h"))
        await client.list_integrations()
        await client.get_integration("proj-001", "env-001", "redis", created.id)
        await client.update_integration(
            "proj-001", "env-001", "redis", created.id,
            [{"op": "replace", "path": "/on", "value": True}],
        )
        with pytest.raises(Conflict):
            await client.update_integration(
                "proj-001", "env-001", "redis", created.id,
                [{"op": "test", "path": "/version", "value": 1}],
            )
        [project async for project in client.projects()]
        [env async for env in client.environments("proj-002")]
        await client.delete_integration("proj-001", "env-001", "redis", created.id)
        with pytest.raises(NotFound):
            await client.get_integration("proj-001", "env-001", "redis", created.id)
    routes = {(response.route, response.status) for response in sandbox.responses}
    assert {status for _, status in routes} >= {200, 201, 204, 404, 409}
    assert len({route for route, _ in routes}) == 7
    spec_validator.check_all(sandbox.responses)


async def test_faults_and_throttles_match_the_spec(
    make_sandbox: Any, spec_validator: SpecValidator
) -> None:
    sandbox = await make_sandbox(fault_rate=1.0, seed=2, global_limit=2, window_s=3600.0)
    policy = RetryPolicy(max_attempts=1, throttle_deadline_s=0)
    async with Client(sandbox.token, base_url=sandbox.url, retry=policy) as client:
        for _ in range(2):
            with pytest.raises(ServerError):
                await client.list_integrations()
    # The client's pacer would hold a third request back until the window ends: send it raw.
    headers = {"Authorization": sandbox.token, "LD-API-Version": "beta"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(sandbox.url + BSS, headers=headers) as r,
    ):
        assert r.status == 429
    statuses = [response.status for response in sandbox.responses]
    assert statuses[-1] == 429 and all(status >= 500 for status in statuses[:-1])
    spec_validator.check_all(sandbox.responses)
