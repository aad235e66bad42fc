"""What a run does with one target: one decision, for ``plan`` and ``apply`` alike. Pure, no I/O.

A target's fate is decided in two steps, each from what has been read so far:

1. From the account's listing (which carries no ``config``): nothing listed is a *create*; a
   create-only run leaves what is there alone, unread (*exists*); an integration a state file
   says an earlier run left exactly as this wish asks is *unchanged*, unread. Anything else
   must be read by id.
2. From that read: *unchanged*, or *update* with exactly the fields that differ (and the patch
   that writes them).

``plan`` shows these decisions and ``apply`` carries them out; both call the two functions
here, so a plan says what an apply started at the same moment would send, ``--state`` and
``--rotate-secrets`` included.
"""

from __future__ import annotations

import enum

import attrs

from ldbulk.api.models import Integration, Target
from ldbulk.engine.drift import Drift, compare
from ldbulk.engine.seen import Seen
from ldbulk.engine.update import Update, update_for


class Action(enum.StrEnum):
    """What ``apply`` would do for a target, or a prune for an integration no target names."""

    CREATE = "create"
    UPDATE = "update"  # there, but some field differs: apply patches those fields
    UNCHANGED = "unchanged"  # there, and as the manifest says (read, or known from the state)
    EXISTS = "exists"  # there, not compared (create-only)
    NOT_FOUND = "not_found"  # the project or environment does not exist
    DELETE = "delete"  # a prune deletes it: tagged as ldbulk's, in scope, named by no target
    UNMANAGED = "unmanaged"  # in scope and named by no target, but not tagged: left alone
    # Carries the shared default tag outside the manifests' scope: shown, never touched.
    ORPHANED = "orphaned"

    @property
    def changes(self) -> bool:
        """Whether apply would write something for this row."""
        return self in (Action.CREATE, Action.UPDATE, Action.DELETE)


@attrs.frozen(kw_only=True)
class Decision:
    """A target's action after its read, what differs, and the patch an update sends."""

    action: Action
    drift: Drift = attrs.field(factory=Drift)
    update: Update | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields an update writes (names only), none for any other action."""
        return self.update.fields if self.update is not None else ()

    @property
    def patch(self) -> tuple[tuple[str, str], ...]:
        """An update's operations after its version test, as (op, path): no values."""
        if self.update is None:
            return ()
        return tuple((op["op"], op["path"]) for op in self.update.operations[1:])


def before_read(
    target: Target,
    listed: Integration | None,
    *,
    create_only: bool = False,
    rotate_secrets: bool = False,
    seen: Seen | None = None,
) -> Action | None:
    """The action the listing alone settles, or None when the integration must be read.

    ``listed``: the target's integration as the account's listing gave it, if any.
    """
    if listed is None:
        return Action.CREATE
    if create_only:
        return Action.EXISTS
    # Rotating writes what no read can compare, so no earlier run's word makes it needless.
    if seen is not None and not rotate_secrets and seen.unchanged(target, listed):
        return Action.UNCHANGED
    return None


def after_read(target: Target, current: Integration, *, rotate_secrets: bool = False) -> Decision:
    """The action for ``current`` (read by id): unchanged, or the update that converges it."""
    drift = compare(target, current)
    update = update_for(target, current, rotate_secrets=rotate_secrets, drift=drift)
    if update is None:
        return Decision(action=Action.UNCHANGED, drift=drift)
    return Decision(action=Action.UPDATE, drift=drift, update=update)
