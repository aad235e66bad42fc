"""The sandbox server: LaunchDarkly's API for what ldbulk touches, on aiohttp.web.

:class:`Sandbox` puts the parts together and runs them: a :class:`~ldbulk.sandbox.store.Store`,
the API's :mod:`~ldbulk.sandbox.handlers`, and the :mod:`~ldbulk.sandbox.middlewares` every API
request goes through (authentication, rate limits, the beta header, latency and faults).

``/_sandbox`` is the sandbox's own introspection, outside the API: no auth, no limits, not
counted in the stats. ``GET /_sandbox/stats`` (requests by route and status, 429s, faults,
drops, integrations stored), ``GET /_sandbox/integrations`` (stored integrations, secrets
redacted) and ``POST /_sandbox/reset`` (back to the integrations loaded at start, from the world
or the state file; stats, recorded responses and rate-limit windows cleared).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from ldbulk.api.converter import structure
from ldbulk.api.models import Integration
from ldbulk.sandbox import middlewares
from ldbulk.sandbox.handlers import Handlers
from ldbulk.sandbox.limits import FixedWindowLimiter
from ldbulk.sandbox.middlewares import ApiRoute, Counters
from ldbulk.sandbox.options import RecordedResponse, SandboxOptions, SandboxStats
from ldbulk.sandbox.responses import json_response
from ldbulk.sandbox.store import Slot, Store
from ldbulk.sandbox.world import (
    IntegrationRecord,
    WorldSpec,
    generate_world,
    parse_world,
    read_world_file,
)


def _world_spec(options: SandboxOptions) -> WorldSpec:
    world = options.world
    if world is None:
        return generate_world(options.projects, options.environments)
    if isinstance(world, Mapping):
        return parse_world(dict(world))
    return read_world_file(Path(world))


def _as_model(store: Store, record: IntegrationRecord) -> Integration:
    data = store.render(record, with_config=False)
    data["config"] = dict(record.config)
    return structure(data, Integration, what="stored integration")


class Sandbox:
    """A LaunchDarkly API sandbox on a loopback port, as an async context manager::

    async with Sandbox(SandboxOptions(projects=2, environments=3)) as sandbox:
        async with Client(sandbox.token, base_url=sandbox.url) as client:
            ...
        assert sandbox.stats.integrations == 0
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options if options is not None else SandboxOptions()
        self._store = Store(
            _world_spec(self.options),
            self.options.state,
            sync_delay_s=self.options.sync_delay_s,
            clock=self.options.server_clock,
            seed=self.options.seed_integrations,
            masked=self.options.masked_fields,
        )
        self._limiter = FixedWindowLimiter(
            global_limit=self.options.global_limit,
            route_limit=self.options.route_limit,
            window_s=self.options.window_s,
            clock=self.options.server_clock,
            token_limit=self.options.token_limit,
            background=self.options.background_rate,
        )
        self._rng = random.Random(self.options.seed)
        self._counters = Counters()
        self.responses: list[RecordedResponse] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.app = self._make_app()

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r})" if self._runner else "Sandbox(not started)"

    def _make_app(self) -> web.Application:
        options = self.options
        routes: dict[AbstractRoute, ApiRoute] = {}
        app = web.Application(
            middlewares=[
                middlewares.server_date(options.server_clock),
                middlewares.unmatched,
                middlewares.accounting(
                    routes, self._counters, self.responses if options.record else None
                ),
                middlewares.authentication(routes, options.token, echo_token=options.echo_token),
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
        handlers = Handlers(self._store, self._rng, drop_after_commit=options.drop_after_commit)
        for key, handler, beta in handlers.routes():
            method, pattern = key.split(" ", 1)
            route = app.router.add_route(method, pattern, handler)
            routes[route] = ApiRoute(key=key, beta=beta)
        app.router.add_get("/_sandbox/stats", self._stats_endpoint)
        app.router.add_get("/_sandbox/integrations", self._integrations_endpoint)
        app.router.add_post("/_sandbox/reset", self._reset_endpoint)
        return app

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
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
        store = self._store
        return {key: _as_model(store, record) for key, record in store.integrations.items()}

    def integration(
        self, project: str, environment: str, integration_key: str
    ) -> Integration | None:
        """The integration stored at one (project, environment, integration key), if any."""
        record = self._store.integrations.get((project, environment, integration_key))
        return None if record is None else _as_model(self._store, record)

    def reset(self) -> None:
        """Back to the integrations the sandbox started with; stats and windows cleared."""
        self._store.reset()
        self._counters.clear()
        self._limiter.reset()
        self.responses.clear()

    async def _stats_endpoint(self, request: web.Request) -> web.StreamResponse:
        return json_response(200, self.stats.to_json())

    async def _integrations_endpoint(self, request: web.Request) -> web.StreamResponse:
        return json_response(200, self._store.snapshot())

    async def _reset_endpoint(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return json_response(200, self.stats.to_json())
