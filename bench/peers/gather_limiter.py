"""A naive concurrent script: ``asyncio.gather`` over every target, a fixed-rate limiter.

What a hurried user writes: every target at once under an ``aiolimiter.AsyncLimiter`` set to a
guessed rate (LaunchDarkly publishes no numbers; 20 requests per second sounds polite), and on
a 429 an exponential backoff that ignores the rate-limit headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import aiohttp
from aiolimiter import AsyncLimiter

from bench.peers.common import Pair, PeerResult, create_data, create_headers, create_url

RATE_PER_S: Final = 20.0
MAX_ATTEMPTS: Final = 10
BACKOFF_BASE_S: Final = 1.0
BACKOFF_CAP_S: Final = 30.0


async def run(
    base_url: str, token: str, pairs: Sequence[Pair], *, rate_per_s: float = RATE_PER_S
) -> PeerResult:
    """Create every pair's integration, all at once under the limiter."""
    result = PeerResult()
    headers = create_headers(token)
    data = create_data()
    limiter = AsyncLimiter(rate_per_s, 1.0)

    async def create(session: aiohttp.ClientSession, project: str, environment: str) -> None:
        url = create_url(base_url, project, environment)
        for attempt in range(MAX_ATTEMPTS):
            async with limiter:
                result.requests += 1
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    status = response.status
            if status == 429:
                result.throttled += 1
                await asyncio.sleep(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))
                continue
            if status == 201:
                result.created += 1
            else:
                result.failed += 1
            return
        result.failed += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(create(session, project, env) for project, env in pairs))
    return result
