"""The account's integrations, listed once and refreshed on demand, by target key."""

from __future__ import annotations

import asyncio
import contextlib

from ldbulk.api.models import Integration
from ldbulk.engine.report import Key
from ldbulk.errors import LdbulkError
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope


class Inventory:
    """The account's integrations by (project, environment, integration key), from list-all.

    Refreshes are single-flight: when many creates fail at once, they share one list request
    that started after all of them failed, instead of sending one each.
    """

    def __init__(self, client: Client, scope: RequestScope | None = None) -> None:
        self._client = client
        self._scope = scope
        self._ids: dict[Key, str] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._refresh_started = -1.0

    def get(self, key: Key) -> str | None:
        """The id of the integration at ``key`` as of the last listing, if any."""
        return self._ids.get(key)

    def add(self, integration: Integration) -> None:
        """Record an integration this run created."""
        self._ids[key_of(integration)] = integration.id

    async def refresh(self, *, newer_than: float | None = None) -> None:
        """List the integrations again, unless a listing started after ``newer_than`` will do."""
        loop = asyncio.get_running_loop()
        if self._refresh is not None and (
            newer_than is None or self._refresh_started >= newer_than
        ):
            await asyncio.shield(self._refresh)
            return
        self._refresh_started = loop.time()
        self._refresh = asyncio.ensure_future(self._load())
        await asyncio.shield(self._refresh)

    async def aclose(self) -> None:
        """Cancel a listing still under way (its waiters are gone), and wait for it to end."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, LdbulkError):
                await self._refresh

    async def _load(self) -> None:
        # The listing that settles an unclear create is the one request a stopped run still
        # sends, so it is not bound to the stop signal: only counted for the run.
        counted = RequestScope(meter=self._scope.meter) if self._scope is not None else None
        integrations = await self._client.list_integrations(scope=counted)
        self._ids = {key_of(integration): integration.id for integration in integrations}


def key_of(integration: Integration) -> Key:
    """The target key an integration sits at."""
    return (integration.project_key, integration.environment_key, integration.integration_key)
