"""The floor for client overhead: a bare aiohttp loop with a fixed number of creates in flight.

No pacing, no retries, no models: post, read the body, take the new id. Any provisioning code
does at least this much per request, so ldbulk's CPU per request is measured against it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import aiohttp

from bench.peers.common import Pair, PeerResult, create_data, create_headers, create_url


async def run(base_url: str, token: str, pairs: Sequence[Pair], *, concurrency: int) -> PeerResult:
    """Create every pair's integration with ``concurrency`` workers."""
    result = PeerResult()
    headers = create_headers(token)
    data = create_data()
    todo = iter(pairs)

    async def worker(session: aiohttp.ClientSession) -> None:
        for project, environment in todo:
            result.requests += 1
            url = create_url(base_url, project, environment)
            async with session.post(url, data=data, headers=headers) as response:
                body = await response.read()
                if response.status == 201 and json.loads(body)["_id"]:
                    result.created += 1
                else:
                    result.failed += 1

    # As many connections as creates in flight: aiohttp's default pool of 100 would cap a
    # larger concurrency without a word.
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return result
