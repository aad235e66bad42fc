"""A webhook-style reconciler: each event names environments whose store must match the wish;
a worker converges them in the background (creating what is missing, patching what drifted).

    POST /webhook  {"environments": [{"project": "p", "environment": "e"}, ...]}  ->  202

The webhook answers at once; the worker takes what accumulated since its last pass and
provisions it in one run on the application's one shared client. At shutdown it drains: the
``stop`` event ends the run under way gracefully (nothing more sent, the rest ``skipped`` and
retried by the next start), rather than cancelling requests mid-flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

import ldbulk

log = logging.getLogger("reconciler")

class Reconciler:
    """Environments waiting to be converged, and the worker that converges them."""

    def __init__(self, client: ldbulk.Client, config: ldbulk.RedisConfig) -> None:
        self.client = client
        self.config = config
        self.pending: set[tuple[str, str]] = set()
        self.wake = asyncio.Event()
        self.stop = asyncio.Event()
        self.reports: list[ldbulk.Report] = []
        self.passed = asyncio.Event()  # set after each pass (a health check, a test)

    def notify(self, environments: list[tuple[str, str]]) -> None:
        """Queue environments to converge (a repeated one is converged once)."""
        self.pending.update(environments)
        self.wake.set()

    async def run(self) -> None:
        """Converge what is pending, pass after pass, until stopped."""
        while not self.stop.is_set():
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = sorted(self.pending), set()
            if not batch:
                continue
            targets = [
                ldbulk.Target(project=p, environment=e, config=self.config, on=True)
                for p, e in batch
            ]
            report = await ldbulk.provision(self.client, targets, stop=self.stop,
                                            on_result=self._logged)
            self.reports.append(report)
            self.passed.set()

    def _logged(self, result: ldbulk.TargetResult) -> None:
        log.info("%s/%s: %s", result.project, result.environment, result.outcome.value)
        if result.outcome is ldbulk.Outcome.SKIPPED:
            self.pending.add((result.project, result.environment))  # for the next start


RECONCILER = web.AppKey("reconciler", Reconciler)


def make_app(config: ldbulk.RedisConfig, **client_options: object) -> web.Application:
    """The webhook application; ``client_options`` go to :class:`ldbulk.Client`."""
    app = web.Application()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with ldbulk.Client(**client_options) as client:  # type: ignore[arg-type]
            reconciler = app[RECONCILER] = Reconciler(client, config)
            worker = asyncio.create_task(reconciler.run())
            yield
            reconciler.stop.set()
            reconciler.wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhook", webhook)
    return app


async def webhook(request: web.Request) -> web.Response:
    """Accept an event naming environments; converge them in the background."""
    body = await request.json()
    try:
        named = [(item["project"], item["environment"]) for item in body["environments"]]
    except (KeyError, TypeError):
        raise web.HTTPBadRequest(
            text="expected {'environments': [{project, environment}]}"
        ) from None
    request.app[RECONCILER].notify(named)
    return web.json_response({"queued": len(named)}, status=202)
