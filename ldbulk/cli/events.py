"""A run's first and last words: the ``start`` event, and at its exit the metrics file and the
``summary`` event.

With ``--log-format json`` the first line of a command's run is a ``start`` event (run id,
version, command, the manifests and their digest, the base URL; for ``apply PLAN`` the saved
plan, and its target count, known before any request) and the last, on every exit,
is one ``summary`` event with the final exit code: after a report, after bad input (exit 2,
with the ``problems``), after a failure and after an interrupt. A log collector can then alert
on a run that started and never said how it ended. None of them holds a secret: the base URL
refuses credentials, and counts and paths are all they carry.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import click

from ldbulk._version import __version__
from ldbulk.api.sansio import resolve_base_url
from ldbulk.cli import flags, logs
from ldbulk.cli.metrics import write_metrics
from ldbulk.cli.record import RunRecord
from ldbulk.engine.saved import is_plan_file
from ldbulk.errors import ConfigError
from ldbulk.manifest.nodes import Problems, read_text

_log = logging.getLogger("ldbulk.cli")

EXIT_SIGNALS: Final = {130: "SIGINT", 143: "SIGTERM"}


def manifests_digest(paths: tuple[Path, ...]) -> str | None:
    """The digest a loaded manifest set has (:attr:`ldbulk.manifest.ManifestSet.digest`), of
    the files as they are now; None when one cannot be read."""
    digests = []
    for path in paths:
        text = read_text(path, Problems(str(path)))
        if text is None:
            return None
        digests.append(hashlib.sha256(text.encode()).hexdigest())
    return "sha256:" + hashlib.sha256(",".join(digests).encode()).hexdigest()


def _run_input(manifests: tuple[Path, ...], record: RunRecord) -> dict[str, Any]:
    """What the run works from, as the start event says it. From manifests, the target count
    is known only once their selectors are resolved (it is the summary's). A saved plan
    (``apply PLAN``) names the manifests and the digest it was made from, and its actions are
    the run's targets: all known before the first request. A plan file that cannot be read is
    refused by the command, in its own words; here it is only named."""
    if len(manifests) == 1 and is_plan_file(manifests[0]):
        plan = str(manifests[0])
        try:
            saved = record.saved_plan(manifests[0])
        except ConfigError:
            return {"plan": plan, "manifests": [], "manifests_digest": None, "targets": None}
        return {"plan": plan, "manifests": list(saved.manifests),
                "manifests_digest": saved.digest, "targets": len(saved.actions)}
    return {
        "plan": None,
        "manifests": [str(path) for path in manifests],
        "manifests_digest": manifests_digest(manifests) if manifests else None,
        "targets": None,
    }


def _base_url(params: Mapping[str, Any]) -> str | None:
    if "instance" not in params:
        return None  # a command that talks to no API
    try:
        return resolve_base_url(params.get("base_url"), params["instance"])
    except ConfigError:
        return None  # the command says why, in its own words


def begin(command: str, params: Mapping[str, Any], record: RunRecord) -> None:
    """The command's run begins: remember its name; with JSON logs, say so first."""
    if not record.begun:  # apply --dry-run goes on as plan: still apply's run
        record.begun = True
        record.command = command
    record.json_logs = flags.current().json_logs
    if record.json_logs:
        log_start(record, params)


def log_start(record: RunRecord, params: Mapping[str, Any] | None = None) -> None:
    """The ``start`` event, once per run."""
    if record.start_logged:
        return
    record.start_logged = True
    params = params or {}
    manifests = tuple(params.get("manifests") or ())
    fields = {
        "event": "start",
        "version": __version__,
        "command": record.command,
        **_run_input(manifests, record),
        "base_url": _base_url(params),
    }
    logs.start_log.info("ldbulk %s %s", __version__, record.command or "", extra=fields)


def close(record: RunRecord, code: int) -> int:
    """The run exits with ``code``: write its metrics file, then say the summary. Returns the
    exit code, 1 instead of 0 when the metrics file asked for could not be written (a nightly
    job must not take a missing file for a clean run)."""
    if record.metrics_file is not None:
        try:
            write_metrics(record.metrics_file, record, code)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            _say(record, f"ldbulk: --metrics-file: cannot write {record.metrics_file}: {reason}")
            code = 1 if code == 0 else code
    # A run that never began (--help, --version) has neither a start nor a summary.
    if record.json_logs and record.start_logged:
        log_summary(record, code)
    return code


def _say(record: RunRecord, text: str) -> None:
    if record.json_logs:
        _log.error("%s", text)
    else:
        click.echo(text, err=True)


def log_summary(record: RunRecord, code: int) -> None:
    """The one ``summary`` event that ends a JSON log: the command's own (apply's), or what
    the record knows."""
    level = logging.INFO if code == 0 else logging.WARNING
    if record.closing is not None:
        own = {**record.closing.fields, "command": record.command, "exit_code": code}
        logs.summary_log.log(level, "%s", record.closing.message, extra=own)
        return
    counts = dict(record.counts or {})
    cost = record.cost
    fields: dict[str, Any] = {
        "event": "summary",
        "command": record.command,
        "counts": {"total": sum(counts.values()), **counts} if record.counts is not None
        else None,
        "unresolved": record.unresolved,
        "requests": cost.requests if cost else 0,
        "throttled": cost.throttled if cost else 0,
        "retries": cost.retries if cost else 0,
        "paused_s": round(cost.paused_s, 3) if cost else 0.0,
        "elapsed_s": round(record.elapsed_s(), 3),
        "interrupted": EXIT_SIGNALS.get(code),
        "exit_code": code,
    }
    if record.problems:
        fields["problems"] = record.problem_rows()
    logs.summary_log.log(level, "%s", _message(record, code), extra=fields)


def _message(record: RunRecord, code: int) -> str:
    words = [record.command or "ldbulk"]
    if record.counts is not None:
        shown = ", ".join(f"{n} {name}" for name, n in record.counts.items() if n)
        words.append(f"{sum(record.counts.values())} targets: {shown or 'none'}")
    if record.problems:
        words.append(f"{len(record.problems)} problem(s) in the manifests")
    if code in EXIT_SIGNALS:
        words.append(f"interrupted by {EXIT_SIGNALS[code]}")
    return f"{'; '.join(words)}; exit {code}"
