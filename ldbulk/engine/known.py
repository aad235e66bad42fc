"""What an application's runs learned of the account, kept across calls.

A service that provisions a few environments at a time on one client need not list the
account for every call: :class:`KnownIntegrations` keeps the ids and versions of the last
listing a run made, updated by the runs' own creates, updates and deletes, and a run that
finds it younger than its ``ttl_s`` takes it as its listing. Being stale is safe, never wrong:
an integration someone else deleted is read (404) and created again; one someone else created
meets a 409, settled by a listing, as in any run (see :mod:`ldbulk.engine.writes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ldbulk.api.models import Integration
from ldbulk.engine.inventory import key_of
from ldbulk.engine.report import Key, Outcome, TargetResult

# The outcomes after which the run knows the integration's id and that it is there.
_THERE = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.EXISTS})


class KnownIntegrations:
    """The account's integrations as this application last saw them, shared by its runs:
    pass one to :class:`~ldbulk.engine.provision.Provisioner` (``known=``) or
    :func:`~ldbulk.engine.provision.provision`. ``ttl_s``: how long after a listing a run
    takes what is known as the account, instead of listing it again. ``clock``: seconds
    (monotonic) for the age."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s must not be negative")
        self.ttl_s = ttl_s
        self._clock = clock
        self._found: dict[Key, Integration] = {}
        self._listed_at: float | None = None

    def __len__(self) -> int:
        return len(self._found)

    def fresh(self) -> list[Integration] | None:
        """What is known, if the last listing is younger than ``ttl_s``; else None."""
        if self._listed_at is None or self._clock() - self._listed_at > self.ttl_s:
            return None
        return list(self._found.values())

    def listed(self, integrations: Iterable[Integration]) -> None:
        """A run listed the account: that is what is known now, as of now."""
        self._found = {key_of(integration): integration for integration in integrations}
        self._listed_at = self._clock()

    def settled(self, result: TargetResult) -> None:
        """A run settled a target: what it wrote or found is known now."""
        if result.outcome is Outcome.DELETED or result.outcome is Outcome.NOT_FOUND:
            self._found.pop(result.key, None)
            return
        if result.outcome not in _THERE or result.integration_id is None:
            return
        project, environment, integration_key = result.key
        # Only what a run needs before reading: the id, and the version when known.
        self._found[result.key] = Integration(
            id=result.integration_id,
            project_key=project,
            environment_key=environment,
            integration_key=integration_key,
            version=result.version or 0,
        )
