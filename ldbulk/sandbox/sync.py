"""A simulated sync: the connection status (``_status``) the sandbox reports for each store.

LaunchDarkly connects to a store once its configuration is set and reports, on every read of
the integration, whether the store is ``available`` (synchronized, ``lastSync`` recent) and the
errors of its last tries (``lastError``, ``errors``). The sandbox never connects anywhere; it
tells the story a rehearsal needs:

- a store becomes available ``delay_ms`` after its configuration was set (created, or its
  ``config`` patched): until then ``available`` is false and there is no ``lastSync``; with no
  delay it is available at once, as the sandbox always answered;
- a Redis store whose ``host`` the world lists in ``unreachableHosts`` never syncs: once the
  delay has passed, it reports the failed connection in ``lastError`` and ``errors``.

Times come from the sandbox's clock, so a test moves them with a fake one.
"""

from __future__ import annotations

from typing import Any

import attrs

from ldbulk.sandbox.world import IntegrationRecord


@attrs.frozen(kw_only=True)
class SyncModel:
    """How long a store takes to sync, and which hosts never answer."""

    delay_ms: int = 0
    unreachable_hosts: frozenset[str] = frozenset()

    def unreachable(self, record: IntegrationRecord) -> str | None:
        """The ``host:port`` a store cannot reach, or None when it syncs."""
        host = record.config.get("host")
        if not isinstance(host, str) or host.lower() not in self.unreachable_hosts:
            return None
        return f"{host}:{record.config.get('port', '6379')}"

    def settles_at(self, record: IntegrationRecord) -> int:
        """When the store's status stops being pending (epoch milliseconds)."""
        return record.config_set_ms + self.delay_ms

    def status(self, record: IntegrationRecord, now_ms: int) -> dict[str, Any]:
        """The ``_status`` of one store at ``now_ms`` (the spec's ``BigSegmentStoreStatus``)."""
        settled = self.settles_at(record)
        if now_ms < settled:
            return {"available": False, "potentiallyStale": True}
        address = self.unreachable(record)
        if address is None:
            return {"available": True, "potentiallyStale": False, "lastSync": settled}
        return {
            "available": False,
            "potentiallyStale": True,
            "lastError": settled,
            "errors": [
                {
                    "message": f"cannot connect to {address}: connection timed out",
                    "timestamp": settled,
                }
            ],
        }
