"""What happened to each target of a run: outcomes, counts, exit code, and the JSON report.

The JSON shape is stable (``"version": 2``) and documented in the README; renderings for people
and CI dashboards (terminal, Markdown, JUnit) live in :mod:`ldbulk.cli.render`. Nothing here holds
a store config, so no secret can reach a report.
"""

from __future__ import annotations

import datetime
import enum
import io
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final, TextIO, cast

import attrs
import cattrs

from ldbulk._version import __version__
from ldbulk.api.models import ErrorBody
from ldbulk.http.scope import RunStats

REPORT_VERSION: Final = 2

# The report's own JSON: field names as they are, enums by value, seconds to the millisecond.
# Not the API's converter: this format is ldbulk's, with Python names, not LaunchDarkly's.
_FORMAT: Final = cattrs.Converter(forbid_extra_keys=False)
_FORMAT.register_unstructure_hook(float, lambda seconds: round(seconds, 3))

# (project, environment, integration key): LaunchDarkly allows one integration of each.
Key = tuple[str, str, str]


def utc_now() -> str:
    """The time now, UTC, to the second, as ISO 8601 (a report's start and end)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


class Outcome(enum.StrEnum):
    """How one target ended."""

    CREATED = "created"  # this run created the integration
    UPDATED = "updated"  # it was there and differed; this run patched the fields that did
    UNCHANGED = "unchanged"  # it was there, read and compared: as the manifest says
    EXISTS = "exists"  # it was there and not compared (create-only); nothing written
    DELETED = "deleted"  # pruned: tagged as ldbulk's, in scope, and named by no target
    NOT_FOUND = "not_found"  # the project or environment does not exist (404)
    INVALID = "invalid"  # LaunchDarkly rejected the config (400)
    FORBIDDEN = "forbidden"  # the token's role may not do this, or no beta header (403)
    UNAUTHORIZED = "unauthorized"  # the token is not valid (401): the run stops
    CONFLICT = "conflict"  # 409 that the list endpoint could not explain
    RATE_LIMITED = "rate_limited"  # still throttled when the throttle deadline ran out
    FAILED = "failed"  # transport errors or 5xx until retries ran out
    SKIPPED = "skipped"  # never tried: the run was stopped or aborted first

    @property
    def ok(self) -> bool:
        """Whether the target is as the manifests say (or, for a prune, gone)."""
        return self in _OK


_OK: Final = frozenset(
    {Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.EXISTS, Outcome.DELETED}
)


@attrs.frozen(kw_only=True)
class TargetResult:
    """The outcome of one target, with what it took to get there.

    - ``project``, ``environment``, ``integration``: the target (``integration`` is the
      integration key, ``redis`` or ``dynamodb``); :attr:`key` is the three together.
    - ``outcome``: how it ended (:class:`Outcome`); :attr:`ok` whether that is as asked.
    - ``status``: the HTTP status that settled it, when one did; ``error``: LaunchDarkly's
      code, message (redacted) and request id, or ldbulk's words, when it did not end well.
    - ``integration_id`` and ``version``: the integration as the run left it, when known.
    - ``attempts``: writes sent for it; ``changed``: the fields an update wrote (names only).
    - ``elapsed_s``: its time from first request to verdict, of which ``waited_s`` waiting
      for a turn under the rate limits.
    - ``source`` and ``store``: the manifest's ``file:line`` and store name (``apply`` only).
    """

    project: str
    environment: str
    integration: str
    outcome: Outcome
    status: int | None = None
    integration_id: str | None = None
    attempts: int = 0
    error: ErrorBody | None = None
    elapsed_s: float = 0.0
    # Of ``elapsed_s``, the seconds its requests waited for their turn under the rate limits.
    waited_s: float = 0.0
    # The fields an update wrote (``config.host``, ``tags``...): names only, never values.
    changed: tuple[str, ...] = ()
    # The integration's version as the run left it, when known.
    version: int | None = None
    # Where the target came from: the manifest's file:line, and the store's name there.
    source: str | None = None
    store: str | None = None

    @property
    def key(self) -> Key:
        """(project, environment, integration key)."""
        return (self.project, self.environment, self.integration)

    @property
    def ok(self) -> bool:
        """Whether the target is as asked (see :attr:`Outcome.ok`)."""
        return self.outcome.ok

    def to_json(self) -> dict[str, Any]:
        """This result in the report's JSON shape."""
        return cast(dict[str, Any], _FORMAT.unstructure(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetResult:
        """A result read back from a report or journal line; :class:`ValueError` if it is not
        one."""
        try:
            return _FORMAT.structure(data, cls)
        except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a result: {exc}") from None


@attrs.frozen(kw_only=True)
class Report:
    """Every target's result, in target order, and the run's stats."""

    # Thousands of results make a repr that costs real time wherever one is taken (asyncio
    # formats its task's result): the repr shows the counts instead.
    results: tuple[TargetResult, ...] = attrs.field(repr=lambda results: f"<{len(results)}>")
    stats: RunStats = attrs.field(factory=RunStats)
    # For an archive: when the run began and ended (UTC, ISO 8601), and the API it talked to.
    started_at: str | None = None
    finished_at: str | None = None
    base_url: str | None = None

    @property
    def counts(self) -> dict[Outcome, int]:
        """Totals per outcome, keyed by :class:`Outcome` (every one present, zero when none;
        a StrEnum, so ``counts["created"]`` finds ``counts[Outcome.CREATED]``). Their sum is
        :attr:`total`."""
        counter = Counter(result.outcome for result in self.results)
        return {outcome: counter[outcome] for outcome in Outcome}

    @property
    def total(self) -> int:
        """How many results the report holds."""
        return len(self.results)

    @property
    def ok(self) -> bool:
        """Whether every target is provisioned."""
        return all(result.outcome.ok for result in self.results)

    @property
    def exit_code(self) -> int:
        """0 when everything converged (created, updated, unchanged, existing, deleted), 1
        otherwise."""
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (the documented, versioned shape)."""
        return self._head() | {"results": [result.to_json() for result in self.results]}

    def _head(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "ldbulk": __version__,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "base_url": self.base_url,
            "summary": {"total": self.total} | {str(key): n for key, n in self.counts.items()},
            "stats": _FORMAT.unstructure(self.stats),
        }

    def write(self, file: TextIO) -> None:
        """Write the report as a JSON document, one result per line.

        Row by row: the document of a run of 100,000 targets is never held in memory whole
        (as one string it doubled the peak of such a run), and a row per line reads well in
        a diff or with ``grep``.
        """
        head = json.dumps(self._head(), indent=2)
        file.write(head[: head.rindex("}")].rstrip() + ',\n  "results": [')
        for index, result in enumerate(self.results):
            file.write(",\n    " if index else "\n    ")
            file.write(json.dumps(result.to_json()))
        file.write("\n  ]\n}\n" if self.results else "]\n}\n")

    def dumps(self) -> str:
        """The report as a JSON document (as :meth:`write` writes it)."""
        text = io.StringIO()
        self.write(text)
        return text.getvalue()
