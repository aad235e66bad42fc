"""Shared fixtures: the LaunchDarkly API sandbox on a loopback port, and the spec it answers to;
the sandbox as a subprocess for the command-line tests.

Every sandbox a fixture starts records its responses; when the test ends, each of them is
validated against the vendored OpenAPI subsets in ``tests/spec/``, so any integration test that
uses the fixtures also checks the sandbox against the published schemas.
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import settings
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from ldbulk.api.models import DynamoDBConfig, RedisConfig, Target
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport
from ldbulk.sandbox import RecordedResponse, Sandbox, SandboxOptions
from ldbulk.sandbox.launch import launch_sandbox

# No per-example deadline: the suite runs on two workers of a shared 2-core machine, and a slow
# example there says nothing about the code (timings are never asserted in tests).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

# Store configs with secrets in them, for runs whose outputs must never show those secrets.
REDIS = RedisConfig(host="redis.internal", password="redis-secret-value", tls_enabled=True)
DYNAMO = DynamoDBConfig(table_name="ld-big-segments", region="eu-west-1",
                        role_arn="arn:aws:iam::123456789012:role/ld",
                        external_id="external-id-secret-value")

# One redis store, its password from LD_REDIS_PASSWORD, on three environments of proj-001.
REDIS_MANIFEST = """
version: 1
stores:
  cache:
    integration: redis
    config: {host: redis.internal, password: "${LD_REDIS_PASSWORD}"}
targets:
  - {project: proj-001, environments: [env-001, env-002, env-003], store: cache}
"""

# A DynamoDB store named "table" in a manifest's stores, its external id from
# LD_DYNAMODB_EXTERNAL_ID.
TABLE_STORE = """\
  table:
    integration: dynamodb
    config:
      tableName: segments
      region: us-east-1
      roleArn: arn:aws:iam::123456789012:role/ld
      externalId: ${LD_DYNAMODB_EXTERNAL_ID}
"""

# Two stores of team-a's (a redis and a DynamoDB one, its external id from
# LD_DYNAMODB_EXTERNAL_ID), for the targets a prune test appends.
TEAM_A_STORES = """\
version: 1
defaults: {ownershipTag: team-a}
stores:
  cache: {integration: redis, config: {host: redis.internal}}
  table:
    integration: dynamodb
    config: {tableName: t, region: eu-west-1, roleArn: "arn:aws:iam::123456789012:role/ld",
             externalId: "${LD_DYNAMODB_EXTERNAL_ID}"}
targets:
"""

# Every header of LaunchDarkly's rate limits that carries a count or a time, Retry-After aside.
RATE_LIMIT_HEADERS = [
    "X-Ratelimit-Global-Limit",
    "X-Ratelimit-Global-Remaining",
    "X-Ratelimit-Route-Limit",
    "X-Ratelimit-Route-Remaining",
    "X-Ratelimit-Reset",
    "X-Ratelimit-Auth-Token-Limit",
    "X-Ratelimit-Auth-Token-Remaining",
    "X-Ratelimit-Auth-Token-Reset",
]

SPEC_DIR = Path(__file__).parent / "spec"
_BSS_URI = "urn:ldbulk:big-segment-store"
_BSS_LIST_URI = "urn:ldbulk:big-segment-store-list"
_PROJECTS_URI = "urn:ldbulk:projects-environments"

# An answer the spec does not describe (a 5xx fault) must still be LaunchDarkly's error shape.
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "id"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}


# OpenAPI 3.0 schemas are (close to) JSON Schema draft 4/7; draft 7 reads the ones used here.
_DRAFT_VALIDATOR = jsonschema.Draft7Validator


class SpecValidator:
    """Validates recorded sandbox responses against the OpenAPI response schemas."""

    def __init__(self) -> None:
        bss = json.loads((SPEC_DIR / "big-segment-store-openapi.json").read_text())
        projects = json.loads((SPEC_DIR / "projects-environments-openapi.json").read_text())
        # The spec marks `config` required on BigSegmentStoreIntegration, while the same field's
        # description says it is "only included when requesting a single integration by ID":
        # list-all items are checked against a copy without that one requirement.
        listing = json.loads(json.dumps(bss))
        item = listing["components"]["schemas"]["BigSegmentStoreIntegration"]
        item["required"] = [name for name in item["required"] if name != "config"]
        self._docs = {_BSS_URI: bss, _BSS_LIST_URI: listing, _PROJECTS_URI: projects}
        self._registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT7))
            for uri, doc in self._docs.items()
        )

    def schema_for(self, method: str, route: str, status: int) -> dict[str, Any] | None:
        """The JSON schema of one documented response, or None for an undocumented status."""
        path = route.split(" ", 1)[1].replace("{id}", "{integrationId}")
        if path.startswith("/api/v2/projects"):
            uri = _PROJECTS_URI
        elif path == "/api/v2/integration-capabilities/big-segment-store":
            uri = _BSS_LIST_URI
        else:
            uri = _BSS_URI
        responses = self._docs[uri]["paths"][path][method.lower()]["responses"]
        documented = responses.get(str(status))
        if documented is None:
            return None
        content = documented.get("content")
        if content is None:
            return {"const": None}
        return {"$ref": uri + content["application/json"]["schema"]["$ref"]}

    def problems(self, response: RecordedResponse) -> list[str]:
        """What is wrong with one response (empty when it matches the spec)."""
        where = f"{response.route} -> {response.status}"
        schema = self.schema_for(response.method, response.route, response.status)
        if schema == {"const": None}:
            return [] if not response.body else [f"{where}: expected no body"]
        if schema is None:
            if response.status < 500:
                return [f"{where}: status not documented by the spec"]
            schema = _ERROR_SCHEMA
        try:
            body = json.loads(response.body)
        except ValueError:
            return [f"{where}: body is not JSON"]
        validator = _DRAFT_VALIDATOR(schema, registry=self._registry)
        return [
            f"{where}: {error.json_path}: {error.message}" for error in validator.iter_errors(body)
        ]

    def check_all(self, responses: Iterable[RecordedResponse]) -> None:
        """Fail the test when any response does not match the spec."""
        problems = [problem for response in responses for problem in self.problems(response)]
        assert not problems, "responses outside the spec:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="session")
def spec_validator() -> SpecValidator:
    """The OpenAPI validator of sandbox responses."""
    return SpecValidator()


SandboxFactory = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def make_sandbox(spec_validator: SpecValidator) -> AsyncIterator[SandboxFactory]:
    """Start sandboxes with ``SandboxOptions`` keywords; all of them stop, and are checked
    against the spec, at the end of the test."""
    started: list[Sandbox] = []
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> Sandbox:
            options.setdefault("record", True)
            sandbox = await stack.enter_async_context(Sandbox(SandboxOptions(**options)))
            started.append(sandbox)
            return sandbox

        yield make
    for sandbox in started:
        spec_validator.check_all(sandbox.responses)


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    """A sandbox with the default generated world (3 projects x 3 environments), no limits."""
    return await make_sandbox()


# -- the client on canned responses (in memory) ------------------------------------------


MEMORY_BASE = "http://127.0.0.1:9"


@pytest.fixture
def mocked() -> MemoryTransport:
    """The canned responses of the test's ``client``."""
    return MemoryTransport()


@pytest.fixture
def client(mocked: MemoryTransport) -> Client:
    """A client on ``mocked``, retrying three times with (almost) no backoff."""
    policy = RetryPolicy(backoff_base_s=0.001, backoff_cap_s=0.001, max_attempts=3)
    return Client(token="api-unit-test-token", base_url=MEMORY_BASE, retry=policy,
                  transport=mocked)


# The canned answers of those tests: redis integrations of project "web" by default.
CANNED_CONFIG = RedisConfig(host="redis.internal", password="s3cret-password")


def target(environment: str, project: str = "web") -> Target:
    return Target(project=project, environment=environment, config=CANNED_CONFIG, on=True)


def integration(
    environment: str, project: str = "web", *, id: str = "", with_config: bool = False
) -> dict[str, Any]:
    """A redis integration as LaunchDarkly lists it (``id-ENVIRONMENT`` unless ``id`` is
    given), or as it reads it by id (``with_config``, the password masked)."""
    item: dict[str, Any] = {
        "_id": id or f"id-{environment}",
        "integrationKey": "redis",
        "projectKey": project,
        "environmentKey": environment,
        "on": True,
        "tags": [],
        "name": "",
        "version": 1,
        "_status": {"available": False, "potentiallyStale": False},
        "_links": {},
    }
    if with_config:
        item["config"] = {"host": "redis.internal", "port": "6379", "password": "********",
                          "tlsEnabled": False, "username": ""}
    return item


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "_links": {"self": {"href": "/api/v2/x"}}}


# -- the sandbox as a subprocess, for the command line ------------------------------------


@attrs.frozen
class SandboxProcess:
    """A sandbox subprocess (``python -m ldbulk.sandbox``), read through its HTTP API."""

    url: str
    token: str

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)

    def api(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Authorization": self.token})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_sandbox/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def writes(self) -> int:
        stats = self.get("/_sandbox/stats")
        return sum(
            count
            for route, statuses in stats["requests"].items()
            if not route.startswith("GET")
            for count in statuses.values()
        )


@contextlib.contextmanager
def start_sandbox(*args: str) -> Iterator[SandboxProcess]:
    with launch_sandbox(*args) as launched:
        yield SandboxProcess(url=launched.url, token=launched.token)


def sandbox_server(*args: str, world: dict[str, Any] | None = None) -> Any:
    """A module's ``server`` fixture: one sandbox subprocess for all of the module's tests
    (starting one takes a while), started with ``args``, or on ``world`` written to a file.
    The default is 3 projects x 4 environments."""

    @pytest.fixture(scope="module", name="server")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
        options = args or ("--projects", "3", "--environments", "4")
        if world is not None:
            path = tmp_path_factory.mktemp("world") / "world.json"
            path.write_text(json.dumps(world))
            options = ("--world", str(path))
        with start_sandbox(*options) as running:
            yield running

    return server


def _emptied(server: SandboxProcess) -> SandboxProcess:
    """The module's sandbox subprocess, emptied of integrations."""
    server.reset()
    return server


def sandbox_process_fixtures(*args: str, world: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """A module's ``server`` fixture (see ``sandbox_server``) and its ``sandbox`` fixture, that
    server emptied of integrations before each test: ``server, sandbox = ...`` at the top of a
    module of command-line tests, in place of the in-process ``sandbox``."""
    return sandbox_server(*args, world=world), pytest.fixture(name="sandbox")(_emptied)


@pytest.fixture(autouse=True)
def ldbulk_logger() -> Iterator[logging.Logger]:
    """A command run in process (click's runner) configures ldbulk's loggers; the other tests
    of the worker get them back as they were."""
    logger = logging.getLogger("ldbulk")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    others = [logging.getLogger(name) for name in ("ldbulk.http.client", "ldbulk.summary")]
    saved_others = [(other.filters[:], other.level) for other in others]
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved
    for other, (filters, level) in zip(others, saved_others, strict=True):
        other.filters[:], other.level = filters, level
