"""Shared fixtures: the LaunchDarkly API sandbox on a loopback port, and the spec it answers to.

Every sandbox a fixture starts records its responses; when the test ends, each of them is
validated against the vendored OpenAPI subsets in ``tests/spec/``, so any integration test that
uses the fixtures also checks the sandbox against the published schemas.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import settings
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from ldbulk.sandbox import RecordedResponse, Sandbox, SandboxOptions

# No per-example deadline: the suite runs on two workers of a shared 2-core machine, and a slow
# example there says nothing about the code (timings are never asserted in tests).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

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
