"""The user's ceiling (``--max-rate``) on the real clock.

Not under looptime: aiolimiter's bucket, with several requests waiting in it, sets its timer
again and again when a fast-forwarded clock runs it early. The waits here are a fraction of a
second, and only lower bounds are asserted: a busy machine makes the gaps longer, never shorter.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from ldbulk.api.limits import RateLimitState
from ldbulk.http.pacer import Pacer

ROUTE = "POST /route"


async def test_the_users_ceiling_spaces_what_a_reopened_gate_lets_go() -> None:
    """Requests held by a 429 must not have taken their turns from the ceiling meanwhile,
    to go out all together when the gate opens."""
    pacer = Pacer(max_per_window=50, jitter_s=0.0)  # one every 0.2 s
    pacer.observe(ROUTE, 200, RateLimitState())  # past slow start, no budget named
    await pacer.acquire(ROUTE)
    reset_ms = int((time.time() + 0.3) * 1000)
    pacer.observe(ROUTE, 429, RateLimitState(reset_ms=reset_ms))
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await pacer.acquire(ROUTE)
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(4)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(times))]
    assert all(gap >= 0.15 for gap in gaps), gaps
