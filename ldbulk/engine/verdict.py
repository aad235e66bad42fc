"""How one target ended, before the engine adds its timing: outcomes from errors, and the
words a report row uses (redacted first, then escaped and cut)."""

from __future__ import annotations

from typing import Any, Final

import attrs

from ldbulk.api.models import ErrorBody
from ldbulk.engine.report import Key, Outcome, TargetResult
from ldbulk.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPStatusError,
    LdbulkError,
    NotFound,
    RateLimited,
    Stopped,
    Unauthorized,
)
from ldbulk.text import printable

# How an error ends the target it came from, where it says what became of the request: answered
# and not applied (a status), or not sent at all (the stop). Any other error (no answer, a 5xx,
# a 409 no listing explained) is no verdict of its own: the caller settles it, or it fails.
_OUTCOMES: Final[dict[type[LdbulkError], Outcome]] = {
    BadRequest: Outcome.INVALID,
    Forbidden: Outcome.FORBIDDEN,
    NotFound: Outcome.NOT_FOUND,
    Unauthorized: Outcome.UNAUTHORIZED,
    RateLimited: Outcome.RATE_LIMITED,
    Stopped: Outcome.SKIPPED,
}


def outcome_of(exc: LdbulkError) -> Outcome | None:
    """The outcome ``exc`` decides for its target, or None when it decides none."""
    return _OUTCOMES.get(type(exc))


# A report row's message: enough to act on, short enough to read in a table.
MESSAGE_LIMIT: Final = 500

STOPPED: Final = "not tried: the run was stopped"

# A saved plan's action that met an integration someone wrote after the plan was made.
CHANGED_SINCE_PLAN: Final = ErrorBody(
    code="changed_since_plan",
    message="changed since the plan: not written; make a new plan and review it",
)


def error_info(exc: LdbulkError) -> ErrorBody:
    """LaunchDarkly's code, message and request id of a status error; else ldbulk's words."""
    if isinstance(exc, HTTPStatusError):
        return ErrorBody(code=exc.code, message=exc.message, id=exc.request_id)
    return ErrorBody(code=type(exc).__name__, message=str(exc))


def shown(message: str) -> str:
    """A message as a report holds it: escaped (control characters made visible), then cut to
    :data:`MESSAGE_LIMIT`. Redact before, never after: escaping or cutting first would leave
    parts of a secret the redaction no longer matches."""
    text = printable(message)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "…"


def unauthorized_reason(exc: Unauthorized) -> str:
    """Why the rest of a run was not tried after a 401, in words that name the 401."""
    said = f": {shown(exc.message)}" if exc.message else ""
    return f"not tried: LaunchDarkly refused the access token (401 Unauthorized{said})"


@attrs.frozen(kw_only=True)
class Verdict:
    """How a target ended, before the timing is added."""

    outcome: Outcome
    status: int | None = None
    integration_id: str | None = None
    attempts: int = 0
    error: ErrorBody | None = None
    changed: tuple[str, ...] = ()
    version: int | None = None

    def result(self, key: Key, **more: Any) -> TargetResult:
        """This verdict as the report row of the target ``key``, with ``more`` of its fields
        (``elapsed_s``, ``waited_s``, ``source``, ``store``): the one place a row is made, so
        a field of the verdict is never copied by hand."""
        project, environment, integration = key
        # Field by field rather than through attrs.asdict: one row per target, and asdict's
        # generic walk was a measurable share of a create's CPU. test_verdict_result
        # checks that every field of a verdict is passed on.
        return TargetResult(
            project=project, environment=environment, integration=integration,
            outcome=self.outcome, status=self.status, integration_id=self.integration_id,
            attempts=self.attempts, error=self.error, changed=self.changed,
            version=self.version, **more,
        )

    @classmethod
    def created(cls, integration_id: str, attempts: int, version: int | None) -> Verdict:
        """Our create was answered 201."""
        return cls(outcome=Outcome.CREATED, status=201, integration_id=integration_id,
                   attempts=attempts, version=version)

    @classmethod
    def of(cls, outcome: Outcome, exc: LdbulkError, attempts: int, *, note: str = "") -> Verdict:
        """A verdict ending in an error (a status error or a transport failure), with an
        optional ``note`` after its message."""
        error = error_info(exc)
        if note:
            error = attrs.evolve(error, message=f"{error.message} ({note})")
        return cls(
            outcome=outcome, status=getattr(exc, "status", None), attempts=attempts, error=error
        )

    @classmethod
    def skipped(cls, code: str, message: str, *, attempts: int = 0) -> Verdict:
        """Never tried (or nothing applied), and why."""
        return cls(
            outcome=Outcome.SKIPPED, attempts=attempts, error=ErrorBody(code=code, message=message)
        )

    @classmethod
    def unsettled(cls, error: LdbulkError | None, listing: LdbulkError, attempts: int) -> Verdict:
        """A create failed unclearly and the listing that would settle it failed too."""
        assert error is not None
        outcome = Outcome.CONFLICT if isinstance(error, Conflict) else Outcome.FAILED
        note = (
            "not retried: whether it was applied is unknown, the listing that would tell "
            f"failed: {listing}; a re-run settles it"
        )
        return cls.of(outcome, error, attempts, note=note)

    @classmethod
    def stopped(cls, error: LdbulkError | None, attempts: int) -> Verdict:
        """The run stopped before this target's next create was sent."""
        if error is None:
            # Nothing was sent, or only what a 429 refused: nothing was applied.
            return cls.skipped("stopped", STOPPED, attempts=attempts)
        # An earlier try failed and the listing did not find the integration; say so.
        return cls.of(Outcome.FAILED, error, attempts, note="not retried: the run was stopped")
