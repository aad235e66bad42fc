"""A verdict becomes its target's report row with every field it holds."""

from __future__ import annotations

import attrs

from ldbulk.api.models import ErrorBody
from ldbulk.engine.report import Outcome
from ldbulk.engine.verdict import Verdict


def test_every_field_of_a_verdict_reaches_its_row() -> None:
    verdict = Verdict(
        outcome=Outcome.UPDATED,
        status=200,
        integration_id="abc123",
        attempts=2,
        error=ErrorBody(code="c", message="m"),
        changed=("config.host", "tags"),
        version=7,
    )
    row = verdict.result(("proj", "env", "redis"), elapsed_s=1.5, waited_s=0.5)
    for field in attrs.fields(Verdict):
        assert getattr(row, field.name) == getattr(verdict, field.name), field.name
    assert (row.project, row.environment, row.integration) == ("proj", "env", "redis")
    assert (row.elapsed_s, row.waited_s) == (1.5, 0.5)
