"""The account's integrations, listed once and refreshed on demand, by target key."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import Coroutine
from typing import Any, Final

from ldbulk.api.models import Integration
from ldbulk.engine.report import Key
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope

# How long a settling listing waits before it is sent, so that creates failing about together
# (their answers arrive a few milliseconds apart) share one listing that went out after each.
BATCH_S: Final = 0.02
# A settling listing reads the whole account (20,000 integrations: about a second of client
# and server time), so the next one waits until the last took at most this share of the time
# since it began: lost answers spread over a run share a few listings, not one each. Small
# accounts list in milliseconds and settle at once; large ones about once per window or less.
LISTING_SHARE: Final = 0.1
# The longest a settling listing waits for its spacing: one rate-limit window. Creates that
# await it hold their targets open, and after a slow listing (a loaded server, a link that
# was down) a run must go on within a window, not nine times that listing's time.
SETTLE_WAIT_MAX_S: Final = 10.0


class Inventory:
    """The account's integrations by (project, environment, integration key), from list-all.

    Refreshes are single-flight: when many creates fail at once, they share one list request
    sent after all of them failed, instead of sending one each. Settling listings are spaced
    by the time the last one took (:data:`LISTING_SHARE`); an unclear create waits for the
    next, with every other one that comes up meanwhile. That wait is at most
    :data:`SETTLE_WAIT_MAX_S`; a listing that failed (timed out) sets none, and a stopped run
    waits none.
    """

    def __init__(self, client: Client, scope: RequestScope | None = None) -> None:
        self._client = client
        self._scope = scope
        self._found: dict[Key, Integration] = {}
        # The latest settling listing's outcome, for everyone it answers.
        self._refresh: asyncio.Future[None] | None = None
        self._sent_after = -1.0  # the latest listing's request goes out no earlier than this
        self._next_at = -1.0  # the next settling listing goes out no earlier than this
        # The run's task group, where settling listings run (see serve_in).
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, key: Key) -> str | None:
        """The id of the integration at ``key`` as of the last listing, if any."""
        found = self._found.get(key)
        return found.id if found is not None else None

    def integration(self, key: Key) -> Integration | None:
        """The integration at ``key`` as the last listing gave it (no ``config``), if any."""
        return self._found.get(key)

    def adopt(self, integrations: list[Integration]) -> None:
        """Take ``integrations`` as the first listing (what an application already knew of
        the account, see :mod:`ldbulk.engine.known`); a settling listing still lists."""
        self._found = {key_of(integration): integration for integration in integrations}

    def integrations(self) -> list[Integration]:
        """Every integration of the last listing. Those this run created are not added: a run
        of 100,000 creates would keep a record of each for nothing (a prune leaves them alone
        as targets, and a listing settling an unclear create reads them anew)."""
        return list(self._found.values())

    def serve_in(self, group: asyncio.TaskGroup) -> None:
        """Run the settling listings in ``group``, the run's: they serve many of its targets,
        so they belong to none of them, and end with the run at the latest."""
        self._group = group

    async def refresh(self, *, newer_than: float | None = None) -> None:
        """The first listing (no ``newer_than``), bound to the run's stop signal; or a listing
        sent after ``newer_than``, shared with every caller it can answer.

        The first listing comes before anything else needs one, so its caller sends it. A
        settling listing is the one request a stopped run still sends (it tells whether an
        unclear create was applied), so it is only counted for the run, not stopped with it;
        it is abandoned with the rest when the stop's grace runs out.
        """
        if newer_than is None:
            await self._list(self._scope)
            return
        listing = self._refresh
        if listing is None or self._sent_after < newer_than:
            counted = self._scope.settling() if self._scope is not None else None
            listing = self._start(self._settle(listing, counted))
        # Waited for, not owned: a caller cancelled leaves the listing to the others.
        await asyncio.wait([listing])
        listing.result()

    async def aclose(self) -> None:
        """Cancel the listings still under way (their waiters are gone), and wait for them."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start(self, listing: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        # Not sent yet: whoever asks before it is sent is answered by it.
        self._sent_after = math.inf
        assert self._group is not None, "settling listings run in the run's group (serve_in)"
        outcome = self._refresh = asyncio.get_running_loop().create_future()
        # In a context of its own: it serves many targets, so its wait for the pacer is none
        # of theirs (a copy of the context that started it would charge it to that one
        # target, see :func:`ldbulk.http.pacer.tallying_waits`).
        task = self._group.create_task(_told(listing, outcome), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return outcome

    async def _settle(
        self, previous: asyncio.Future[None] | None, scope: RequestScope | None
    ) -> None:
        """A settling listing: after the one before it has ended, and its spacing."""
        loop = asyncio.get_running_loop()
        if previous is not None:
            await asyncio.wait([previous])  # its error is its own waiters'
        spacing = min(self._next_at - loop.time(), SETTLE_WAIT_MAX_S)
        stop = self._scope.stop if self._scope is not None else None
        await _sleep_unless(stop, max(BATCH_S, spacing))
        await self._list(scope)

    async def _list(self, scope: RequestScope | None) -> None:
        loop = asyncio.get_running_loop()
        self._sent_after = loop.time()
        took: list[float] = []
        # Lean and streamed: an account of 250,000 integrations is never one body.
        integrations = await self._client.list_integrations(lean=True, scope=scope, took=took)
        self._found = {key_of(integration): integration for integration in integrations}
        # What the answered try cost: not its wait for a turn under the rate limits, nor a
        # try that timed out (it cost the server nothing, and once the link is back its
        # timeout must not hold the next listing back).
        self._next_at = loop.time() + took[0] * (1 / LISTING_SHARE - 1)


async def _sleep_unless(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set: a stopped run's settling listing goes
    at once, within the stop's grace, rather than after its spacing."""
    if stop is None or stop.is_set():
        await asyncio.sleep(BATCH_S if stop is not None else seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _told(listing: Coroutine[Any, Any, None], outcome: asyncio.Future[None]) -> None:
    """Run a shared listing, its outcome (an error too) told through ``outcome`` to those
    who wait for it: an error of theirs, never the run's."""
    try:
        await listing
    except Exception as exc:
        outcome.set_exception(exc)
        outcome.exception()  # told to whoever waits; nobody left waiting is no error
    except BaseException:
        outcome.cancel()
        raise
    else:
        outcome.set_result(None)


def key_of(integration: Integration) -> Key:
    """The target key an integration sits at."""
    return (integration.project_key, integration.environment_key, integration.integration_key)
