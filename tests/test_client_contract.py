"""Every request ldbulk's client sends validates against the published spec's request schemas.

A validating transport sits in the client's real transport path: each request the client
builds (method, path, query, headers, body) is checked with openapi-core against the vendored
OpenAPI subsets in ``tests/spec/``, then carried to a live sandbox. Between them the tests call
every operation the client has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest
from openapi_core.validation.request.exceptions import (
    InvalidRequestBody,
    ParameterValidationError,
    SecurityValidationError,
)

from ldbulk import Client, Conflict, DynamoDBConfig, RedisConfig, RetryPolicy
from ldbulk.api import sansio
from ldbulk.http.transport import AiohttpTransport, Transport
from ldbulk.sandbox import Sandbox

SPEC_DIR = Path(__file__).parent / "spec"
BSS_OPERATIONS = {
    "getBigSegmentStoreIntegrations",
    "createBigSegmentStoreIntegration",
    "getBigSegmentStoreIntegration",
    "patchBigSegmentStoreIntegration",
    "deleteBigSegmentStoreIntegration",
}
ALL_OPERATIONS = BSS_OPERATIONS | {"getProjects", "getEnvironmentsByProject"}


class _Operation:
    """One operation of a spec, and a pattern matching the paths it serves."""

    def __init__(self, spec: OpenAPI, method: str, template: str, operation_id: str) -> None:
        self.spec = spec
        self.method = method
        self.operation_id = operation_id
        self.server = spec.spec["servers"][0]["url"]
        self.pattern = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")


def _operations() -> list[_Operation]:
    operations = []
    for name in ("big-segment-store-openapi.json", "projects-environments-openapi.json"):
        data = json.loads((SPEC_DIR / name).read_text())
        spec = OpenAPI.from_dict(data)
        for template, item in data["paths"].items():
            for method, operation in item.items():
                if method != "parameters":
                    operations.append(_Operation(spec, method, template, operation["operationId"]))
    return operations


class ValidatingTransport:
    """A :class:`Transport` that validates each request against the spec, then forwards it.

    The spec's server (``https://app.launchdarkly.com``) stands in for the sandbox's loopback
    address: what is checked is what the client chose, not where the test sends it.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.operations = _operations()
        self.validated: list[str] = []

    def _operation(self, method: str, path: str) -> _Operation:
        for operation in self.operations:
            if operation.method == method.lower() and operation.pattern.match(path):
                return operation
        raise AssertionError(f"{method} {path}: no such operation in the spec")

    def validate(self, method: str, url: str, params: Mapping[str, str] | None,
                 headers: Mapping[str, str], body: bytes | None) -> str:
        """Validate one request; its operationId."""
        parts = urlsplit(url)
        assert not parts.query or params is None, "query both in the URL and as params"
        query = dict(params or {})
        query.update(parse_qsl(parts.query))
        operation = self._operation(method, parts.path)
        request = MockRequest(
            operation.server,
            method.lower(),
            parts.path,
            args=query,
            headers=dict(headers),
            data=body,
            content_type=headers.get("Content-Type", "application/json"),
        )
        operation.spec.validate_request(request)
        # Not in the subsets' parameters, but every beta route needs it (or LaunchDarkly says 403).
        if operation.operation_id in BSS_OPERATIONS:
            assert headers.get("LD-API-Version") == "beta", f"{method} {parts.path}: no beta header"
        return operation.operation_id

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        sink: sansio.BodySink | None = None,
    ) -> sansio.RawResponse:
        """Validate, then carry the request on."""
        self.validated.append(self.validate(method, url, params, headers, body))
        return await self.inner.send(
            method, url, params=params, headers=headers, body=body, sink=sink
        )

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()


def validating_client(sandbox: Sandbox) -> tuple[Client, ValidatingTransport]:
    transport = ValidatingTransport(AiohttpTransport())
    client = Client(
        sandbox.token,
        base_url=sandbox.url,
        retry=RetryPolicy(max_attempts=1),
        transport=transport,
    )
    return client, transport


def test_the_validator_refuses_a_request_outside_the_spec() -> None:
    validate = ValidatingTransport(AiohttpTransport()).validate
    one = f"https://example.test{sansio.BIG_SEGMENT_STORE}/p/e/redis"
    headers = {"Authorization": "api-x", "LD-API-Version": "beta"}
    # A create needs `config`; its fields have their types; a JSON Patch is an array.
    with pytest.raises(InvalidRequestBody):
        validate("POST", one, None, headers, b'{"on": true}')
    with pytest.raises(InvalidRequestBody):
        validate("POST", one, None, headers, b'{"config": {}, "on": "yes"}')
    with pytest.raises(InvalidRequestBody):
        validate("PATCH", one + "/abc", None, headers, b'{"op": "replace"}')
    # The query's types, and the token.
    projects = "https://example.test/api/v2/projects"
    with pytest.raises(ParameterValidationError):
        validate("GET", projects, {"limit": "many"}, headers, None)
    with pytest.raises(SecurityValidationError):
        validate("GET", projects, {"limit": "5"}, {}, None)
    # The beta header, which the subsets do not list as a parameter.
    with pytest.raises(AssertionError, match="beta"):
        validate("GET", one + "/abc", None, {"Authorization": "api-x"}, None)


async def test_every_client_operation_sends_requests_the_spec_accepts(make_sandbox: Any) -> None:
    # More projects and environments than a page, so the client follows `_links.next`.
    sandbox = await make_sandbox(projects=3, environments=120)
    client, transport = validating_client(sandbox)
    async with client:
        redis = await client.create_integration(
            "proj-001",
            "env-001",
            RedisConfig(host="redis.internal", port=6380, password="secret", tls_enabled=True),
            on=True,
            tags=["a", "b"],
            name="primary",
        )
        dynamo = await client.create_integration(
            "proj-001",
            "env-002",
            DynamoDBConfig(
                table_name="segments",
                region="eu-west-1",
                role_arn="arn:aws:iam::123456789012:role/ld",
                external_id="ext-1",
            ),
        )
        with pytest.raises(Conflict):
            await client.create_integration("proj-001", "env-001", RedisConfig(host="again"))
        assert len(await client.list_integrations()) == 2
        await client.get_integration("proj-001", "env-001", "redis", redis.id)
        await client.update_integration(
            "proj-001", "env-001", "redis", redis.id,
            [
                {"op": "test", "path": "/version", "value": 1},
                {"op": "replace", "path": "/config/host", "value": "redis2.internal"},
            ],
        )
        await client.delete_integration("proj-001", "env-002", "dynamodb", dynamo.id)
        projects = [project.key async for project in client.projects()]
        environments = [env.key async for env in client.environments("proj-002")]
    assert len(projects) == 3 and len(environments) == 120
    assert set(transport.validated) == ALL_OPERATIONS
    # The environments came in more than one page, each request validated.
    assert transport.validated.count("getEnvironmentsByProject") > 1
