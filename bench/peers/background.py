"""Another client of the account, for a while: creates at a steady pace, then stops.

It stands for whatever else spends the account's budget while an ldbulk run is under way (a CI
job, a Terraform apply) and then goes away: the run must give the budget it left back to
itself. Requests go at fixed moments, whatever their answers (a 429 is counted, not retried):
its spending is the same in every run of the benchmark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from bench.peers.common import Pair, PeerResult, create_data, create_headers, create_url


async def run(base_url: str, token: str, pairs: Sequence[Pair], *, per_s: float) -> PeerResult:
    """One create per pair, ``per_s`` a second from now; then stop."""
    result = PeerResult()
    headers = create_headers(token)
    data = create_data()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def create(session: aiohttp.ClientSession, index: int, pair: Pair) -> None:
        await asyncio.sleep(max(started + index / per_s - loop.time(), 0.0))
        result.requests += 1
        async with session.post(create_url(base_url, *pair), data=data, headers=headers) as answer:
            await answer.read()
            status = answer.status
        if status == 429:
            result.throttled += 1
        elif status in (200, 201, 409):
            result.created += 1
        else:
            result.failed += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(create(session, i, pair) for i, pair in enumerate(pairs)))
    return result
