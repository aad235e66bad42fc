"""Scale on the real command line: ``ldbulk validate``, ``plan`` and ``apply --report`` of a
generated manifest of many targets, each the ``ldbulk`` console script in a process of its own.

Wall time is the process's, from start to exit (Python's start-up and imports included, as a
user sees it); peak RSS is the command's ``ru_maxrss`` as ``wait4`` reports it to a small
launcher. ``ldbulk --version`` gives the start-up and the import baseline the others are read
against. The
sandbox has no rate limit: the figures are the client's cost, not LaunchDarkly's pace.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import attrs

from bench.client import pairs_of
from bench.manifest import write_manifest
from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import CLIENT_TIMEOUT_S, ENVIRONMENTS, log, sandbox_counts

# The goals: apply of 100,000 targets within 150 MB of peak RSS, plan of them within 15 s.
APPLY_PEAK_MB: Final = 150.0
PLAN_S: Final = 15.0


@attrs.frozen(kw_only=True)
class ScaleSizes:
    """How many targets the command line is given."""

    targets: int
    # validate only parses, as plan and apply do first: the smoke run leaves it out.
    validate: bool = True
    # An apply whose creates lose this share of their answers (stored, connection cut): each
    # is sent again, answered 409, and settled by a listing of the account.
    lost_targets: int = 20_000
    lost_share: float = 0.006
    # A nightly re-run (create-only) against an account holding this many integrations, each
    # one a target: its whole cost should be one listing, read as it streams in.
    existing: int = 250_000


FULL_SCALE: Final = ScaleSizes(targets=100_000)
SMOKE_SCALE: Final = ScaleSizes(
    targets=200, validate=False, lost_targets=200, lost_share=0.05, existing=500
)
# Environments per project of the re-run's account (250,000 integrations: 500 projects).
RERUN_ENVIRONMENTS: Final = 500
# The route the account's listing takes, as the sandbox counts it.
LIST_ROUTE: Final = "GET /api/v2/integration-capabilities/big-segment-store"


def ldbulk_command() -> list[str]:
    """The installed ``ldbulk`` console script beside this interpreter (``-m ldbulk`` if none)."""
    script = Path(sys.executable).with_name("ldbulk")
    if script.exists():
        return [str(script)]
    found = shutil.which("ldbulk")
    return [found] if found else [sys.executable, "-m", "ldbulk"]


# Spawns the measured command and reports its rusage as one JSON line on stdout. A child's
# ru_maxrss starts from its parent's high-water mark at the spawn (Linux records the old
# memory's at exec), so the command is spawned from this small interpreter, not from the
# benchmark's own big process.
LAUNCHER: Final = """
import json, os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(json.dumps({
    "wall_s": time.perf_counter() - started,
    "exit_code": os.waitstatus_to_exitcode(status),
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "peak_rss_mb": usage.ru_maxrss / 1024,
}))
"""


def measure(
    argv: list[str], env: dict[str, str], timeout_s: float = CLIENT_TIMEOUT_S
) -> dict[str, Any]:
    """Run ``argv`` to its end (at most ``timeout_s``): wall seconds, exit code, CPU seconds
    and peak RSS of the command's process (its output discarded, the end of its stderr
    kept)."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.run(  # noqa: S603 - our interpreter, the ldbulk console script
            [sys.executable, "-I", "-S", "-c", LAUNCHER, *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            timeout=timeout_s,
            check=False,
        )
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-2000:]
    lines = process.stdout.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"could not measure {argv[1:2]}: {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result | {"stderr_tail": tail}


def startup(env: dict[str, str] | None = None) -> dict[str, Any]:
    """``ldbulk --version``: Python's start-up with ldbulk imported, and its peak RSS."""
    return measure([*ldbulk_command(), "--version"], env or dict(os.environ))


def _command(sandbox: SandboxProcess, name: str, argv: list[str]) -> dict[str, Any]:
    log(f"scale: ldbulk {name}")
    before = sandbox.stats()
    row = measure([*ldbulk_command(), *argv], sandbox.client_env())
    after = sandbox.stats()
    counts = sandbox_counts(before, after) | {"listings": _listings(after) - _listings(before)}
    if row["exit_code"] not in (0, 1):
        raise RuntimeError(
            f"ldbulk {name} exited {row['exit_code']}:\n" + sandbox.scrub(row["stderr_tail"])
        )
    del row["stderr_tail"]
    return {"command": name} | row | counts


def _listings(stats: dict[str, Any]) -> int:
    return sum(stats["requests"].get(LIST_ROUTE, {}).values())


def _world(
    manifest: Path, targets: int, environments: int, **options: Any
) -> tuple[SandboxSpec, str]:
    """A sandbox world of ``targets`` environments (``options``: its faults or seeding), and
    a manifest at ``manifest`` naming each of them."""
    spec = SandboxSpec(
        projects=math.ceil(targets / environments), environments=environments, **options
    )
    pairs = pairs_of({"targets": targets, "environments": environments})
    return spec, str(write_manifest(manifest, pairs))


def _lost_answers(sizes: ScaleSizes, folder: Path) -> dict[str, Any]:
    """``apply`` of ``sizes.lost_targets`` against a sandbox that loses some create answers."""
    spec, manifest = _world(
        folder / "lost.yaml", sizes.lost_targets, ENVIRONMENTS, drop_after_commit=sizes.lost_share
    )
    with SandboxProcess(spec) as sandbox:
        name = f"apply, {sizes.lost_share:.1%} of answers lost"
        row = _command(sandbox, name, ["apply", manifest, "--base-uri", sandbox.url])
        lost = sandbox.stats()["dropped"]
    return row | {"targets": sizes.lost_targets, "lost": lost}


def _rerun(sizes: ScaleSizes, folder: Path) -> dict[str, Any]:
    """``apply --create-only --report`` against a sandbox already holding an integration for
    each of ``sizes.existing`` targets; the report's outcomes say how many were found."""
    spec, manifest = _world(
        folder / "rerun.yaml", sizes.existing, RERUN_ENVIRONMENTS,
        seed_integrations=sizes.existing,
    )  # fmt: skip
    report = folder / "rerun.json"
    with SandboxProcess(spec) as sandbox:
        argv = ["apply", manifest, "--create-only", "--base-uri", sandbox.url,
                "--report", str(report)]  # fmt: skip
        row = _command(sandbox, f"apply --create-only, {sizes.existing:,} existing", argv)
    summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
    return row | {"targets": sizes.existing, "found": summary.get("exists", 0)}


def scenario_cli_scale(sizes: ScaleSizes) -> dict[str, Any]:
    """validate, plan (nothing exists yet) and apply --report of ``sizes.targets`` targets;
    an apply that loses answers; a create-only re-run against ``sizes.existing`` integrations."""
    pairs = pairs_of({"targets": sizes.targets, "environments": ENVIRONMENTS})
    spec = SandboxSpec(projects=math.ceil(sizes.targets / ENVIRONMENTS), environments=ENVIRONMENTS)
    with (
        tempfile.TemporaryDirectory(prefix="ldbulk-scale-") as folder,
        SandboxProcess(spec) as sandbox,
    ):
        manifest = str(write_manifest(Path(folder) / "scale.yaml", pairs))
        report = str(Path(folder) / "report.json")
        apply_argv = ["apply", manifest, "--base-uri", sandbox.url, "--report", report]
        base = startup(sandbox.client_env())
        del base["stderr_tail"]
        rows = []
        if sizes.validate:
            rows.append(_command(sandbox, "validate", ["validate", manifest]))
        rows.append(_command(sandbox, "plan", ["plan", manifest, "--base-uri", sandbox.url]))
        rows.append(_command(sandbox, "apply --report", apply_argv))
        for row in rows:
            row["targets"] = sizes.targets
        rows.append(_lost_answers(sizes, Path(folder)))
        rows.append(_rerun(sizes, Path(folder)))
    for row in rows:
        row["above_baseline_kb_per_target"] = (
            (row["peak_rss_mb"] - base["peak_rss_mb"]) * 1024 / row["targets"]
        )
    return {"targets": sizes.targets, "startup": base, "rows": rows}
