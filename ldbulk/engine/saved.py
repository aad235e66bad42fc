"""A saved plan: what a reviewer approved, in a file that ``apply PLAN`` carries out exactly.

``ldbulk plan --out PLAN`` writes one; ``ldbulk apply PLAN`` does its actions and nothing
else. The file holds no value that could be secret, nor any config value at all: it names the
manifest files and their digest, and per action the target's key, its manifest file and store
name, and (for an update or a delete) the integration's id and the version it was planned
against. What an update writes is named by path, without values: the values come from the same
manifests, loaded again at apply time with their references resolved then (a pull request's
plan needs no secret). So:

- the manifests must be those the plan was made from (the digest), or nothing is sent;
- an integration written by someone since the plan is not written over: each patch starts with
  a ``test`` of the planned version, and a delete checks it first;
- a create that meets an integration made since the plan is not turned into an update.

The file's format is versioned; a newer one, or a file that is no plan, is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from ldbulk.api.models import Target
from ldbulk.engine.decide import Action
from ldbulk.engine.drift import FieldChange
from ldbulk.engine.plan import PlanItem
from ldbulk.engine.report import Key, utc_now
from ldbulk.engine.update import check_patch
from ldbulk.errors import ConfigError
from ldbulk.files import write_atomically
from ldbulk.manifest import ManifestSet

KIND: Final = "ldbulk-plan"
FORMAT: Final = 1
# How a plan names itself, whatever the spacing around the colon.
_NAMES_ITSELF_A_PLAN: Final = re.compile(r'"kind"\s*:\s*"' + re.escape(KIND) + '"')

# The actions a saved plan carries out; the others (unchanged, not found...) are shown, not
# saved: there is nothing for apply to do about them.
CARRIED: Final = (Action.CREATE, Action.UPDATE, Action.DELETE)


@attrs.frozen(kw_only=True)
class SavedAction:
    """One action of a saved plan."""

    key: Key
    action: Action
    # Where the target's store is written (absent for a delete: no manifest names it).
    manifest: str | None = None
    store: str | None = None
    integration_id: str | None = None
    version: int | None = None
    # The JSON Patch operations of an update, without their values: ("replace", "/on").
    patch: tuple[tuple[str, str], ...] = ()
    # What the reviewer was shown: each change as the plan showed it (references, never
    # secret values).
    changes: tuple[FieldChange, ...] = ()


@attrs.frozen(kw_only=True)
class SavedPlan:
    """A plan file's content."""

    base_url: str
    manifests: tuple[str, ...]
    digest: str
    ownership_tags: tuple[str, ...]
    rotate_secrets: bool
    created_at: str
    actions: tuple[SavedAction, ...]

    @property
    def deletes(self) -> int:
        """How many integrations the plan deletes."""
        return sum(1 for action in self.actions if action.action is Action.DELETE)

    def check(self, *, base_url: str, max_deletes: int | None = None) -> None:
        """Raise :class:`ConfigError` unless the plan may be carried out against ``base_url``
        with at most ``max_deletes`` deletes (the plan's review is the consent to its
        deletes; a ceiling still holds)."""
        if base_url != self.base_url:
            raise ConfigError(f"the plan was made against {self.base_url}, not {base_url}: "
                              "plan again against this one")
        if max_deletes is not None and self.deletes > max_deletes:
            raise ConfigError(f"the plan deletes {self.deletes} integration(s), more than "
                              f"the {max_deletes} allowed: nothing was sent")

    def targets(self, loaded: ManifestSet) -> dict[Key, Target]:
        """The target of every create and update, built from ``loaded`` (the same manifests,
        loaded again with their references' values) as resolving their selectors built it."""
        if loaded.digest != self.digest:
            raise ConfigError(
                "the manifests changed since this plan was made: make a new plan "
                f"(planned {self.digest[:19]}, now {loaded.digest[:19]})"
            )
        stores = {
            (manifest.file, store.name): store
            for manifest in loaded.manifests
            for store in manifest.stores
        }
        targets: dict[Key, Target] = {}
        for action in self.actions:
            if action.action is Action.DELETE:
                continue
            store = stores.get((str(action.manifest), str(action.store)))
            if store is None:
                raise ConfigError(f"the plan names store {action.store!r} of {action.manifest}, "
                                  "which the manifests do not have")
            project, environment, _ = action.key
            targets[action.key] = Target(
                project=project,
                environment=environment,
                config=store.config,
                on=store.on,
                tags=store.tags,
                name=store.render_name(project, environment),
                ownership_tag=store.ownership_tag,
            )
        return targets


def saved_plan(
    items: Iterable[PlanItem],
    *,
    manifests: ManifestSet,
    stores: Mapping[Key, tuple[str, str]],
    base_url: str,
    rotate_secrets: bool,
) -> SavedPlan:
    """The saved form of a plan's rows. ``stores``: each target's manifest file and store."""
    actions: list[SavedAction] = []
    for item in items:
        if item.action not in CARRIED:
            continue
        manifest, store = stores.get(item.key, (None, None))
        actions.append(
            SavedAction(
                key=item.key,
                action=item.action,
                manifest=manifest,
                store=store,
                integration_id=item.integration_id,
                version=item.version,
                patch=item.patch,
                changes=item.drift.changes,
            )
        )
    return SavedPlan(
        base_url=base_url,
        manifests=manifests.files,
        digest=manifests.digest,
        ownership_tags=tuple(sorted({store.ownership_tag for store in manifests.stores})),
        rotate_secrets=rotate_secrets,
        created_at=utc_now(),
        actions=tuple(actions),
    )


def write_plan(path: Path, plan: SavedPlan) -> None:
    """Write the plan file whole or not at all, readable by its owner only."""
    document: dict[str, Any] = {
        "kind": KIND,
        "format": FORMAT,
        "created_at": plan.created_at,
        "base_url": plan.base_url,
        "manifests": list(plan.manifests),
        "digest": plan.digest,
        "ownership_tags": list(plan.ownership_tags),
        "rotate_secrets": plan.rotate_secrets,
        "actions": [_action_json(action) for action in plan.actions],
    }
    write_atomically(path, json.dumps(document, indent=1) + "\n")


def _action_json(action: SavedAction) -> dict[str, Any]:
    project, environment, integration = action.key
    return {
        "action": action.action.value,
        "project": project,
        "environment": environment,
        "integration": integration,
        "manifest": action.manifest,
        "store": action.store,
        "integration_id": action.integration_id,
        "version": action.version,
        "patch": [{"op": op, "path": path} for op, path in action.patch],
        "changes": [
            {"field": c.field, "current": c.current, "wanted": c.wanted} for c in action.changes
        ],
    }


def is_plan_file(path: Path) -> bool:
    """Whether ``path`` is a plan file (a JSON object naming itself one), so that ``apply``
    takes it as a plan rather than as a manifest.

    Decided from the whole document, not from how ldbulk happens to lay it out: a plan a
    reviewer's tools rewrote (``jq -c``, ``jq -S``) is still one. A file cut short is no JSON
    at all; naming itself a plan anywhere, it is taken as one, so that it is refused as a
    broken plan rather than reported as a manifest with a dozen unknown keys.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not text.lstrip().startswith("{"):
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return _NAMES_ITSELF_A_PLAN.search(text) is not None
    return isinstance(document, dict) and document.get("kind") == KIND


def read_plan(path: Path) -> SavedPlan:
    """The plan file at ``path``; :class:`ConfigError` when it is none, or of a newer format."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"plan {path}: cannot read it: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ConfigError(f"plan {path}: not an ldbulk plan file")
    if data.get("format") != FORMAT:
        raise ConfigError(
            f"plan {path}: format {data.get('format')!r}, which this ldbulk does not read "
            f"(it reads format {FORMAT}): plan again with this version"
        )
    try:
        return SavedPlan(
            base_url=_text(data["base_url"]),
            manifests=tuple(_text(name) for name in _list(data["manifests"])),
            digest=_text(data["digest"]),
            ownership_tags=tuple(_text(tag) for tag in _list(data["ownership_tags"])),
            rotate_secrets=bool(data["rotate_secrets"]),
            created_at=_text(data["created_at"]),
            actions=tuple(_action(item) for item in _list(data["actions"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"plan {path}: malformed ({type(exc).__name__}: {exc})") from None


def _action(item: Any) -> SavedAction:
    action = Action(item["action"])
    if action not in CARRIED:
        raise ValueError(f"{action.value} is not an action a plan carries out")
    key = (_text(item["project"]), _text(item["environment"]), _text(item["integration"]))
    patch = tuple((_text(op["op"]), _text(op["path"])) for op in _list(item["patch"]))
    check_patch(patch, key[2])
    version = item["version"]
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise TypeError("version must be an integer")
    return SavedAction(
        key=key,
        action=action,
        manifest=_optional(item["manifest"]),
        store=_optional(item["store"]),
        integration_id=_optional(item["integration_id"]),
        version=version,
        patch=patch,
        changes=tuple(
            FieldChange(field=_text(c["field"]), current=_text(c["current"]),
                        wanted=_text(c["wanted"]))
            for c in _list(item["changes"])
        ),
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _list(value: Any) -> Sequence[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value
