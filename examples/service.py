"""A small aiohttp service that gives a new environment its big segment store, on request.

    POST /stores/{project}/{environment}   ->   {"outcome": "created", "ok": true, ...}

One ``ldbulk.Client`` lives as long as the application (opened in ``cleanup_ctx``) and every
request shares it: a single request is a small batch, so it costs one create and no listing of
the account. Run it with the sandbox's variables set (``ldbulk sandbox --print-env``)::

    LD_BASE_URI=... LD_ACCESS_TOKEN=... REDIS_HOST=redis.internal python examples/service.py
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

import ldbulk

CLIENT = web.AppKey("client", ldbulk.Client)
CONFIG = web.AppKey("config", ldbulk.RedisConfig)


def make_app(config: ldbulk.RedisConfig, **client_options: object) -> web.Application:
    """The application: ``config`` is the store every environment gets; ``client_options``
    go to :class:`ldbulk.Client` (by default it reads LD_ACCESS_TOKEN and LD_BASE_URI)."""
    app = web.Application()
    app[CONFIG] = config

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        # Entered once for the application's life, closed at its shutdown.
        async with ldbulk.Client(**client_options) as client:  # type: ignore[arg-type]
            app[CLIENT] = client
            yield

    app.cleanup_ctx.append(client_context)
    app.router.add_post("/stores/{project}/{environment}", provision_store)
    return app


async def provision_store(request: web.Request) -> web.Response:
    """Give one environment its store; 200 when it is there, 502 when LaunchDarkly refused."""
    target = ldbulk.Target(
        project=request.match_info["project"],
        environment=request.match_info["environment"],
        config=request.app[CONFIG],
        on=True,
    )
    report = await ldbulk.provision(request.app[CLIENT], [target], create_only=True)
    (result,) = report.results
    body = {
        "outcome": result.outcome.value,
        "ok": result.ok,
        "integration_id": result.integration_id,
        "requests": report.stats.requests,
        "error": result.error.message if result.error is not None else None,
    }
    return web.json_response(body, status=200 if result.ok else 502)


if __name__ == "__main__":
    web.run_app(make_app(ldbulk.RedisConfig(host=os.environ.get("REDIS_HOST", "localhost"))))
