"""Small batches go create-first: the rule (pure), the run in memory, and against a sandbox of
100,000 integrations."""

from __future__ import annotations

import asyncio
import re

from conftest import SandboxFactory, integration, listing, target

from ldbulk.api.sansio import ROUTE_CREATE, ROUTE_GET, ROUTE_LIST
from ldbulk.engine.batch import (
    CREATE_FIRST_KNOWN_MAX,
    CREATE_FIRST_MAX,
    LISTED_PER_TARGET,
    creates_first,
    known_count,
)
from ldbulk.engine.provision import Provisioner, provision
from ldbulk.engine.report import Outcome
from ldbulk.errors import TransportError
from ldbulk.http.client import Client
from ldbulk.http.transport import MemoryTransport

LIST = "/api/v2/integration-capabilities/big-segment-store"
CREATE = re.compile(rf"{re.escape(LIST)}/([^/]+)/([^/]+)/redis$")
ONE = re.compile(rf"{re.escape(LIST)}/([^/]+)/([^/]+)/redis/[^/]+$")


CONFLICT = {"code": "conflict", "message": "already exists", "id": "req-1"}


def sent(mocked: MemoryTransport) -> list[str]:
    return [request.method for request in mocked.requests]


# -- the rule -------------------------------------------------------------------------------


def test_a_few_targets_in_an_account_never_listed_go_create_first() -> None:
    assert creates_first(targets=1, account_size=None, needs_listing=False)
    assert creates_first(targets=CREATE_FIRST_MAX, account_size=None, needs_listing=False)


def test_more_targets_than_the_small_batch_list_first_in_an_account_of_unknown_size() -> None:
    assert not creates_first(targets=CREATE_FIRST_MAX + 1, account_size=None, needs_listing=False)


def test_an_account_known_to_be_large_takes_larger_batches_create_first() -> None:
    assert creates_first(targets=100, account_size=100_000, needs_listing=False)
    assert creates_first(targets=CREATE_FIRST_KNOWN_MAX, account_size=10**6, needs_listing=False)
    assert not creates_first(targets=CREATE_FIRST_KNOWN_MAX + 1, account_size=10**9,
                             needs_listing=False)


def test_an_account_known_to_be_small_lists_first() -> None:
    # Its listing is cheap and tells every target's fate at once.
    assert not creates_first(targets=2, account_size=2 * LISTED_PER_TARGET - 1,
                             needs_listing=False)
    assert creates_first(targets=2, account_size=2 * LISTED_PER_TARGET, needs_listing=False)


def test_targets_of_unknown_number_or_a_run_that_needs_the_listing_list_first() -> None:
    assert not creates_first(targets=None, account_size=None, needs_listing=False)
    assert not creates_first(targets=1, account_size=None, needs_listing=True)


def test_only_a_collection_is_counted() -> None:
    assert known_count([target("a"), target("b")]) == 2
    assert known_count(iter([target("a")])) is None


# -- the run, in memory ---------------------------------------------------------------------


async def test_a_new_target_is_one_create_and_no_listing(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("POST", CREATE, status=201, json=integration("prod"))
    async with client:
        report = await provision(client, [target("prod")])
    (result,) = report.results
    assert result.outcome is Outcome.CREATED and result.integration_id == "id-prod"
    assert sent(mocked) == ["POST"]
    assert report.stats.requests == 1


async def test_a_409_is_exists_without_a_listing_when_create_only(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("POST", CREATE, status=409, json=CONFLICT)
    async with client:
        report = await provision(client, [target("prod")], create_only=True)
    (result,) = report.results
    assert result.outcome is Outcome.EXISTS and result.status == 409
    assert sent(mocked) == ["POST"]


async def test_a_409_when_converging_lists_for_the_id_then_reads_that_one(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("POST", CREATE, status=409, json=CONFLICT)
    mocked.add("GET", LIST, json=listing(integration("prod", id="there")))
    mocked.add("GET", ONE, json=integration("prod", id="there", with_config=True))
    async with client:
        report = await provision(client, [target("prod")])
    (result,) = report.results
    assert result.outcome is Outcome.UNCHANGED and result.integration_id == "there"
    assert [(r.method, r.url.endswith("/there")) for r in mocked.requests] == [
        ("POST", False), ("GET", False), ("GET", True)
    ]


async def test_an_unclear_create_is_settled_by_a_listing_never_sent_again_blindly(
    client: Client, mocked: MemoryTransport
) -> None:
    # The answer is lost on every try: the last is settled by the listing, which finds it.
    mocked.add("POST", CREATE, error=TransportError, repeat=True)
    mocked.add("GET", LIST, json=listing(integration("prod", id="ours")))
    async with client:
        report = await provision(client, [target("prod")])
    (result,) = report.results
    assert result.outcome is Outcome.CREATED and result.integration_id == "ours"
    assert sent(mocked) == ["POST"] * 3 + ["GET"]


async def test_list_first_keeps_the_listing_before_any_create(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing())
    mocked.add("POST", CREATE, status=201, json=integration("prod"))
    async with client:
        await provision(client, [target("prod")], list_first=True)
    assert sent(mocked) == ["GET", "POST"]


async def test_after_a_listing_of_a_small_account_a_small_batch_lists_first(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", LIST, json=listing(integration("dev")), repeat=True)
    mocked.add("POST", CREATE, status=201, json=integration("prod"))
    async with client:
        await client.list_integrations()
        assert client.account_size == 1
        await provision(client, [target("prod")])
    assert sent(mocked) == ["GET", "GET", "POST"]


# -- against a sandbox holding 100,000 integrations -----------------------------------------


async def test_one_new_store_in_an_account_of_100000_is_one_request_and_five_tasks_create_once(
    make_sandbox: SandboxFactory,
) -> None:
    # 100,005 environments, the first 100,000 holding an integration each.
    sandbox = await make_sandbox(projects=1, environments=100_006,
                                 seed_integrations=100_000, record=False)
    fresh = [f"env-{number}" for number in range(100_001, 100_007)]
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report = await provision(client, [target(fresh[0], "proj-001")])
        (result,) = report.results
        assert result.outcome is Outcome.CREATED
        assert report.stats.requests == 1
        assert sandbox.stats.total == 1 and sandbox.stats.count(ROUTE_LIST, 200) == 0

        # Five tasks sharing the client, one new environment each.
        reports = await asyncio.gather(*(
            Provisioner(client).run([target(environment, "proj-001")])
            for environment in fresh[1:]
        ))
    assert [r.results[0].outcome for r in reports] == [Outcome.CREATED] * 5
    stats = sandbox.stats
    assert stats.count(ROUTE_CREATE, 201) == 6 and stats.total == 6
    assert stats.count(ROUTE_LIST, 200) == 0 and stats.count(ROUTE_GET, 200) == 0
    assert stats.integrations == 100_006
