"""``--metrics-file``: a run's numbers in the Prometheus text format, for node_exporter's
textfile collector (https://github.com/prometheus/node_exporter#textfile-collector).

Made by the reference client, ``prometheus_client``, in a registry of its own (never the
process-wide one a library user may serve): one collector yields the run's families. Names
follow Prometheus' rules (https://prometheus.io/docs/practices/naming/): the ``ldbulk_``
prefix, base units (seconds), ``_total`` on counters. Every series carries the ``command``
label, so the files of a nightly ``apply`` and a ``status`` in one collector directory never
clash. No label holds a key, a host or a secret: only the command and an outcome's name.

``ldbulk_last_success_timestamp_seconds`` is set only by a run that exits 0; any other run
carries over the value of the file it replaces, so "no success for 26 h" is one alert rule
whatever happened in between.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import click
from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ldbulk.cli import record
from ldbulk.cli.record import RunRecord
from ldbulk.files import check_writable, refuse_links

LAST_SUCCESS: Final = "ldbulk_last_success_timestamp_seconds"


class RunCollector(Collector):
    """The families of one finished run."""

    def __init__(self, record: RunRecord, exit_code: int, last_success: float | None) -> None:
        self.record = record
        self.exit_code = exit_code
        self.last_success = last_success

    def collect(self) -> Iterator[Metric]:
        """Every family of the run, each series labelled with the command."""
        record = self.record
        command = record.command or ""
        targets = GaugeMetricFamily(
            "ldbulk_targets", "Targets of the last run, by outcome (apply: the report's "
            "outcome; plan: the action; status: available or unavailable).",
            labels=["command", "outcome"])
        for outcome, count in sorted((record.counts or {}).items()):
            targets.add_metric([command, outcome], count)
        yield targets
        yield _gauge("ldbulk_unresolved_lines", "Manifest lines of the last run that gave "
                     "no target.", command, record.unresolved)
        cost = record.cost
        counters = (
            ("ldbulk_requests", "Requests sent to LaunchDarkly by the last run.",
             cost.requests if cost else 0),
            ("ldbulk_throttled_requests", "Answers 429 (rate limited) in the last run.",
             cost.throttled if cost else 0),
            ("ldbulk_retries", "Requests sent again by the last run.",
             cost.retries if cost else 0),
            ("ldbulk_rate_limit_paused_seconds", "Seconds the last run held requests back "
             "for LaunchDarkly's rate limits.", cost.paused_s if cost else 0.0),
        )  # fmt: skip
        for name, documentation, value in counters:
            counter = CounterMetricFamily(name, documentation, labels=["command"])
            counter.add_metric([command], value)
            yield counter
        yield _gauge("ldbulk_run_duration_seconds", "Wall time of the last run.", command,
                     record.elapsed_s())
        yield _gauge("ldbulk_exit_code", "Exit code of the last run (0 ok, 1 failed, 2 bad "
                     "input, 3 plan has changes, 130/143 interrupted).", command,
                     self.exit_code)
        yield _gauge("ldbulk_last_run_timestamp_seconds", "When the last run began (Unix "
                     "time).", command, record.started_at)
        if self.last_success is not None:
            yield _gauge(LAST_SUCCESS, "When the last run that exited 0 ended (Unix time); "
                         "carried over by runs that did not.", command, self.last_success)


def _gauge(name: str, documentation: str, command: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["command"])
    gauge.add_metric([command], value)
    return gauge


def previous_success(path: Path, command: str) -> float | None:
    """The last-success time the file at ``path`` holds for ``command``, if it holds one (a
    missing, unreadable or foreign file holds none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("command") == command:
                    value = float(sample.value)
                    return value if math.isfinite(value) else None
    except ValueError:  # not the text format: nothing to carry over
        return None
    return None


def write_metrics(path: Path, record: RunRecord, exit_code: int) -> None:
    """Write the run's metrics to ``path`` whole or not at all (:class:`OSError` otherwise).

    ``write_to_textfile`` writes a temp file beside it and renames it, so the collector never
    reads half a file. The file keeps the umask's mode, not ldbulk's usual 0600: it holds
    counts only, and node_exporter reads it as a user of its own. A symlink is never written
    through (:func:`ldbulk.files.refuse_links`)."""
    command = record.command or ""
    last_success = time.time() if exit_code == 0 else previous_success(path, command)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(record, exit_code, last_success))
    refuse_links(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(os.fspath(path), registry)


def _remember(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is None:
        return
    try:
        check_writable(value)  # before the first request, not after the last
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise click.BadParameter(f"cannot write {value}: {reason}") from None
    record.current().metrics_file = value


metrics_option = click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    expose_value=False,
    callback=_remember,
    help="Write the run's metrics here at its end, whatever the exit code, in the Prometheus "
    "text format (for node_exporter's textfile collector: name it *.prom).",
)
