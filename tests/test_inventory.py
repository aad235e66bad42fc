"""The account's listing as the engine keeps it: settling listings shared and spaced."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from ldbulk.api.models import RedisConfig, Target
from ldbulk.api.sansio import RawResponse
from ldbulk.engine.inventory import LISTING_SHARE
from ldbulk.engine.provision import Provisioner
from ldbulk.http.client import Client
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.transport import MemoryTransport, SentRequest, canned

LIST = "/api/v2/integration-capabilities/big-segment-store"
CREATE = re.compile(rf"{re.escape(LIST)}/web/([^/]+)/redis$")
LISTING_S = 1.0  # what one listing of the account takes


def _integration(environment: str) -> dict[str, object]:
    return {
        "_id": f"id-{environment}", "integrationKey": "redis", "projectKey": "web",
        "environmentKey": environment, "on": True, "tags": [], "name": "", "version": 1,
        "_links": {},
    }  # fmt: skip


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
            return canned(json={"items": [_integration(e) for e in self.created], "_links": {}})
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
