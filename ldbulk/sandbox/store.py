"""What the sandbox holds: the world's projects and environments, the integrations, the state file.

Nothing here speaks HTTP. The handlers look integrations up and change them through
:class:`Store`; the store renders the list-all body once per change (a bulk run asks for the
whole list after every conflict), and again when a simulated sync settles, and, given a
:class:`StateFile`, has it rewritten shortly after a burst of changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeAlias

import attrs

from ldbulk.api import sansio
from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG
from ldbulk.errors import ConfigError
from ldbulk.files import write_atomically
from ldbulk.sandbox.masking import DEFAULT_MASKED, masked_config
from ldbulk.sandbox.sync import SyncModel
from ldbulk.sandbox.world import (
    IntegrationRecord,
    IntegrationSpec,
    ProjectRecord,
    WorldSpec,
    build_integrations,
    build_projects,
    parse_world,
    stable_id,
    validate_config,
)

# A burst of creates is written to the state file once, this long after the first of them.
FLUSH_DELAY_S: Final = 0.2

# (project, environment, integration key): the one slot each integration fills.
Slot: TypeAlias = tuple[str, str, str]


def _write_state(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    write_atomically(path, json.dumps(data, indent=1, sort_keys=True))


class StateFile:
    """A JSON file of the integrations: read at start, rewritten atomically after changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._dirty = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None

    def load(self) -> tuple[IntegrationSpec, ...] | None:
        """The integrations the file holds, or None when there is no file yet."""
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"state file {str(self.path)!r}: {exc}") from None
        return parse_world(data, what="state file").integrations

    def changed(self) -> None:
        """Something changed: write it out soon."""
        self._dirty.set()

    def start(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Write ``snapshot()`` after every burst of changes, until :meth:`stop`."""
        self._closing = False
        self._writer = asyncio.create_task(self._write_loop(snapshot))

    async def stop(self) -> None:
        """Write the file one last time and stop writing."""
        if self._writer is None:
            return
        self._closing = True
        self._dirty.set()
        await self._writer
        self._writer = None

    async def _write_loop(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        while not self._closing:
            await self._dirty.wait()
            if not self._closing:
                await asyncio.sleep(FLUSH_DELAY_S)
            self._dirty.clear()
            await asyncio.to_thread(_write_state, self.path, snapshot())


def seeded_integrations(
    projects: Mapping[str, ProjectRecord], count: int
) -> dict[Slot, IntegrationRecord]:
    """``count`` redis integrations tagged as ldbulk tags them, one in each environment in the
    world's order: an account of hundreds of thousands, built in moments (a world file of as
    many is parsed and validated item by item)."""
    config = validate_config("redis", {"host": "redis.internal"})
    seeded: dict[Slot, IntegrationRecord] = {}
    for project in projects.values():
        for environment in project.environments:
            if len(seeded) >= count:
                return seeded
            key = (project.key, environment, "redis")
            seeded[key] = IntegrationRecord(
                id=stable_id(*key),
                integration_key="redis",
                project_key=project.key,
                environment_key=environment,
                config=config,
                tags=[DEFAULT_OWNERSHIP_TAG],
            )
    if len(seeded) < count:
        raise ConfigError(f"seed: {count} integrations need as many environments in the world")
    return seeded


class Store:
    """Projects and environments (fixed at start) and the integrations stored in them.

    With a state file that exists, its integrations replace the world's; :meth:`reset` goes
    back to whichever of the two the store started with. ``seed`` integrations are added to
    the world's where it has none (:func:`seeded_integrations`).
    """

    def __init__(
        self,
        world: WorldSpec,
        state: Path | None = None,
        *,
        sync_delay_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        masked: frozenset[str] = DEFAULT_MASKED,
    ) -> None:
        self._clock = clock
        self.masked = masked
        self.sync = SyncModel(
            delay_ms=round(sync_delay_s * 1000),
            unreachable_hosts=frozenset(host.lower() for host in world.unreachable_hosts),
        )
        self.projects: dict[str, ProjectRecord] = build_projects(world)
        self.project_items = [project.item for project in self.projects.values()]
        self.state_file = None if state is None else StateFile(state)
        specs = world.integrations
        if self.state_file is not None:
            loaded = self.state_file.load()
            if loaded is not None:
                specs = loaded
        # What exists at start has synced already (unless its host is unreachable).
        settled = self.now_ms() - self.sync.delay_ms
        self._initial = {
            key: attrs.evolve(record, config_set_ms=settled)
            for key, record in build_integrations(specs, self.projects, what="world").items()
        }
        for key, record in seeded_integrations(self.projects, seed).items():
            self._initial.setdefault(key, attrs.evolve(record, config_set_ms=settled))
        self.integrations: dict[Slot, IntegrationRecord] = {}
        self._by_id: dict[str, IntegrationRecord] = {}
        self._list_body: bytes | None = None
        # When the cached list body goes stale because a pending sync settles (None: never).
        self._list_expires_ms: int | None = None
        self._restore_initial()

    def now_ms(self) -> int:
        """The sandbox's clock in epoch milliseconds."""
        return int(self._clock() * 1000)

    def status(self, record: IntegrationRecord) -> dict[str, Any]:
        """The ``_status`` of a stored integration now."""
        return self.sync.status(record, self.now_ms())

    def render(self, record: IntegrationRecord, *, with_config: bool) -> dict[str, Any]:
        """A stored integration as the API shows it now: the config, when shown, masked."""
        item = record.render(with_config=False, status=self.status(record))
        if with_config:
            item["config"] = masked_config(record.config, self.masked)
        return item

    def _restore_initial(self) -> None:
        self.integrations = {
            key: attrs.evolve(record, config=dict(record.config), tags=list(record.tags))
            for key, record in self._initial.items()
        }
        self._by_id = {record.id: record for record in self.integrations.values()}
        self._list_body = None

    def reset(self) -> None:
        """Back to the integrations the store started with."""
        self._restore_initial()
        self.changed()

    def by_id(self, integration_id: str) -> IntegrationRecord | None:
        """The integration with this ``_id``, if any."""
        return self._by_id.get(integration_id)

    def add(self, record: IntegrationRecord) -> None:
        """Store a new integration in its slot."""
        self.integrations[record.key] = record
        self._by_id[record.id] = record
        self.changed()

    def remove(self, record: IntegrationRecord) -> None:
        """Delete a stored integration."""
        del self.integrations[record.key]
        del self._by_id[record.id]
        self.changed()

    def changed(self) -> None:
        """A stored integration changed (in place, or added or removed)."""
        self._list_body = None
        if self.state_file is not None:
            self.state_file.changed()

    def list_body(self) -> bytes:
        """The body of the list-all answer, rendered once per change."""
        now = self.now_ms()
        expired = self._list_expires_ms is not None and now >= self._list_expires_ms
        if self._list_body is None or expired:
            records = self.integrations.values()
            items = [
                record.render(with_config=False, status=self.sync.status(record, now))
                for record in records
            ]
            pending = [at for at in map(self.sync.settles_at, records) if at > now]
            self._list_expires_ms = min(pending, default=None)
            self._list_body = json.dumps(
                {
                    "_links": {
                        "self": {"href": sansio.BIG_SEGMENT_STORE, "type": "application/json"}
                    },
                    "items": items,
                }
            ).encode()
        return self._list_body

    def snapshot(self) -> dict[str, Any]:
        """The integrations in the world-file form, secrets redacted (the state file's body)."""
        return {"integrations": [record.to_spec() for record in self.integrations.values()]}

    def start_writing(self) -> None:
        """Keep the state file (if any) up to date from now on."""
        if self.state_file is not None:
            self.state_file.start(self.snapshot)

    async def stop_writing(self) -> None:
        """Write the state file (if any) one last time."""
        if self.state_file is not None:
            await self.state_file.stop()
