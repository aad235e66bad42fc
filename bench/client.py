"""One measured client run, in its own process: ``python -m bench.client SPEC_JSON``.

The parent passes the sandbox's URL and token in the environment (``BENCH_SANDBOX_URL``,
``LD_ACCESS_TOKEN``) and the run's spec as JSON. This process builds the targets, optionally
waits for the start of a rate-limit window, runs one contender, and prints one JSON line: wall
time, CPU time (``time.process_time``, this process only) and peak RSS (``ru_maxrss``).
Measuring in a fresh process per run keeps one contender's peak from hiding another's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ldbulk
from bench.peers.common import Pair, PeerResult
from ldbulk.engine.provision import default_concurrency


def pairs_of(spec: dict[str, Any]) -> list[Pair]:
    """``targets`` (project, environment) pairs of the sandbox's generated world, from the
    ``first`` (0 unless given: concurrent runs take turns apart)."""
    count = int(spec["targets"])
    environments = int(spec["environments"])
    first = int(spec.get("first", 0))
    return [
        (f"proj-{i // environments + 1:03d}", f"env-{i % environments + 1:03d}")
        for i in range(first, first + count)
    ]


def _ldbulk(url: str, token: str, pairs: Sequence[Pair], spec: dict[str, Any]) -> dict[str, Any]:
    config = ldbulk.RedisConfig(host="redis.internal")
    targets = [ldbulk.Target(project=p, environment=e, config=config) for p, e in pairs]
    concurrency = int(spec.get("concurrency") or default_concurrency())

    async def go() -> dict[str, Any]:
        async with ldbulk.Client(token, base_url=url) as client:
            report = await ldbulk.provision(
                client, targets, concurrency=concurrency, create_only=bool(spec.get("create_only"))
            )
        # Return a summary, not the report: on Python 3.11, asyncio.run formats the repr of
        # its main task (result included) when it restores the SIGINT handler, and the repr
        # of a report of thousands of results costs measurable CPU and memory.
        created = sum(1 for r in report.results if r.outcome.ok)
        return {
            "created": created,
            "failed": len(report.results) - created,
            "requests": report.stats.requests,
            "throttled": report.stats.throttled,
            "retries": report.stats.retries,
            "outcomes": _count_outcomes(report),
        }

    return asyncio.run(go())


def _count_outcomes(report: ldbulk.Report) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts


def _peer(result: PeerResult) -> dict[str, Any]:
    return result.to_json()


def _terraform(url: str, token: str, pairs: Sequence[Pair], spec: dict[str, Any]) -> dict[str, Any]:
    from bench.peers import terraform

    return _peer(asyncio.run(terraform.run(url, token, pairs)))


def _gather(url: str, token: str, pairs: Sequence[Pair], spec: dict[str, Any]) -> dict[str, Any]:
    from bench.peers import gather_limiter

    rate = float(spec.get("rate_per_s") or gather_limiter.RATE_PER_S)
    return _peer(asyncio.run(gather_limiter.run(url, token, pairs, rate_per_s=rate)))


def _official(url: str, token: str, pairs: Sequence[Pair], spec: dict[str, Any]) -> dict[str, Any]:
    from bench.peers import official

    return _peer(official.run(url, token, pairs))


def _bare(url: str, token: str, pairs: Sequence[Pair], spec: dict[str, Any]) -> dict[str, Any]:
    from bench.peers import bare_aiohttp

    concurrency = int(spec["concurrency"])
    return _peer(asyncio.run(bare_aiohttp.run(url, token, pairs, concurrency=concurrency)))


def _background(
    url: str, token: str, pairs: Sequence[Pair], spec: dict[str, Any]
) -> dict[str, Any]:
    from bench.peers import background

    return _peer(asyncio.run(background.run(url, token, pairs, per_s=float(spec["per_s"]))))


Contender = Callable[[str, str, Sequence[Pair], dict[str, Any]], dict[str, Any]]

CONTENDERS: dict[str, Contender] = {
    "ldbulk": _ldbulk,
    "terraform": _terraform,
    "gather": _gather,
    "official": _official,
    "bare_aiohttp": _bare,
    "background": _background,
}


def wait_for_window(window_s: float, offset_s: float) -> None:
    """Sleep until ``offset_s`` after the next start of a rate-limit window.

    The sandbox's windows, like LaunchDarkly's, start at multiples of the window length in
    epoch time; starting every contender at the same phase makes their runs comparable.
    """
    now = time.time()
    start = math.floor(now / window_s) * window_s + offset_s
    if start <= now:
        start += window_s
    time.sleep(start - now)


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_kb() -> int:
    """This process's peak resident set so far, in KB (``VmHWM``).

    Not ``ru_maxrss``: Linux carries into it the parent's peak at the fork (exec records the
    old memory's high-water mark), so a child of a big benchmark process would report the
    parent's size. ``ru_maxrss`` (in KB on Linux) only where /proc is missing.
    """
    found = _status_kb("VmHWM")
    return found if found is not None else int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_kb() -> int:
    """This process's resident set now, in KB (``VmRSS``; the peak where /proc is missing).

    The baseline of a run is taken with this, not with the peak: importing leaves a transient
    peak above what the process keeps, and a baseline that includes it hides the run's own
    growth until the run outgrows that transient.
    """
    found = _status_kb("VmRSS")
    return found if found is not None else peak_rss_kb()


def main(argv: Sequence[str]) -> int:
    """Run the contender the spec names and print the measurement as one JSON line."""
    spec: dict[str, Any] = json.loads(argv[1])
    url = os.environ["BENCH_SANDBOX_URL"]
    token = os.environ["LD_ACCESS_TOKEN"]
    contender = CONTENDERS[spec["contender"]]
    if spec["contender"] == "official":
        import launchdarkly_api  # noqa: F401 - imported before the clock starts, like the rest
    baseline_rss_kb = current_rss_kb()
    pairs = pairs_of(spec)
    if spec.get("align_window_s"):
        wait_for_window(float(spec["align_window_s"]), float(spec.get("align_offset_s", 0.05)))
    started_epoch = time.time()
    started = time.perf_counter()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_started = time.process_time()
    outcome = contender(url, token, pairs, spec)
    cpu_s = time.process_time() - cpu_started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    elapsed_s = time.perf_counter() - started
    line = {
        "contender": spec["contender"],
        "targets": len(pairs),
        "started_epoch": started_epoch,
        "elapsed_s": elapsed_s,
        "cpu_s": cpu_s,
        "user_s": usage_after.ru_utime - usage_before.ru_utime,
        "system_s": usage_after.ru_stime - usage_before.ru_stime,
        "minor_faults": usage_after.ru_minflt - usage_before.ru_minflt,
        "baseline_rss_kb": baseline_rss_kb,
        "peak_rss_kb": peak_rss_kb(),
        **outcome,
    }
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
