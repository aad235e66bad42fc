"""What an application's runs know of the account, shared across calls with a TTL."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ldbulk.api.models import RedisConfig, Target
from ldbulk.engine.known import KnownIntegrations
from ldbulk.engine.provision import provision
from ldbulk.engine.report import Outcome
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport

BASE = "http://127.0.0.1:9"
LIST = "/api/v2/integration-capabilities/big-segment-store"
CREATE = re.compile(rf"{re.escape(LIST)}/web/([^/]+)/redis$")
ONE = re.compile(rf"{re.escape(LIST)}/web/([^/]+)/redis/[^/]+$")
CONFIG = RedisConfig(host="redis.internal")


def target(environment: str) -> Target:
    return Target(project="web", environment=environment, config=CONFIG, on=True)


def integration(environment: str, *, with_config: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "_id": f"id-{environment}", "integrationKey": "redis", "projectKey": "web",
        "environmentKey": environment, "on": True, "tags": [], "name": "", "version": 1,
        "_status": {"available": False, "potentiallyStale": False}, "_links": {},
    }
    if with_config:
        item["config"] = {"host": "redis.internal", "port": "6379", "tlsEnabled": False,
                          "username": "", "password": ""}
    return item


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mocked() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def client(mocked: MemoryTransport) -> Client:
    return Client(token="api-unit-test-token", base_url=BASE, transport=mocked,
                  retry=RetryPolicy(backoff_base_s=0.001, backoff_cap_s=0.001))


def calls(mocked: MemoryTransport) -> list[str]:
    return [f"{r.method} {r.url.removeprefix(BASE + LIST) or '(list)'}" for r in mocked.requests]


async def test_a_fresh_listing_and_the_runs_own_creates_stand_in_for_the_next_listing(
    client: Client, mocked: MemoryTransport
) -> None:
    clock = Clock()
    known = KnownIntegrations(ttl_s=60, clock=clock)
    mocked.add("GET", LIST, json={"items": [integration("prod")], "_links": {}})
    mocked.add("POST", CREATE, status=201, json=integration("dev"))
    mocked.add("GET", ONE, json=integration("prod", with_config=True), repeat=True)
    async with client:
        first = await provision(client, [target("prod"), target("dev")], list_first=True,
                                known=known)
        mocked.requests.clear()
        clock.now = 30.0
        mocked.add("GET", ONE, json=integration("dev", with_config=True))
        second = await provision(client, [target("dev"), target("prod")], known=known)
    assert [r.outcome for r in first.results] == [Outcome.UNCHANGED, Outcome.CREATED]
    # No listing and no create: both ids were known, each is read by id.
    assert [r.outcome for r in second.results] == [Outcome.UNCHANGED] * 2
    assert calls(mocked) == ["GET /web/dev/redis/id-dev", "GET /web/prod/redis/id-prod"]


async def test_after_its_ttl_what_is_known_is_listed_again(
    client: Client, mocked: MemoryTransport
) -> None:
    clock = Clock()
    known = KnownIntegrations(ttl_s=60, clock=clock)
    mocked.add("GET", LIST, json={"items": [integration("prod")], "_links": {}}, repeat=True)
    mocked.add("GET", ONE, json=integration("prod", with_config=True), repeat=True)
    async with client:
        await provision(client, [target("prod")], list_first=True, known=known)
        clock.now = 61.0
        mocked.requests.clear()
        await provision(client, [target("prod")], list_first=True, known=known)
    assert calls(mocked) == ["GET (list)", "GET /web/prod/redis/id-prod"]


def test_a_delete_forgets_and_an_unknown_id_teaches_nothing() -> None:
    from ldbulk.api.models import Integration
    from ldbulk.engine.report import TargetResult

    known = KnownIntegrations(ttl_s=10, clock=lambda: 0.0)
    assert known.fresh() is None  # never listed
    known.listed([Integration(id="a", project_key="web", environment_key="prod",
                              integration_key="redis")])
    row = {"project": "web", "environment": "prod", "integration": "redis"}
    known.settled(TargetResult(**row, outcome=Outcome.EXISTS))  # no id: nothing learned
    assert len(known) == 1
    known.settled(TargetResult(**row, outcome=Outcome.DELETED, integration_id="a"))
    assert known.fresh() == []
