"""How long an answer may take: a whole one, and one streamed in as it arrives.

A streamed answer (the account's listing, up to hundreds of thousands of integrations) is not
held to one fixed time: it earns more as it brings bytes, up to a cap, so a large listing on a
slow link gets what its size needs while one that stalls or drips ends as a timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import attrs

from ldbulk.api import sansio
from ldbulk.errors import ResponseFormatError


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long an answer may take, in seconds.

    - ``connect``: to open a connection.
    - ``total``: a whole answer, or the first bytes of a streamed one (the account's listing).
      It is also the longest a silent link holds a request: after a partition heals, a run
      goes on within it (plus a rate-limit window).
    - A streamed answer must then keep coming: each ``listing_min_rate`` bytes buy one more
      second, so a body dripping a byte every few seconds ends as a timeout, while a large
      listing on a slow link has all the time its size needs, up to ``listing`` in all.
    """

    connect: float = 10.0
    total: float = 20.0
    listing: float = 600.0
    listing_min_rate: float = 32 * 1024

    def streamed_deadline(self, started: float, received: int) -> float:
        """When a streamed answer that began at ``started`` and brought ``received`` bytes
        so far has had its time (loop time)."""
        earned = received / self.listing_min_rate
        return started + min(self.total + earned, self.listing)


def too_slow(t: Timeouts, received: int, elapsed: float) -> str:
    """Why a streamed answer was given up, in numbers."""
    return (
        f"answer too slow: {received} bytes in {elapsed:.1f} s (a listing must start "
        f"within {t.total:g} s, then bring {t.listing_min_rate / 1024:g} KiB/s, and end "
        f"within {t.listing:g} s)"
    )


@attrs.define
class Progress:
    """Bytes of a streamed answer received so far."""

    received: int = 0


async def stream(
    response: aiohttp.ClientResponse,
    sink: sansio.BodySink,
    progress: Progress,
    timeouts: Timeouts,
    started: float,
    deadline: asyncio.Timeout,
) -> Any:
    """Feed the body to ``sink`` as it arrives: what it made of it, or the
    :class:`~ldbulk.errors.ResponseFormatError` it raised (then the rest is not read).

    Each chunk moves ``deadline`` on by what it earned (:meth:`Timeouts.streamed_deadline`):
    a body that stalls or drips runs out of time, whatever its per-read waits."""
    try:
        async for chunk in response.content.iter_any():
            progress.received += len(chunk)
            deadline.reschedule(timeouts.streamed_deadline(started, progress.received))
            sink.feed(chunk)
        return sink.close()
    except ResponseFormatError as exc:
        return exc
