"""What a store check finds: each step's result in words, per distinct store, and which stores are
the same store.

A step is ``ok``, ``failed``, or ``not_checked`` (with the reason it could not be, never silently
left out). A store passes when no step failed. Nothing here holds a secret in clear where it could
be shown: a :class:`StoreCheck` keeps its config out of ``repr`` and JSON, and every message is
built by ldbulk or passed through the config's ``redact`` first.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ldbulk.api.models import StoreConfig, form_fields, is_secret
from ldbulk.manifest import Store

CHECK_VERSION: Final = 1

# The steps of each kind of store, in the order they run.
REDIS_STEPS: Final = ("dns", "tcp", "tls", "auth", "ping", "role", "version")
DYNAMODB_STEPS: Final = (
    "describe_table",
    "status",
    "key_schema",
    "role_arn",
    "trust_policy",
)
STEPS: Final = {"redis": REDIS_STEPS, "dynamodb": DYNAMODB_STEPS}

# Said of every store of each kind: what a check from the user's machine cannot prove.
NOTES: Final = {
    "redis": (
        "Checked from this machine's network: LaunchDarkly connects from its own, so a firewall "
        "or allow-list may still keep it out.",
    ),
    "dynamodb": (
        "Not checked from here: that LaunchDarkly can assume the role (only LaunchDarkly's AWS "
        "account can), and that the role's permissions let it read and write the table.",
    ),
}

EARLIER_STEP_FAILED: Final = "not checked: an earlier step failed"

# What a timeout in a step most often means.
TIMEOUT_HINTS: Final = {
    "tcp": "a firewall may be dropping the connection",
    "tls": "does the port speak TLS? A plain Redis port waits for more",
}


class StepResult(enum.StrEnum):
    """How one step of a store check ended."""

    OK = "ok"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


@attrs.frozen(kw_only=True)
class Step:
    """One step of a store check: its name (``dns``, ``describe_table``...), how it ended, and
    what it found, in words."""

    name: str
    result: StepResult
    message: str = ""


@attrs.frozen(kw_only=True)
class StoreCheck:
    """The check of one distinct store: the manifest stores that name it, where it is, and each
    step's result.

    ``where`` shows values that came from a ``${...}`` reference as their reference. ``config``
    is the config that was checked (kept out of ``repr`` and JSON; its own repr hides secrets).
    """

    names: tuple[str, ...]
    integration: str
    where: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    config: StoreConfig = attrs.field(repr=False, eq=False)

    @property
    def ok(self) -> bool:
        """Whether the store passed: no step failed."""
        return all(step.result is not StepResult.FAILED for step in self.steps)

    @property
    def reason(self) -> str | None:
        """Why the store failed, as a report can say it (``tls: TLS: certificate verify
        failed``): the first failed step; None when it passed."""
        for step in self.steps:
            if step.result is StepResult.FAILED:
                return f"{step.name}: {step.message}"
        return None

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The store's entry in ``ldbulk check -o json`` (a stable shape)."""
        return {
            "names": list(self.names),
            "integration": self.integration,
            "where": self.where,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "steps": [
                {"step": step.name, "result": step.result.value, "message": step.message}
                for step in self.steps
            ],
            "notes": list(self.notes),
        }


def checks_to_json(checks: Sequence[StoreCheck]) -> dict[str, Any]:
    """The whole JSON document of ``ldbulk check -o json``."""
    passed = sum(1 for check in checks if check.ok)
    return {
        "version": CHECK_VERSION,
        "ok": passed == len(checks),
        "counts": {"total": len(checks), "passed": passed, "failed": len(checks) - passed},
        "stores": [check.to_json() for check in checks],
    }


# -- which stores are the same store --------------------------------------------------------


def same_store(a: StoreConfig, b: StoreConfig) -> bool:
    """Whether two configs are the same store: the same integration and field values, whatever
    references they came from. Secrets are compared in memory in constant time, never hashed
    or kept anywhere else."""
    if type(a) is not type(b):
        return False
    for field in form_fields(type(a)):
        mine, theirs = getattr(a, field.name), getattr(b, field.name)
        if is_secret(field):
            if not hmac.compare_digest(str(mine).encode(), str(theirs).encode()):
                return False
        elif mine != theirs:
            return False
    return True


@attrs.frozen(kw_only=True)
class DistinctStore:
    """One store to check, with the names of the manifest stores that are it."""

    config: StoreConfig = attrs.field(repr=False)
    names: tuple[str, ...] = ()


def distinct_stores(stores: Iterable[Store | StoreConfig]) -> list[DistinctStore]:
    """The distinct stores among manifest stores or bare configs, in the order first seen."""
    found: list[DistinctStore] = []
    for store in stores:
        config = store.config if isinstance(store, Store) else store
        name = (store.name,) if isinstance(store, Store) else ()
        for index, seen in enumerate(found):
            if same_store(seen.config, config):
                names = seen.names + tuple(n for n in name if n not in seen.names)
                found[index] = DistinctStore(config=seen.config, names=names)
                break
        else:
            found.append(DistinctStore(config=config, names=name))
    return found


def check_for(checks: Iterable[StoreCheck], config: StoreConfig) -> StoreCheck | None:
    """The check of the store ``config`` is, if one of ``checks`` is of it."""
    for check in checks:
        if same_store(check.config, config):
            return check
    return None


def shown(config: StoreConfig, name: str) -> str:
    """A config field as output may show it: its reference when it came from one, ``***`` when
    secret, else its value."""
    reference = config.references.get(name)
    if reference is not None:
        return reference
    field = attrs.fields_dict(type(config))[name]
    return "***" if is_secret(field) else str(getattr(config, name))


@attrs.define
class StepLog:
    """The steps of one check as they run: a checker starts a step, then says how it ended.

    A step still running when the check's time runs out fails with the timeout; every step
    never reached is ``not_checked`` because an earlier one failed.
    """

    names: tuple[str, ...]
    done: dict[str, Step] = attrs.field(factory=dict)
    current: str | None = None

    def start(self, name: str) -> None:
        """``name`` is the step running now."""
        self.current = name

    def ok(self, message: str, name: str | None = None) -> None:
        """The running step (or ``name``) passed."""
        self._end(StepResult.OK, message, name)

    def fail(self, message: str, name: str | None = None) -> None:
        """The running step (or ``name``) failed."""
        self._end(StepResult.FAILED, message, name)

    def not_checked(self, message: str, name: str | None = None) -> None:
        """The running step (or ``name``) could not be checked; ``message`` says why."""
        self._end(StepResult.NOT_CHECKED, message, name)

    def fail_pending(self, message: str, hints: Mapping[str, str] | None = None) -> None:
        """The running step failed (or, between steps, the next one): a timeout, a surprise.
        ``hints``: what to add to the message, by step."""
        name = self.current if self.current not in (None, *self.done) else None
        name = name or next((n for n in self.names if n not in self.done), None)
        if name is not None:
            hint = (hints or {}).get(name)
            self._end(StepResult.FAILED, f"{message} ({hint})" if hint else message, name)

    def steps(self) -> tuple[Step, ...]:
        """Every step in order, those never reached as not checked."""
        return tuple(
            self.done.get(name)
            or Step(name=name, result=StepResult.NOT_CHECKED, message=EARLIER_STEP_FAILED)
            for name in self.names
        )

    def _end(self, result: StepResult, message: str, name: str | None) -> None:
        name = name or self.current
        if name is None or name not in self.names:
            raise ValueError(f"no step {name!r} is running")
        self.done[name] = Step(name=name, result=result, message=message)
        if name == self.current:
            self.current = None
