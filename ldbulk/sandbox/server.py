"""The sandbox server: LaunchDarkly's API for what ldbulk touches, on aiohttp.web.

Every API request goes through the :mod:`~ldbulk.sandbox.middlewares` (authentication, rate
limits, the beta header, latency and faults) before its handler here, which reads and changes
the :class:`~ldbulk.sandbox.store.Store`.

``/_sandbox`` is the sandbox's own introspection, outside the API: no auth, no limits, not
counted in the stats. ``GET /_sandbox/stats`` (requests by route and status, 429s, faults,
drops, integrations stored), ``GET /_sandbox/integrations`` (stored integrations, secrets
redacted) and ``POST /_sandbox/reset`` (back to the integrations loaded at start, from the world
or the state file; stats, recorded responses and rate-limit windows cleared).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import jsonpatch
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute
from jsonpointer import JsonPointerException

from ldbulk import sansio
from ldbulk.converter import structure
from ldbulk.errors import ConfigError
from ldbulk.models import INTEGRATION_KEYS, Integration
from ldbulk.sandbox import middlewares
from ldbulk.sandbox.limits import FixedWindowLimiter
from ldbulk.sandbox.middlewares import ApiRoute, Counters
from ldbulk.sandbox.options import RecordedResponse, SandboxOptions, SandboxStats
from ldbulk.sandbox.responses import JSON, ApiError, Dropped, error_response, json_response
from ldbulk.sandbox.store import Slot, Store
from ldbulk.sandbox.world import (
    REDACTED_VALUE,
    SECRET_FIELDS,
    IntegrationRecord,
    WorldSpec,
    generate_world,
    new_id,
    now_ms,
    parse_world,
    read_world_file,
    validate_config,
)

DEFAULT_PAGE_LIMIT: Final = 20
MAX_PAGE_LIMIT: Final = 1000
_BSS: Final = sansio.BIG_SEGMENT_STORE
_ONE: Final = f"{_BSS}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}"

# The fields of an integration a PATCH may change; the rest are LaunchDarkly's to set.
_WRITABLE: Final = frozenset({"on", "tags", "name", "config"})


def _invalid_patch(message: str) -> ApiError:
    return ApiError(400, "invalid_request", f"Invalid patch: {message}")


def _apply_json_patch(document: dict[str, Any], operations: Any) -> None:
    """Apply a JSON Patch (RFC 6902) to ``document`` in place, one operation at a time.

    A failed ``test`` is a 409 (LaunchDarkly's optimistic-locking conflict), any other problem
    a 400. Messages name the operation and never quote the document: it holds the secrets.
    """
    if not isinstance(operations, list) or not operations:
        raise _invalid_patch("a JSON Patch must be a non-empty array of operations")
    for number, operation in enumerate(operations):
        try:
            patch = jsonpatch.JsonPatch([operation])
        except (jsonpatch.InvalidJsonPatch, JsonPointerException) as exc:
            raise _invalid_patch(f"operation {number}: {exc}") from None
        op, path = operation["op"], operation["path"]
        # jsonpatch resolves a test's path before it looks for the value: a test without one
        # would be answered as a conflict rather than as the malformed patch it is.
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _invalid_patch(f"operation {number}: {op} needs a 'value'")
        # An integration is patched field by field; the document itself is LaunchDarkly's.
        if path == "" and op != "test":
            raise _invalid_patch(f"operation {number}: the whole document cannot be replaced")
        try:
            patch.apply(document, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise ApiError(
                409,
                "optimistic_locking_error",
                f"Conflict. test failed: {path} does not have the expected value",
            ) from None
        except jsonpatch.JsonPatchException as exc:
            raise _invalid_patch(f"operation {number} ({op} {path}): {exc}") from None
        except JsonPointerException:
            # jsonpointer's own messages quote the document it walked.
            raise _invalid_patch(f"operation {number} ({op} {path}): no such path") from None


class Sandbox:
    """A LaunchDarkly API sandbox on a loopback port, as an async context manager::

    async with Sandbox(SandboxOptions(projects=2, environments=3)) as sandbox:
        async with Client(sandbox.token, base_url=sandbox.url) as client:
            ...
        assert sandbox.stats.integrations == 0
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options if options is not None else SandboxOptions()
        self._store = Store(self._world_spec(), self.options.state)
        self._limiter = FixedWindowLimiter(
            global_limit=self.options.global_limit,
            route_limit=self.options.route_limit,
            window_s=self.options.window_s,
            clock=self.options.clock,
        )
        self._rng = random.Random(self.options.seed)
        self._counters = Counters()
        self.responses: list[RecordedResponse] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.app = self._make_app()

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r})" if self._runner else "Sandbox(not started)"

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on the configured host and port (port 0: a free one)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._store.start_writing()

    async def stop(self) -> None:
        """Stop listening, and write the state file one last time."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._store.stop_writing()

    @property
    def port(self) -> int:
        """The port the sandbox listens on."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give a client (``http://127.0.0.1:PORT``)."""
        host = self.options.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def token(self) -> str:
        """The one access token the sandbox accepts."""
        return self.options.token

    # -- introspection -------------------------------------------------------------------

    @property
    def stats(self) -> SandboxStats:
        """Requests by route and status, 429s, faults, drops and integrations stored."""
        return self._counters.stats(integrations=len(self._store.integrations))

    @property
    def integrations(self) -> dict[Slot, Integration]:
        """Every stored integration by (project, environment, integration key).

        The configs are the stored ones: secrets unredacted and ``port`` a string.
        """
        return {key: self._as_model(record) for key, record in self._store.integrations.items()}

    def integration(
        self, project: str, environment: str, integration_key: str
    ) -> Integration | None:
        """The integration stored at one (project, environment, integration key), if any."""
        record = self._store.integrations.get((project, environment, integration_key))
        return None if record is None else self._as_model(record)

    def reset(self) -> None:
        """Back to the integrations the sandbox started with; stats and windows cleared."""
        self._store.reset()
        self._counters.clear()
        self._limiter.reset()
        self.responses.clear()

    @staticmethod
    def _as_model(record: IntegrationRecord) -> Integration:
        data = record.render(with_config=False)
        data["config"] = dict(record.config)
        return structure(data, Integration, what="stored integration")

    # -- setup ---------------------------------------------------------------------------

    def _world_spec(self) -> WorldSpec:
        world = self.options.world
        if world is None:
            return generate_world(self.options.projects, self.options.environments)
        if isinstance(world, Mapping):
            return parse_world(dict(world))
        return read_world_file(Path(world))

    def _make_app(self) -> web.Application:
        options = self.options
        routes: dict[AbstractRoute, ApiRoute] = {}
        app = web.Application(
            middlewares=[
                middlewares.accounting(
                    routes, self._counters, self.responses if options.record else None
                ),
                middlewares.authentication(routes, options.token),
                middlewares.rate_limits(
                    routes, self._limiter, self._counters, retry_after=options.retry_after
                ),
                middlewares.beta_header(routes),
                middlewares.faults(
                    routes,
                    self._rng,
                    self._counters,
                    latency_ms=options.latency_ms,
                    fault_rate=options.fault_rate,
                ),
                middlewares.api_errors,
            ]
        )
        api: list[tuple[str, str, Handler, bool]] = [
            ("GET", _BSS, self._list_integrations, True),
            ("POST", _ONE, self._create, True),
            ("GET", f"{_ONE}/{{id}}", self._get, True),
            ("PATCH", f"{_ONE}/{{id}}", self._patch, True),
            ("DELETE", f"{_ONE}/{{id}}", self._delete, True),
            ("GET", "/api/v2/projects", self._list_projects, False),
            ("GET", "/api/v2/projects/{projectKey}/environments", self._list_environments, False),
        ]
        for method, pattern, handler, beta in api:
            # Route keys match ldbulk.sansio's ROUTE_* names, so stats line up with the client.
            route = app.router.add_route(method, pattern, handler)
            routes[route] = ApiRoute(key=f"{method} {pattern}", beta=beta)
        app.router.add_get("/_sandbox/stats", self._stats_endpoint)
        app.router.add_get("/_sandbox/integrations", self._integrations_endpoint)
        app.router.add_post("/_sandbox/reset", self._reset_endpoint)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    # -- helpers of the operations -------------------------------------------------------

    def _environment(self, request: web.Request) -> tuple[str, str]:
        project_key = request.match_info["projectKey"]
        environment_key = request.match_info["environmentKey"]
        project = self._store.projects.get(project_key)
        if project is None:
            raise ApiError(404, "not_found", f"Unknown project {project_key!r}")
        if environment_key not in project.environments:
            raise ApiError(404, "not_found", f"Unknown environment {environment_key!r}")
        return project_key, environment_key

    def _target(self, request: web.Request) -> tuple[str, str, str]:
        project_key, environment_key = self._environment(request)
        integration_key = request.match_info["integrationKey"]
        if integration_key not in INTEGRATION_KEYS:
            raise ApiError(404, "not_found", f"Unknown integration key {integration_key!r}")
        return project_key, environment_key, integration_key

    def _record(self, request: web.Request) -> IntegrationRecord:
        key = self._target(request)
        record = self._store.by_id(request.match_info["id"])
        if record is None or record.key != key:
            raise ApiError(404, "not_found", "Unknown integration id")
        return record

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_request", "The request body is not JSON") from None

    # -- the operations ------------------------------------------------------------------

    async def _list_integrations(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, body=self._store.list_body(), content_type=JSON)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        project_key, environment_key, integration_key = self._target(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The request body must be a JSON object")
        if "config" not in body:
            raise ApiError(400, "invalid_request", "config: required")
        on, tags, name = self._check_fields(
            body.get("on", False), body.get("tags", []), body.get("name", "")
        )
        try:
            config = validate_config(integration_key, body["config"])
        except ConfigError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        if (project_key, environment_key, integration_key) in self._store.integrations:
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
            last_sync_ms=now_ms(),
        )
        self._store.add(record)
        if self.options.drop_after_commit and self._rng.random() < self.options.drop_after_commit:
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise Dropped
        return json_response(201, record.render(with_config=True))

    @staticmethod
    def _check_fields(on: Any, tags: Any, name: Any) -> tuple[bool, list[str], str]:
        if not isinstance(on, bool):
            raise ApiError(400, "invalid_request", "on: must be true or false")
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ApiError(400, "invalid_request", "tags: must be an array of strings")
        if not isinstance(name, str):
            raise ApiError(400, "invalid_request", "name: must be a string")
        return on, list(tags), name

    async def _get(self, request: web.Request) -> web.StreamResponse:
        return json_response(200, self._record(request).render(with_config=True))

    async def _patch(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request)
        body = await self._body(request)
        # LaunchDarkly also takes {"comment": ..., "patch": [...]}.
        operations = body.get("patch") if isinstance(body, dict) else body
        document = record.render(with_config=False)
        document["config"] = copy.deepcopy(record.config)
        before = copy.deepcopy(document)
        _apply_json_patch(document, operations)
        for field in sorted(set(before) | set(document)):
            if field not in _WRITABLE and before.get(field) != document.get(field):
                raise ApiError(400, "invalid_request", f"{field}: cannot be changed")
        if "config" not in document:
            raise ApiError(400, "invalid_request", "config: required")
        on, tags, name = self._check_fields(
            document.get("on", False), document.get("tags", []), document.get("name", "")
        )
        config = document["config"]
        if isinstance(config, dict):
            # A config read back (and so redacted) and patched in whole keeps its secret.
            for secret in SECRET_FIELDS[record.integration_key]:
                if config.get(secret) == REDACTED_VALUE:
                    config[secret] = record.config.get(secret, "")
        try:
            stored = validate_config(record.integration_key, config)
        except ConfigError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        record.on, record.tags, record.name, record.config = on, tags, name, stored
        record.version += 1
        self._store.changed()
        return json_response(200, record.render(with_config=True))

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request)
        self._store.remove(record)
        return web.Response(status=204)

    @staticmethod
    def _page_bounds(request: web.Request) -> tuple[int, int]:
        try:
            limit = int(request.query.get("limit", DEFAULT_PAGE_LIMIT))
            offset = int(request.query.get("offset", 0))
        except ValueError:
            raise ApiError(400, "invalid_request", "limit and offset must be integers") from None
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            raise ApiError(400, "invalid_request", f"limit: must be from 1 to {MAX_PAGE_LIMIT}")
        if offset < 0:
            raise ApiError(400, "invalid_request", "offset: must not be negative")
        return limit, offset

    def _page(self, request: web.Request, path: str, items: list[dict[str, Any]]) -> web.Response:
        limit, offset = self._page_bounds(request)
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

    async def _list_projects(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, "/api/v2/projects", self._store.project_items)

    async def _list_environments(self, request: web.Request) -> web.StreamResponse:
        project_key = request.match_info["projectKey"]
        project = self._store.projects.get(project_key)
        if project is None:
            raise ApiError(404, "not_found", f"Unknown project {project_key!r}")
        path = f"/api/v2/projects/{sansio.segment(project_key)}/environments"
        return self._page(request, path, project.environment_items)

    # -- /_sandbox and everything else ---------------------------------------------------

    async def _stats_endpoint(self, request: web.Request) -> web.StreamResponse:
        return json_response(200, self.stats.to_json())

    async def _integrations_endpoint(self, request: web.Request) -> web.StreamResponse:
        return json_response(200, self._store.snapshot())

    async def _reset_endpoint(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return json_response(200, self.stats.to_json())

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return error_response(404, "not_found", "Invalid resource identifier")
