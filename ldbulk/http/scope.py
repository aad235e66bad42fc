"""What a group of requests (one run) shares apart from the client: a stop signal and counts.

A :class:`~ldbulk.http.client.Client` is meant to be shared, so its own counters mix every run that
uses it. A run passes a :class:`RequestScope` with each request instead; the client counts the
request there too, and a request still waiting for its turn when the scope is stopped is never
sent (:class:`~ldbulk.errors.Stopped`). A request already in flight at the stop gets
:data:`STOP_GRACE_S` to be answered, and is then abandoned: a stopped run ends within that
grace whatever the network does (a silent link, a body that drips).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import attrs

from ldbulk.http.meter import Meter, RunStats

__all__ = ["STOP_GRACE_S", "InFlight", "Meter", "RequestScope", "RunStats"]

# How long requests in flight at a stop may still take. ldbulk promises to be gone within 2 s
# of SIGTERM (an orchestrator's deadline is the run's, not ldbulk's to spend), and keeps the
# other second for closing and writing its reports: on a loaded 2-core machine, a 1.5-s grace
# left a run exiting 1.7 s after the signal, too close. An answer LaunchDarkly is giving
# comes well within a second.
STOP_GRACE_S: Final = 1.0


class InFlight:
    """One request of a scope on its way: abandoned (its task cancelled, and this marked)
    when the stop's grace runs out before it ends."""

    __slots__ = ("abandoned", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.abandoned = False

    def ended_by_stop(self) -> bool:
        """After a ``CancelledError``: whether it was the scope's abandoning it (then taken
        back, so the task goes on), rather than someone else's cancel."""
        return self.abandoned and self.task.uncancel() == 0


def _own_event_if_none(stop: asyncio.Event | None) -> asyncio.Event:
    return asyncio.Event() if stop is None else stop


@attrs.define(eq=False)
class RequestScope:
    """The requests of one run: their own counts, and the signal that stops them.

    Once ``stop`` is set, nothing new is sent, and what is in flight is abandoned when
    ``grace_s`` has passed since (see :meth:`leaving`).
    """

    # None is no stop of the caller's: the scope's own event, which only the scope sets.
    stop: asyncio.Event = attrs.field(default=None, converter=_own_event_if_none)
    meter: Meter = attrs.field(factory=Meter)
    grace_s: float = STOP_GRACE_S
    # The run's own scope, for a scope that sends after the run's stop (see settling()).
    _run: RequestScope | None = attrs.field(default=None, alias="run", repr=False)
    _stopped_at: float | None = attrs.field(default=None, init=False, repr=False)
    _in_flight: set[InFlight] = attrs.field(factory=set, init=False, repr=False)
    # Waits for the stop while requests are in flight.
    _watcher: asyncio.Task[None] | None = attrs.field(default=None, init=False, repr=False)
    _abandon: asyncio.TimerHandle | None = attrs.field(default=None, init=False, repr=False)
    _root: RequestScope = attrs.field(init=False, repr=False)

    @property
    def stopped(self) -> bool:
        """Whether the run was told to stop."""
        return self.stop.is_set()

    def settling(self) -> RequestScope:
        """A scope for what a run still sends after its stop (the listing that tells whether
        an unclear create was applied): counted with this one, not stopped by it, but
        abandoned with what else is in flight when this one's grace runs out."""
        return RequestScope(meter=self.meter, grace_s=self.grace_s, run=self._root)

    def __attrs_post_init__(self) -> None:
        # Read by every request: the scope whose stop and grace it keeps to, found once.
        self._root = self if self._run is None else self._run

    @property
    def given_up(self) -> bool:
        """Whether the stop's grace has run out: nothing may be sent any more."""
        root = self._root
        if not root.stop.is_set():
            return False
        return asyncio.get_running_loop().time() >= root._deadline()

    def entering(self) -> InFlight:
        """A request of the current task sets out; hand what this returns to
        :meth:`leaving` when it ends, however it ends. Once the stop's grace has run out,
        the task is cancelled and the :class:`InFlight` says so
        (:meth:`InFlight.ended_by_stop`)."""
        root = self._root
        request = InFlight(asyncio.current_task())  # type: ignore[arg-type]
        root._in_flight.add(request)
        if root.stop.is_set():
            root._arm()
        elif root._watcher is None:
            root._watcher = asyncio.get_running_loop().create_task(root._watch())
        return request

    def leaving(self, request: InFlight) -> None:
        """The request of :meth:`entering` has ended."""
        root = self._root
        root._in_flight.discard(request)
        if not root._in_flight and root._watcher is not None:
            # Nothing in flight to abandon: no task is left waiting for a stop (a run that
            # ends leaves none behind; many requests in flight share one).
            root._watcher.cancel()
            root._watcher = None

    def _deadline(self) -> float:
        """Loop time at which what is in flight is abandoned (the stop was set)."""
        if self._stopped_at is None:
            # Set while nothing was in flight: the grace counts from when it is first seen.
            self._stopped_at = asyncio.get_running_loop().time()
        return self._stopped_at + self.grace_s

    def _arm(self) -> None:
        """The stop was set: abandon what is in flight when the grace runs out."""
        if self._abandon is None:
            loop = asyncio.get_running_loop()
            self._abandon = loop.call_at(self._deadline(), self._abandon_all)

    def _abandon_all(self) -> None:
        for request in self._in_flight:
            if not request.abandoned:
                request.abandoned = True
                request.task.cancel()

    async def _watch(self) -> None:
        await self.stop.wait()
        self._watcher = None
        self._arm()
