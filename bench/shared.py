"""Sharing the account's budget: two ldbulk runs at once, and a run that other clients' writes
leave a part of the budget for 20 s before they stop.

Each client is a process of its own against one sandbox with fixed windows. Besides the total
time, windows used and 429s, the sandbox's creates are read at every window boundary, so each
row shows how much of every window was used: once the others have gone, a run must use the
whole of the next window, not the part it had while they were there.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Final

import attrs

from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import CREATE_ROUTE, ENVIRONMENTS, ideal_s, log, run_clients, sandbox_counts

# How long after a boundary the 429s are read: the sandbox counts a 429 as the request comes.
REFUSED_LAG_S: Final = 0.01


@attrs.frozen(kw_only=True)
class SharedSizes:
    """The sandbox's limit, windows and latency, and each row's work."""

    route_limit: int
    window_s: float
    latency_ms: float
    # Creates of each of two runs, started at once and then this far apart (more than a
    # round trip: the first hears the server before the second's first create lands).
    each_run: int
    apart_s: float
    # The run beside the background client, and the background's pace and time.
    beside_background: int
    background_per_s: float
    background_s: float


FULL_SHARED: Final = SharedSizes(
    route_limit=100,
    window_s=10.0,
    latency_ms=80.0,
    each_run=300,
    apart_s=1.0,
    beside_background=400,
    background_per_s=5.0,
    background_s=20.0,
)
SMOKE_SHARED: Final = SharedSizes(
    route_limit=4,
    window_s=0.5,
    latency_ms=5.0,
    each_run=6,
    apart_s=0.1,
    beside_background=12,
    background_per_s=4.0,
    background_s=1.0,
)


def created(stats: dict[str, Any]) -> int:
    """Creates the sandbox has stored so far (201s of the create route)."""
    by_status: dict[str, int] = stats["requests"].get(CREATE_ROUTE, {})
    return sum(count for status, count in by_status.items() if str(status) == "201")


def refused(stats: dict[str, Any]) -> int:
    """Requests the sandbox has refused with 429 so far."""
    return int(stats["throttled"])


class WindowTally:
    """Reads the sandbox's creates and 429s just after every window boundary, in a thread:
    those of each window, by the window's number (epoch seconds over the window's length).

    A create is counted when it is answered, which is the added latency after the window
    admitted it: its reading waits that long past the boundary. A 429 is counted at once.
    """

    def __init__(self, sandbox: SandboxProcess, window_s: float, lag_s: float) -> None:
        self._sandbox, self._window_s, self._lag_s = sandbox, window_s, lag_s
        self._marks: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WindowTally:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._mark(math.floor(time.time() / self._window_s) + 1)  # the window under way

    def _mark(self, window: int) -> None:
        stats = self._sandbox.stats()
        self._marks.append((window, created(stats), refused(stats)))

    def _run(self) -> None:
        while True:
            window = math.floor(time.time() / self._window_s) + 1
            boundary = window * self._window_s
            # A 429 is counted when the request comes, a create when it is answered.
            if self._stop.wait(max(boundary + REFUSED_LAG_S - time.time(), 0.0)):
                return
            refused_then = refused(self._sandbox.stats())
            if self._stop.wait(max(boundary + self._lag_s - time.time(), 0.0)):
                return
            self._marks.append((window, created(self._sandbox.stats()), refused_then))

    def per_window(self) -> dict[int, tuple[int, int]]:
        """Creates stored and requests refused in each window between the first reading and
        the last."""
        return {
            start: (stored - stored_before, refused - refused_before)
            for (start, stored_before, refused_before), (_, stored, refused) in zip(
                self._marks, self._marks[1:], strict=False
            )
        }


def _window(epoch: float, window_s: float) -> int:
    return math.floor(epoch / window_s)


def row_of(
    sizes: SharedSizes,
    lines: list[dict[str, Any]],
    counts: dict[str, int],
    per_window: dict[int, tuple[int, int]],
    others: int,
) -> dict[str, Any]:
    """One row: ldbulk's runs (``lines``) beside ``others`` creates another client stored."""
    window_s = sizes.window_s
    started = min(line["started_epoch"] for line in lines)
    ended = max(line["started_epoch"] + line["elapsed_s"] for line in lines)
    creates = sum(line["targets"] for line in lines) + others
    ideal = ideal_s(started, creates, sizes.route_limit, window_s, sizes.latency_ms / 1000)
    first = _window(started, window_s)
    windows = range(first, _window(ended, window_s) + 1)
    return {
        "creates": creates,
        "created": sum(line["created"] for line in lines),
        "elapsed_s": ended - started,
        "ideal_s": ideal,
        "ratio": (ended - started) / ideal,
        "windows_used": _window(ended, window_s) - first + 1,
        "windows_bound": math.ceil(creates / sizes.route_limit),
        "per_window": [per_window.get(w, (0, 0))[0] for w in windows],
        "per_window_429s": [per_window.get(w, (0, 0))[1] for w in windows],
        "ldbulk_requests": sum(line["requests"] for line in lines),
        "ldbulk_throttled": sum(line["throttled"] for line in lines),
        "throttled_share": counts["throttled"] / max(counts["requests"], 1),
        **counts,
    }


def ldbulk_run(targets: int, first: int, window_s: float, later_s: float = 0.0) -> dict[str, Any]:
    """A run of ``targets`` creates from the ``first`` pair, started 50 ms into a window (and
    ``later_s`` after that)."""
    return {
        "contender": "ldbulk",
        "targets": targets,
        "first": first,
        "environments": ENVIRONMENTS,
        "align_window_s": window_s,
        "align_offset_s": 0.05 + later_s,
    }


def _measure(
    sizes: SharedSizes, specs: list[dict[str, Any]], pairs: int
) -> tuple[list[dict[str, Any]], dict[str, int], dict[int, tuple[int, int]]]:
    """Run ``specs`` at once on a fresh sandbox of ``pairs`` environments: their lines, the
    sandbox's counts, and its creates by window."""
    spec = SandboxSpec(
        projects=math.ceil(pairs / ENVIRONMENTS),
        environments=ENVIRONMENTS,
        route_limit=sizes.route_limit,
        window_s=sizes.window_s,
        latency_ms=sizes.latency_ms,
    )
    with SandboxProcess(spec) as sandbox:
        before = sandbox.stats()
        with WindowTally(sandbox, sizes.window_s, sizes.latency_ms / 1000 + 0.02) as tally:
            lines = run_clients(sandbox, specs)
        counts = sandbox_counts(before, sandbox.stats())
    return lines, counts, tally.per_window()


def two_runs(sizes: SharedSizes, apart_s: float = 0.0) -> dict[str, Any]:
    """Two ldbulk runs of ``each_run`` creates, the second started ``apart_s`` after the first."""
    case = f"two runs {apart_s:g} s apart" if apart_s else "two runs at once"
    log(f"shared: {case}, {sizes.each_run} creates each")
    specs = [
        ldbulk_run(sizes.each_run, index * sizes.each_run, sizes.window_s, index * apart_s)
        for index in (0, 1)
    ]
    lines, counts, per_window = _measure(sizes, specs, 2 * sizes.each_run)
    return {"case": case} | row_of(sizes, lines, counts, per_window, others=0)


def beside_background(sizes: SharedSizes) -> dict[str, Any]:
    """One ldbulk run beside another client that writes for ``background_s``, then stops."""
    writes = round(sizes.background_per_s * sizes.background_s)
    log(
        f"shared: one run of {sizes.beside_background} creates beside a client writing "
        f"{sizes.background_per_s:g}/s for {sizes.background_s:g} s"
    )
    background = {
        "contender": "background",
        "targets": writes,
        "first": sizes.beside_background,
        "environments": ENVIRONMENTS,
        "per_s": sizes.background_per_s,
        "align_window_s": sizes.window_s,
        "align_offset_s": 0.05,
    }
    specs = [ldbulk_run(sizes.beside_background, 0, sizes.window_s), background]
    (run, other), counts, per_window = _measure(sizes, specs, sizes.beside_background + writes)
    row = row_of(sizes, [run], counts, per_window, others=other["created"])
    # The first window that began after the other client's last request.
    stopped = other["started_epoch"] + other["elapsed_s"]
    after = _window(stopped, sizes.window_s) + 1 - _window(run["started_epoch"], sizes.window_s)
    row["window_after_stop"] = after
    row["used_after_stop"] = row["per_window"][after] if after < len(row["per_window"]) else None
    return {"case": "beside a client that stops"} | row | {"others": other}


def scenario_shared(sizes: SharedSizes) -> dict[str, Any]:
    """Both rows, one after the other."""
    return {
        "route_limit": sizes.route_limit,
        "window_s": sizes.window_s,
        "latency_ms": sizes.latency_ms,
        "rows": [two_runs(sizes), two_runs(sizes, sizes.apart_s), beside_background(sizes)],
    }


def shared_goals(shared: dict[str, Any], goal: Any) -> None:
    """Two runs of 300 + 300 (at once, and apart) within 7 windows with <= 1% 429s; after
    the other client stops, the next window used in full."""
    for row in shared["rows"]:
        case = row["case"]
        # ldbulk's 429s: the other client's are its own, as it never waits for anything.
        share = row["ldbulk_throttled"] / max(row["ldbulk_requests"], 1)
        goal("shared", f"{case}: <= 1% 429s of ldbulk's", share <= 0.01, _refused(row))
        if "used_after_stop" in row:
            used, limit = row["used_after_stop"], shared["route_limit"]
            goal(
                "shared",
                f"{case}: the window after it stopped used in full",
                used is not None and used >= limit,
                f"{used} of {limit} creates",
            )
        else:
            goal(
                "shared",
                f"{case}: within one window of the bound",
                row["windows_used"] <= row["windows_bound"] + 1,
                f"{row['windows_used']} windows for a bound of {row['windows_bound']}",
            )


def _refused(row: dict[str, Any]) -> str:
    return (
        f"{row['throttled']} of {row['requests']} ({row['throttled_share']:.1%}), "
        f"{row['ldbulk_throttled']} of ldbulk's {row['ldbulk_requests']}"
    )


def shared_markdown(shared: dict[str, Any], table: Any) -> list[str]:
    """The section of results.md: one row per case."""
    out = [
        f"## Sharing the budget: route limit {shared['route_limit']} per "
        f"{shared['window_s']:g} s window, {shared['latency_ms']:g} ms added latency",
        "",
        "Every client is a process of its own on one account, started 50 ms into a window "
        "(the second of two runs apart, that much later). "
        "**Bound** = the creates of every client (the other client's that were stored, too) "
        "at the limit; **per window** = creates the sandbox stored in each window of the run, "
        "read just after every boundary.",
        "",
    ]
    rows = [
        [
            row["case"],
            str(row["creates"]),
            f"{row['elapsed_s']:.2f}",
            f"{row['ideal_s']:.2f}",
            f"{row['ratio']:.2f}",
            f"{row['windows_used']} / {row['windows_bound']}",
            " ".join(str(count) for count in row["per_window"]),
            " ".join(str(count) for count in row.get("per_window_429s", [])),
            _refused(row),
        ]
        for row in shared["rows"]
    ]
    out += table(
        ["case", "creates", "elapsed s", "bound s", "ratio", "windows used / bound",
         "per window", "429s per window", "429s"],
        rows,
    )  # fmt: skip
    out.append("")
    return out
