"""The examples run against the sandbox: the service that provisions on request, and the
webhook reconciler."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from aiohttp.test_utils import TestClient, TestServer
from conftest import SandboxFactory

from ldbulk import Outcome, RedisConfig
from ldbulk.api.sansio import ROUTE_CREATE, ROUTE_LIST
from ldbulk.sandbox import Sandbox

EXAMPLES = Path(__file__).parent.parent / "examples"
CONFIG = RedisConfig(host="redis.internal")


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def options(sandbox: Sandbox) -> dict[str, str]:
    return {"token": sandbox.token, "base_url": sandbox.url}


async def test_the_service_provisions_a_store_per_request_on_one_client(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=4)
    app = example("service").make_app(CONFIG, **options(sandbox))
    async with TestClient(TestServer(app)) as http:
        answers = await asyncio.gather(*(
            http.post(f"/stores/proj-001/env-00{n}") for n in (1, 2, 3)
        ))
        bodies = [await answer.json() for answer in answers]
        again = await (await http.post("/stores/proj-001/env-001")).json()
        missing = await http.post("/stores/proj-001/env-404")
    assert [body["outcome"] for body in bodies] == ["created"] * 3
    assert all(body["ok"] and body["requests"] == 1 for body in bodies)
    assert again["outcome"] == "exists" and again["ok"]
    assert missing.status == 502
    # One create per request, and no listing of the account.
    assert sandbox.stats.count(ROUTE_CREATE, 201) == 3
    assert sandbox.stats.count(ROUTE_LIST, 200) == 0


async def test_the_reconciler_converges_what_webhooks_name_and_drains_at_shutdown(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=3)
    module = example("reconciler")
    app = module.make_app(CONFIG, **options(sandbox))
    async with TestClient(TestServer(app)) as http:
        event = {"environments": [{"project": "proj-001", "environment": "env-001"},
                                  {"project": "proj-001", "environment": "env-002"}]}
        answer = await http.post("/webhook", json=event)
        assert answer.status == 202
        bad = await http.post("/webhook", json={"nothing": 1})
        assert bad.status == 400
        reconciler = app[module.RECONCILER]
        async with asyncio.timeout(10):
            await reconciler.passed.wait()
    (report,) = reconciler.reports
    assert report.ok
    assert [result.outcome for result in report.results] == [Outcome.CREATED] * 2
    assert sandbox.stats.integrations == 2
