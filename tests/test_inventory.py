"""The account's listing as the engine keeps it: settling listings shared and spaced."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest
from conftest import integration

from ldbulk.api.models import RedisConfig, Target
from ldbulk.api.sansio import RawResponse
from ldbulk.engine.inventory import LISTING_SHARE, SETTLE_WAIT_MAX_S
from ldbulk.engine.provision import Provisioner
from ldbulk.engine.report import Outcome, Report
from ldbulk.errors import RequestTimeout, TransportError
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.scope import STOP_GRACE_S
from ldbulk.http.transport import MemoryTransport, SentRequest, canned

LIST = "/api/v2/integration-capabilities/big-segment-store"
CREATE = re.compile(rf"{re.escape(LIST)}/web/([^/]+)/redis$")
LISTING_S = 1.0  # what one listing of the account takes


class LosingAnswers:
    """An account where every create is applied but its first answer is a 502; target
    ``e<i>`` is answered ``i`` seconds after it is sent, so the lost answers are spread out."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.listings: list[float] = []  # when each listing was sent
        self.answered: set[str] = set()

    async def __call__(self, request: SentRequest) -> RawResponse:
        loop = asyncio.get_running_loop()
        if request.method == "GET":
            self.listings.append(loop.time())
            await asyncio.sleep(LISTING_S)
            return canned(json={"items": [integration(e) for e in self.created], "_links": {}})
        match = CREATE.fullmatch(request.path)
        assert match is not None
        environment = match[1]
        await asyncio.sleep(int(environment[1:]))
        if environment in self.created:
            return canned(409, json={"code": "conflict", "message": "exists"})
        self.created.append(environment)
        return canned(502, body=b"bad gateway")


@pytest.mark.looptime
async def test_lost_answers_spread_over_a_run_share_listings_spaced_by_their_cost() -> None:
    account = LosingAnswers()
    policy = RetryPolicy(backoff_base_s=0.001, backoff_cap_s=0.001, max_attempts=3)
    client = Client(token="t", base_url="http://127.0.0.1:9", retry=policy,
                    transport=MemoryTransport(account))  # fmt: skip
    config = RedisConfig(host="redis.internal")
    targets = [Target(project="web", environment=f"e{i}", config=config) for i in range(1, 21)]
    async with client:
        report = await Provisioner(client, concurrency=32).run(targets)
    assert report.counts["created"] == 20
    # Twenty 409s to creates whose answers were lost, over ~40 s: one listing each, before.
    settling = account.listings[1:]
    assert 1 <= len(settling) <= 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(account.listings)]
    # Each one waits out nine times what the one before it took: a tenth of the time listing.
    assert min(gaps) >= LISTING_S / LISTING_SHARE - 1e-6


class Partitioned:
    """The first listing is answered at once. A create is applied and its answer lost (every
    later try meets a 409). The second listing meets a
    partition: no answer for ``timeout_s``, then a timeout; every later one is answered in
    ``LISTING_S`` (or ``slow_s`` for the second, when that is set, instead of the partition)."""

    def __init__(self, *, timeout_s: float = 60.0, slow_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.slow_s = slow_s
        self.created: list[str] = []
        self.listings: list[float] = []
        self.conflicts: dict[str, float] = {}  # when each create met its 409

    async def __call__(self, request: SentRequest) -> RawResponse:
        loop = asyncio.get_running_loop()
        if request.method == "GET":
            self.listings.append(loop.time())
            if len(self.listings) == 2:
                if self.slow_s is not None:
                    await asyncio.sleep(self.slow_s)
                else:
                    await asyncio.sleep(self.timeout_s)
                    raise RequestTimeout("timed out (in memory)", method="GET", path=LIST)
            elif len(self.listings) > 2:
                await asyncio.sleep(LISTING_S)
            return canned(json={"items": [integration(e) for e in self.created], "_links": {}})
        match = CREATE.fullmatch(request.path)
        assert match is not None
        environment = match[1]
        if environment in self.created:
            self.conflicts[environment] = loop.time()
            return canned(409, json={"code": "conflict", "message": "exists"})
        self.created.append(environment)
        raise TransportError("connection reset (in memory)", method="POST", path=request.path)


async def _provision(account: Partitioned) -> Report:
    """e1, then e2 (one at a time): each create's answer is lost, and its 409 settled by a
    listing."""
    policy = RetryPolicy(backoff_base_s=0.001, backoff_cap_s=0.001)
    client = Client(token="t", base_url="http://127.0.0.1:9", retry=policy,
                    transport=MemoryTransport(account))  # fmt: skip
    config = RedisConfig(host="redis.internal")
    targets = [Target(project="web", environment=f"e{i}", config=config) for i in (1, 2)]
    async with asyncio.timeout(3600), client:
        return await Provisioner(client, list_first=True, concurrency=1).run(targets)


@pytest.mark.looptime
async def test_a_timed_out_listing_does_not_hold_the_next_one_back() -> None:
    # e1's settling listing times out after 60 s and is sent again (answered in 1 s): e2's,
    # right after, waits for what that answered one took (9 x 1 s), not 9 x 61 s.
    account = Partitioned(timeout_s=60.0)
    report = await _provision(account)
    assert report.counts["created"] == 2
    assert account.listings[-1] - account.conflicts["e2"] <= LISTING_S / LISTING_SHARE + 0.1


@pytest.mark.looptime
async def test_the_wait_for_a_settling_listing_is_at_most_one_window() -> None:
    # e1's settling listing is answered, slowly (50 s: a loaded server): the next one, for
    # e2's 409 right after, waits at most SETTLE_WAIT_MAX_S, not nine times those 50 s.
    account = Partitioned(slow_s=50.0)
    report = await _provision(account)
    assert report.counts["created"] == 2
    assert account.listings[-1] - account.conflicts["e2"] <= SETTLE_WAIT_MAX_S + 0.1


@pytest.mark.looptime
async def test_a_stop_sends_the_settling_listing_at_once_rather_than_after_its_spacing() -> None:
    # The first listing takes 1 s, so the next waits 9 s; e2's answer is lost at 2 s, and the
    # run is stopped at 3 s: its settling listing goes then, and is answered within the
    # stop's grace.
    async def account(request: SentRequest) -> RawResponse:
        listings.append(asyncio.get_running_loop().time())
        if request.method == "GET":
            await asyncio.sleep(LISTING_S if len(listings) == 1 else STOP_GRACE_S / 4)
            return canned(json={"items": [integration(e) for e in created], "_links": {}})
        await asyncio.sleep(1.0)
        created.append("e2")
        raise TransportError("connection reset (in memory)", method="POST", path=request.path)

    listings: list[float] = []
    created: list[str] = []
    policy = RetryPolicy(max_attempts=1)
    client = Client(token="t", base_url="http://127.0.0.1:9", retry=policy,
                    transport=MemoryTransport(account))  # fmt: skip
    target = Target(project="web", environment="e2", config=RedisConfig(host="redis.internal"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + 3.0, stop.set)
    async with asyncio.timeout(3600), client:
        report = await Provisioner(client).run([target], stop=stop)
    assert [r.outcome for r in report.results] == [Outcome.CREATED]
    assert listings[-1] <= 3.0 + STOP_GRACE_S
