"""The Terraform provider's policy: one request at a time, sleep out 429s, retry POSTs on 5xx.

A ``terraform apply`` over many ``launchdarkly_*`` resources of one provider serializes on
the provider's client here: one request in flight; on a 429 it sleeps until
``X-Ratelimit-Reset`` plus a random jitter of up to the same wait; on a 5xx it retries the
POST blindly with exponential backoff (an HTTP client's default, which does not know a POST
may have been applied). A 409 after such a retry counts as created: the first try landed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Final

import aiohttp

from bench.peers.common import Pair, PeerResult, create_data, create_headers, create_url, reset_wait

MAX_RETRIES: Final = 10
BACKOFF_MIN_S: Final = 1.0
BACKOFF_MAX_S: Final = 30.0


async def run(base_url: str, token: str, pairs: Sequence[Pair]) -> PeerResult:
    """Create every pair's integration, one request at a time."""
    result = PeerResult()
    headers = create_headers(token)
    data = create_data()
    async with aiohttp.ClientSession() as session:
        for project, environment in pairs:
            url = create_url(base_url, project, environment)
            retried_5xx = False
            for attempt in range(MAX_RETRIES + 1):
                result.requests += 1
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    status = response.status
                    response_headers = response.headers
                if status == 201 or (status == 409 and retried_5xx):
                    result.created += 1
                    break
                if status == 429:
                    result.throttled += 1
                    wait = reset_wait(response_headers, time.time())
                    if wait is None:
                        wait = BACKOFF_MIN_S * 2**attempt
                    await asyncio.sleep(wait + random.uniform(0, wait))
                    continue
                if status >= 500:
                    retried_5xx = True
                    await asyncio.sleep(min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2**attempt))
                    continue
                result.failed += 1
                break
            else:
                result.failed += 1
    return result
