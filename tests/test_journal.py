"""The journal: written line by line, read back tolerating a crash, final outcomes only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldbulk.api.models import ErrorBody
from ldbulk.engine.journal import Journal, read_settled
from ldbulk.engine.report import Outcome, TargetResult
from ldbulk.errors import ConfigError
from ldbulk.manifest import loads_manifest


def result(environment: str, outcome: Outcome) -> TargetResult:
    return TargetResult(
        project="web",
        environment=environment,
        integration="redis",
        outcome=outcome,
        status=201 if outcome is Outcome.CREATED else None,
        integration_id="id-1" if outcome.ok else None,
        attempts=1,
        error=None if outcome.ok else ErrorBody(code="x", message="y", id="z"),
    )


def crashed_mid_line(tmp_path: Path) -> Path:
    """A journal of one created target ("a"), then half a line: a crash while writing "b"."""
    path = tmp_path / "run.journal"
    with Journal(path) as journal:
        journal.record(result("a", Outcome.CREATED))
    with path.open("a") as file:
        file.write('{"project": "web", "environment": "b", "integ')
    return path


def test_results_round_trip_through_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    written = [result("a", Outcome.CREATED), result("b", Outcome.NOT_FOUND)]
    with Journal(path) as journal:
        for item in written:
            journal.record(item)
    assert list(read_settled(path).values()) == written


def test_each_line_is_on_disk_before_the_journal_closes(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    with Journal(path) as journal:
        journal.record(result("a", Outcome.CREATED))
        assert path.read_text().count("\n") == 2  # the header, then the result


def test_transient_outcomes_are_tried_again_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    with Journal(path) as journal:
        for environment, outcome in [
            ("a", Outcome.FAILED),
            ("b", Outcome.SKIPPED),
            ("c", Outcome.RATE_LIMITED),
            ("d", Outcome.EXISTS),
        ]:
            journal.record(result(environment, outcome))
    assert [key[1] for key in read_settled(path)] == ["d"]


def test_a_later_line_replaces_an_earlier_one(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    with Journal(path) as journal:
        journal.record(result("a", Outcome.CREATED))
        journal.record(result("a", Outcome.FAILED))
        journal.record(result("b", Outcome.FAILED))
        journal.record(result("b", Outcome.CREATED))
    assert [key[1] for key in read_settled(path)] == ["b"]


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = crashed_mid_line(tmp_path)
    assert [key[1] for key in read_settled(path)] == ["a"]


def test_resuming_from_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no journal"):
        read_settled(tmp_path / "missing.journal")


def test_a_report_given_as_a_journal_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text('{"version": 1, "summary": {}, "results": []}\n')
    with pytest.raises(ConfigError, match="not an ldbulk journal"):
        read_settled(report)
    assert report.read_text() == '{"version": 1, "summary": {}, "results": []}\n'


@pytest.mark.parametrize("line", ["null", "[]", "42", '"text"', '{"project": 1}'])
def test_a_line_that_is_no_result_is_skipped(tmp_path: Path, line: str) -> None:
    path = tmp_path / "run.journal"
    with Journal(path) as journal:
        journal.record(result("a", Outcome.CREATED))
    with path.open("a") as file:
        file.write(line + "\n")
    assert [key[1] for key in read_settled(path)] == ["a"]


def test_a_journal_of_other_manifests_is_refused(tmp_path: Path) -> None:
    text = "version: 1\nstores: {r: {integration: redis, config: {host: h}}}\n"
    text += "targets: [{project: p, environments: [e], store: r}]\n"
    path = tmp_path / "run.journal"
    with Journal(path, digest=loads_manifest(text).digest) as journal:
        journal.record(result("a", Outcome.CREATED))
    assert len(read_settled(path, digest=loads_manifest(text).digest)) == 1
    changed = loads_manifest(text + "# changed\n").digest
    with pytest.raises(ConfigError, match="other manifests"):
        read_settled(path, digest=changed)


def test_a_resumed_journal_keeps_its_header_and_earlier_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    with Journal(path) as journal:
        journal.record(result("a", Outcome.CREATED))
    read_settled(path)
    with Journal(path, resume=True) as journal:
        journal.record(result("b", Outcome.CREATED))
    assert [key[1] for key in read_settled(path)] == ["a", "b"]


def test_recording_outside_the_context_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        Journal(tmp_path / "j").record(result("a", Outcome.CREATED))


def test_a_resumed_journal_starts_after_a_line_cut_short(tmp_path: Path) -> None:
    path = crashed_mid_line(tmp_path)
    read_settled(path)
    with Journal(path, resume=True) as journal:
        journal.record(result("c", Outcome.CREATED))
    assert [key[1] for key in read_settled(path)] == ["a", "c"]
