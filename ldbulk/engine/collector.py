"""The garbage collector while runs are under way: its young generation collected less often.

A run allocates a few container objects for each request and keeps them until its target
settles; with hundreds in flight, CPython's default (a young collection every 700 net
allocations) runs the collector every few requests over objects that are all still alive, and
it came to a fifth of the run's CPU. While at least one run in the process is under way, the
young threshold is raised; when the last one ends, the threshold the process had is put back,
unless someone else changed it meanwhile (theirs is kept). Reference cycles are still
collected, later; objects without cycles are freed at once as always. A process that turned
the collector off, or already set a higher threshold (``ldbulk``'s command does), is left as
it is.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Final

# The young generation's threshold during a run (CPython's default is 700): at most this many
# surviving container objects wait for a collection, a few megabytes.
RUN_YOUNG_THRESHOLD: Final = 50_000


class _Tuning:
    """How many runs hold the raised threshold, and what to put back after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._before: tuple[int, int, int] | None = None

    def enter(self) -> None:
        with self._lock:
            self._runs += 1
            if self._runs > 1:
                return
            before = gc.get_threshold()
            if gc.isenabled() and 0 < before[0] < RUN_YOUNG_THRESHOLD:
                gc.set_threshold(RUN_YOUNG_THRESHOLD, before[1], before[2])
                self._before = before

    def leave(self) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs or self._before is None:
                return
            before, self._before = self._before, None
            if gc.get_threshold() == (RUN_YOUNG_THRESHOLD, before[1], before[2]):
                gc.set_threshold(*before)


_TUNING: Final = _Tuning()


@contextlib.contextmanager
def collected_less(enabled: bool = True) -> Iterator[None]:
    """Within the block, the process' young generation is collected less often (see the
    module's docstring); ``enabled=False`` leaves the collector alone."""
    if not enabled:
        yield
        return
    _TUNING.enter()
    try:
        yield
    finally:
        _TUNING.leave()
