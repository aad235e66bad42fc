"""The sandbox holds to LaunchDarkly's published contract, as a third-party fuzzer reads it.

Schemathesis generates requests from the vendored OpenAPI subsets in ``tests/spec/`` (valid and
invalid ones, and methods the spec does not list) and sends them, with the token and the beta
header, to a live sandbox; every answer must conform: its status is one the operation
documents, its content type and body match the schema, a wrong method is a 405 with ``Allow``.
A stateful run follows create -> get -> patch -> delete through OpenAPI links.

The spec is used as published with three overlays, each a small function below that says why:
links for the stateful run (the subset carries none), the list items' ``config`` (behaviour
over schema), and the operations the sandbox does not emulate.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from ldbulk.api import sansio
from ldbulk.sandbox import Sandbox, SandboxOptions

SPEC_DIR = Path(__file__).parent / "spec"

# The world the fuzzer meets: real keys to find, and integrations to read, patch and delete.
PAIRS = [("checkout", "production"), ("checkout", "staging"), ("search", "production")]
SEEDED = {
    "redis": "0123456789abcdef01234567",
    "dynamodb": "89abcdef0123456789abcdef",
}
WORLD: dict[str, Any] = {
    "projects": [
        {"key": "checkout", "environments": [{"key": "production"}, {"key": "staging"}]},
        {"key": "search", "environments": [{"key": "production"}]},
    ],
    "integrations": [
        {
            "_id": SEEDED["redis"],
            "projectKey": "checkout",
            "environmentKey": "production",
            "integrationKey": "redis",
            "config": {"host": "redis.internal", "password": "hunter2"},
        },
        {
            "_id": SEEDED["dynamodb"],
            "projectKey": "search",
            "environmentKey": "production",
            "integrationKey": "dynamodb",
            "config": {
                "tableName": "segments",
                "region": "us-east-1",
                "roleArn": "arn:aws:iam::123456789012:role/ld",
                "externalId": "ext-1",
            },
        },
    ],
}

# What LaunchDarkly's own checks would have accepted; the spec's `config` is a free-form object.
VALID_CONFIGS: dict[str, list[dict[str, Any]]] = {
    "redis": [{"host": "redis.internal"}, {"host": "10.0.0.1", "port": "6380", "tlsEnabled": True}],
    "dynamodb": [WORLD["integrations"][1]["config"]],
}
VALID_PATCHES = st.sampled_from(
    [
        [{"op": "replace", "path": "/on", "value": True}],
        [{"op": "replace", "path": "/tags", "value": ["fuzzed"]}],
        [{"op": "replace", "path": "/name", "value": "renamed"}],
    ]
)

BSS = "/api/v2/integration-capabilities/big-segment-store"
ONE = f"{BSS}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}"
BY_ID = f"{ONE}/{{integrationId}}"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPEC_DIR / name).read_text())
    return data


# -- the overlays --------------------------------------------------------------------------


def list_items_without_config(spec: dict[str, Any]) -> None:
    """Behaviour over schema: the list's items carry no ``config``.

    The schema marks ``config`` required on ``BigSegmentStoreIntegration``, while the field's
    own description says it is "only included when requesting a single integration by ID", and
    LaunchDarkly answers so. The list's items get a copy of the schema without that one
    requirement; the single-integration answers keep the schema as published.
    """
    schemas = spec["components"]["schemas"]
    item = copy.deepcopy(schemas["BigSegmentStoreIntegration"])
    item["required"] = [name for name in item["required"] if name != "config"]
    schemas["BigSegmentStoreIntegrationListItem"] = item
    collection = schemas["BigSegmentStoreIntegrationCollection"]["properties"]["items"]
    collection["items"] = {"$ref": "#/components/schemas/BigSegmentStoreIntegrationListItem"}


def integration_links(spec: dict[str, Any]) -> None:
    """OpenAPI links between the operations on one integration, for the stateful run.

    The published subset defines none. A created integration is read, patched and deleted by
    the ``_id`` its answer carries, at the path it was created under; a read or patched one
    likewise.
    """
    by_id = {
        name: {
            "operationId": f"{verb}BigSegmentStoreIntegration",
            "parameters": {
                "projectKey": "$request.path.projectKey",
                "environmentKey": "$request.path.environmentKey",
                "integrationKey": "$request.path.integrationKey",
                "integrationId": "$response.body#/_id",
            },
        }
        for name, verb in (("Get", "get"), ("Patch", "patch"), ("Delete", "delete"))
    }
    paths = spec["paths"]
    paths[ONE]["post"]["responses"]["201"]["links"] = by_id
    paths[BY_ID]["get"]["responses"]["200"]["links"] = {
        name: by_id[name] for name in ("Patch", "Delete")
    }
    paths[BY_ID]["patch"]["responses"]["200"]["links"] = {
        name: by_id[name] for name in ("Get", "Delete")
    }


def emulated_only(spec: dict[str, Any]) -> None:
    """Drop the operations the sandbox does not emulate (ldbulk never creates projects or
    environments); the sandbox answers them 405, which is what the remaining spec then says."""
    for path in spec["paths"].values():
        path.pop("post", None)


def bss_spec() -> dict[str, Any]:
    """The big segment store subset, with its overlays."""
    spec = _load("big-segment-store-openapi.json")
    list_items_without_config(spec)
    integration_links(spec)
    return spec


def projects_spec() -> dict[str, Any]:
    """The projects and environments subset, with its overlay."""
    spec = _load("projects-environments-openapi.json")
    emulated_only(spec)
    return spec


# -- the sandbox, served from a thread of its own -------------------------------------------


class ThreadedSandbox:
    """A :class:`Sandbox` on its own event loop in a thread: schemathesis calls are blocking."""

    def __init__(self, options: SandboxOptions) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.sandbox: Sandbox = self._run(self._start(options))
        self.url = self.sandbox.url
        # (route, status) -> answers, summed over resets.
        self.seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self.headers = {"Authorization": self.sandbox.token, "LD-API-Version": "beta"}

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _start(self, options: SandboxOptions) -> Sandbox:
        sandbox = Sandbox(options)
        await sandbox.start()
        return sandbox

    async def _reset(self) -> None:
        for route, by_status in self.sandbox.stats.requests.items():
            for status, count in by_status.items():
                self.seen[route, status] += count
        self.sandbox.reset()

    def reset(self) -> None:
        """Back to the world's integrations, on the sandbox's own loop; answers counted."""
        self._run(self._reset())

    def close(self) -> None:
        """Stop the sandbox, then its loop and thread."""
        self._run(self.sandbox.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


BSS_SCHEMA = schemathesis.openapi.from_dict(bss_spec())
PROJECTS_SCHEMA = schemathesis.openapi.from_dict(projects_spec())

# Few examples per operation, no deadline: a bounded run on a small machine, never a timing test.
for _schema in (BSS_SCHEMA, PROJECTS_SCHEMA):
    _schema.config.generation.update(max_examples=12)

SETTINGS = hypothesis.settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)

# Every check that speaks to the contract. Left out: ``positive_data_acceptance``, because the
# spec's ``config`` is a free-form object and its JSON Patch operations any strings, so data
# "valid" by the schema is rightly a 400 from LaunchDarkly (and the sandbox) that checks
# formVariables and patch paths; ``object_level_authorization``, since there is one token.
def error_body_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every error answer is LaunchDarkly's ``{code, message, id}``, all three strings.

    The spec's error schemas require ``code`` and ``message``; the API overview gives ``id``
    too (to quote to support), on every error. Stricter than the schemas, never looser.
    """
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert sorted(body) == ["code", "id", "message"], f"error body keys: {sorted(body)}"
    assert all(isinstance(value, str) and value for value in body.values()), body
    return None


CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.missing_required_header,
    openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
    openapi_checks.use_after_free,
    openapi_checks.ensure_resource_availability,
    openapi_checks.ignored_auth,
    error_body_shape,
]


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedSandbox]:
    """One sandbox for the module."""
    threaded = ThreadedSandbox(SandboxOptions(world=WORLD))
    try:
        yield threaded
    finally:
        threaded.close()


# -- steering generation towards what exists -----------------------------------------------
# Random keys only ever find 404s. In positive mode, path parameters are drawn from the
# world's keys as often as from the generated ones, and a create or a patch gets, as often as
# not, a body LaunchDarkly would accept; negative cases are left as generated.


def _steer(case: schemathesis.Case) -> st.SearchStrategy[schemathesis.Case]:
    meta = case.meta
    if meta is not None and meta.generation.mode.is_negative:
        return st.just(case)
    params = dict(case.path_parameters or {})
    draws: dict[str, st.SearchStrategy[Any]] = {}
    # A stateful step on an integration takes its path from the link it follows.
    linked = meta is not None and meta.phase.name == "stateful" and "integrationId" in params
    if "projectKey" in params and not linked:
        pairs = [(params["projectKey"], params.get("environmentKey")), *PAIRS]
        draws["pair"] = st.sampled_from(pairs)
    if "integrationKey" in params and not linked:
        draws["integrationKey"] = st.sampled_from([params["integrationKey"], "redis", "dynamodb"])
    if "integrationId" in params and not linked:
        draws["integrationId"] = st.sampled_from([params["integrationId"], *SEEDED.values()])
    # Mostly a body LaunchDarkly accepts: an invalid one ends a stateful scenario early.
    draws["valid_body"] = st.sampled_from([True, True, True, False])
    draws["config_index"] = st.integers(min_value=0, max_value=1)
    draws["patch"] = VALID_PATCHES

    def build(drawn: dict[str, Any]) -> schemathesis.Case:
        if "pair" in drawn:
            project, environment = drawn["pair"]
            params["projectKey"] = project
            if environment is not None and "environmentKey" in params:
                params["environmentKey"] = environment
        for name in ("integrationKey", "integrationId"):
            if name in drawn:
                params[name] = drawn[name]
        case.path_parameters = params
        if drawn["valid_body"] and case.method == "POST" and case.path == ONE:
            configs = VALID_CONFIGS.get(params["integrationKey"])
            if configs:
                body = case.body if isinstance(case.body, dict) else {}
                case.body = {**body, "config": configs[drawn["config_index"] % len(configs)]}
        if drawn["valid_body"] and case.method == "PATCH":
            case.body = drawn["patch"]
        return case

    return st.fixed_dictionaries(draws).map(build)


for _schema in (BSS_SCHEMA, PROJECTS_SCHEMA):
    _schema.hook("flatmap_case")(lambda context, case: _steer(case))


# -- the tests -------------------------------------------------------------------------------


@BSS_SCHEMA.parametrize()
@hypothesis.settings(SETTINGS)
def test_every_integration_operation_answers_as_the_spec_says(
    case: schemathesis.Case, served: ThreadedSandbox
) -> None:
    case.call_and_validate(base_url=served.url, headers=served.headers, checks=CHECKS)


@PROJECTS_SCHEMA.parametrize()
@hypothesis.settings(SETTINGS)
def test_projects_and_environments_answer_as_the_spec_says(
    case: schemathesis.Case, served: ThreadedSandbox
) -> None:
    case.call_and_validate(base_url=served.url, headers=served.headers, checks=CHECKS)


class _Machine(BSS_SCHEMA.as_state_machine()):  # type: ignore[misc]
    served: ThreadedSandbox

    def setup(self) -> None:
        # Each scenario starts from the world: what one created must not decide the next.
        self.served.reset()

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"base_url": self.served.url, "headers": self.served.headers}

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


def test_create_get_patch_delete_follow_the_links(served: ThreadedSandbox) -> None:
    _Machine.served = served
    served.reset()
    served.seen.clear()
    _Machine.run(
        settings=hypothesis.settings(
            SETTINGS,
            max_examples=15,
            stateful_step_count=6,
        )
    )
    served.reset()
    # The links were followed: something was created, then read, patched and deleted by its id.
    for route, status in [
        (sansio.ROUTE_CREATE, "201"),
        (sansio.ROUTE_GET, "200"),
        (sansio.ROUTE_PATCH, "200"),
        (sansio.ROUTE_DELETE, "204"),
    ]:
        assert served.seen[route, status], (route, status, served.seen)
