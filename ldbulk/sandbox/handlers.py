"""The API operations: what each route does once its request is through the middlewares.

A handler answers, or raises :class:`ApiError` for its error answer. The routes are the ones
ldbulk uses: the persistent store integrations (all beta) and the project and environment
lists, paginated as LaunchDarkly does with ``limit``/``offset`` and ``_links``.
"""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any, Final

import jsonpatch
from aiohttp import web
from aiohttp.typedefs import Handler
from jsonpointer import JsonPointerException

from ldbulk.api import sansio
from ldbulk.api.models import INTEGRATION_KEYS
from ldbulk.errors import ConfigError
from ldbulk.sandbox.masking import unmask
from ldbulk.sandbox.responses import JSON, ApiError, Dropped, json_response
from ldbulk.sandbox.store import Slot, Store
from ldbulk.sandbox.world import (
    SECRET_FIELDS,
    IntegrationRecord,
    new_id,
    validate_config,
)

DEFAULT_PAGE_LIMIT: Final = 20
MAX_PAGE_LIMIT: Final = 1000
_INTEGER: Final = re.compile(r"-?[0-9]+")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

# The fields of an integration a PATCH may change; the rest are LaunchDarkly's to set.
_WRITABLE: Final = frozenset({"on", "tags", "name", "config"})


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise _invalid("The request body is not JSON") from None


def _check_fields(on: Any, tags: Any, name: Any) -> tuple[bool, list[str], str]:
    if not isinstance(on, bool):
        raise _invalid("on: must be true or false")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _invalid("tags: must be an array of strings")
    if not isinstance(name, str):
        raise _invalid("name: must be a string")
    return on, list(tags), name


def _checked_config(integration_key: str, config: Any) -> dict[str, Any]:
    try:
        return validate_config(integration_key, config)
    except ConfigError as exc:
        raise _invalid(str(exc)) from None


def apply_json_patch(document: dict[str, Any], operations: Any) -> None:
    """Apply a JSON Patch (RFC 6902) to ``document`` in place, one operation at a time.

    A failed ``test`` is a 409 (LaunchDarkly's optimistic-locking conflict), any other problem
    a 400. Messages name the operation and never quote the document: it holds the secrets.
    """
    if not isinstance(operations, list) or not operations:
        raise _invalid("Invalid patch: a JSON Patch must be a non-empty array of operations")
    for number, operation in enumerate(operations):
        where = f"Invalid patch: operation {number}"
        try:
            patch = jsonpatch.JsonPatch([operation])
        except (jsonpatch.InvalidJsonPatch, JsonPointerException) as exc:
            raise _invalid(f"{where}: {exc}") from None
        op, path = operation["op"], operation["path"]
        # jsonpatch resolves a test's path before it looks for the value: a test without one
        # would be answered as a conflict rather than as the malformed patch it is.
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _invalid(f"{where}: {op} needs a 'value'")
        # An integration is patched field by field; the document itself is LaunchDarkly's.
        if path == "" and op != "test":
            raise _invalid(f"{where}: the whole document cannot be replaced")
        try:
            patch.apply(document, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise ApiError(
                409,
                "optimistic_locking_error",
                f"Conflict. test failed: {path} does not have the expected value",
            ) from None
        except jsonpatch.JsonPatchException as exc:
            raise _invalid(f"{where} ({op} {path}): {exc}") from None
        except JsonPointerException:
            # jsonpointer's own messages quote the document it walked.
            raise _invalid(f"{where} ({op} {path}): no such path") from None


def _query_integer(request: web.Request, name: str, default: int) -> int:
    """A query parameter the spec types ``integer`` (int64): digits only, in range."""
    text = request.query.get(name)
    if text is None:
        return default
    # Python's int() also takes "+5", " 5" and "1_000"; the API's integers are plain digits.
    if _INTEGER.fullmatch(text) is None or not _INT64_MIN <= int(text) <= _INT64_MAX:
        raise _invalid(f"{name}: must be an integer")
    return int(text)


def _page_bounds(request: web.Request) -> tuple[int, int]:
    limit = _query_integer(request, "limit", DEFAULT_PAGE_LIMIT)
    offset = _query_integer(request, "offset", 0)
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise _invalid(f"limit: must be from 1 to {MAX_PAGE_LIMIT}")
    if offset < 0:
        raise _invalid("offset: must not be negative")
    return limit, offset


def _page(request: web.Request, path: str, items: list[dict[str, Any]]) -> web.Response:
    limit, offset = _page_bounds(request)
    total = len(items)

    def link(at: int) -> dict[str, str]:
        return {"href": f"{path}?limit={limit}&offset={at}", "type": JSON}

    links = {"self": link(offset), "first": link(0)}
    last = max(total - 1, 0) // limit * limit
    links["last"] = link(last)
    if offset + limit < total:
        links["next"] = link(offset + limit)
    if offset > 0:
        links["prev"] = link(max(offset - limit, 0))
    return json_response(
        200, {"_links": links, "items": items[offset : offset + limit], "totalCount": total}
    )


class Handlers:
    """The API's handlers over one :class:`Store`.

    ``rng`` is the sandbox's one source of faults: a create draws from it, after the fault
    middleware did, to decide whether to cut its connection once it is stored.
    """

    def __init__(self, store: Store, rng: random.Random, *, drop_after_commit: float) -> None:
        self.store = store
        self._rng = rng
        self._drop_after_commit = drop_after_commit

    def routes(self) -> list[tuple[str, Handler, bool]]:
        """(route key, handler, beta) of every API route.

        The keys are ldbulk.api.sansio's ``ROUTE_*`` ("METHOD pattern"): the client paces by
        them and the sandbox counts by them, so both name a route the same way by construction.
        """
        return [
            (sansio.ROUTE_LIST, self.list_integrations, True),
            (sansio.ROUTE_CREATE, self.create, True),
            (sansio.ROUTE_GET, self.get, True),
            (sansio.ROUTE_PATCH, self.patch, True),
            (sansio.ROUTE_DELETE, self.delete, True),
            (sansio.ROUTE_PROJECTS, self.list_projects, False),
            (sansio.ROUTE_ENVIRONMENTS, self.list_environments, False),
        ]

    # -- looking up what the URL names ---------------------------------------------------

    def _environment(self, request: web.Request) -> tuple[str, str]:
        project_key = request.match_info["projectKey"]
        environment_key = request.match_info["environmentKey"]
        project = self.store.projects.get(project_key)
        if project is None:
            raise ApiError(404, "not_found", f"Unknown project {project_key!r}")
        if environment_key not in project.environments:
            raise ApiError(404, "not_found", f"Unknown environment {environment_key!r}")
        return project_key, environment_key

    def _slot(self, request: web.Request) -> Slot:
        project_key, environment_key = self._environment(request)
        integration_key = request.match_info["integrationKey"]
        if integration_key not in INTEGRATION_KEYS:
            raise ApiError(404, "not_found", f"Unknown integration key {integration_key!r}")
        return project_key, environment_key, integration_key

    def _record(self, request: web.Request) -> IntegrationRecord:
        slot = self._slot(request)
        record = self.store.by_id(request.match_info["id"])
        if record is None or record.key != slot:
            raise ApiError(404, "not_found", "Unknown integration id")
        return record

    # -- the operations ------------------------------------------------------------------

    async def list_integrations(self, request: web.Request) -> web.StreamResponse:
        """Every integration of the account, without configs."""
        return web.Response(status=200, body=self.store.list_body(), content_type=JSON)

    async def create(self, request: web.Request) -> web.StreamResponse:
        """201 with the new integration; 409 when its slot is taken."""
        project_key, environment_key, integration_key = self._slot(request)
        body = await _body(request)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object")
        if "config" not in body:
            raise _invalid("config: required")
        on, tags, name = _check_fields(
            body.get("on", False), body.get("tags", []), body.get("name", "")
        )
        config = _checked_config(integration_key, body["config"])
        if (project_key, environment_key, integration_key) in self.store.integrations:
            raise ApiError(
                409,
                "conflict",
                f"A {integration_key} integration already exists in this environment",
            )
        record = IntegrationRecord(
            id=new_id(),
            integration_key=integration_key,
            project_key=project_key,
            environment_key=environment_key,
            config=config,
            on=on,
            tags=tags,
            name=name,
            version=1,
            config_set_ms=self.store.now_ms(),
        )
        self.store.add(record)
        if self._drop_after_commit and self._rng.random() < self._drop_after_commit:
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise Dropped
        return json_response(201, self.store.render(record, with_config=True))

    async def get(self, request: web.Request) -> web.StreamResponse:
        """One integration, its secrets redacted."""
        return json_response(200, self.store.render(self._record(request), with_config=True))

    async def patch(self, request: web.Request) -> web.StreamResponse:
        """A JSON Patch of the writable fields; the version goes up by one."""
        record = self._record(request)
        body = await _body(request)
        # LaunchDarkly also takes {"comment": ..., "patch": [...]}.
        operations = body.get("patch") if isinstance(body, dict) else body
        document = self.store.render(record, with_config=False)
        document["config"] = copy.deepcopy(record.config)
        before = copy.deepcopy(document)
        apply_json_patch(document, operations)
        for field in sorted(set(before) | set(document)):
            if field not in _WRITABLE and before.get(field) != document.get(field):
                raise _invalid(f"{field}: cannot be changed")
        if "config" not in document:
            raise _invalid("config: required")
        on, tags, name = _check_fields(
            document.get("on", False), document.get("tags", []), document.get("name", "")
        )
        config = document["config"]
        if isinstance(config, dict):
            # A config read back (and so masked) and patched in whole keeps its secrets.
            unmask(config, record.config, self.store.masked | SECRET_FIELDS[record.integration_key])
        stored = _checked_config(record.integration_key, config)
        if stored != record.config:
            # A new configuration: LaunchDarkly connects to the store again.
            record.config_set_ms = self.store.now_ms()
        record.on, record.tags, record.name, record.config = on, tags, name, stored
        record.version += 1
        self.store.changed()
        return json_response(200, self.store.render(record, with_config=True))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """204, and the slot is free again."""
        self.store.remove(self._record(request))
        return web.Response(status=204)

    async def list_projects(self, request: web.Request) -> web.StreamResponse:
        """One page of projects."""
        return _page(request, "/api/v2/projects", self.store.project_items)

    async def list_environments(self, request: web.Request) -> web.StreamResponse:
        """One page of a project's environments (SDK keys included, as LaunchDarkly)."""
        project_key = request.match_info["projectKey"]
        project = self.store.projects.get(project_key)
        if project is None:
            raise ApiError(404, "not_found", f"Unknown project {project_key!r}")
        path = f"/api/v2/projects/{sansio.segment(project_key)}/environments"
        return _page(request, path, project.environment_items)
