"""``ldbulk validate``: the manifests checked offline, as a line for people or one JSON
document (``-o json``) for a tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import click

from ldbulk.cli.common import (
    EXIT_USAGE,
    UsageFailure,
    load,
    manifest_options,
    manifest_paths,
    output_option,
    print_line,
)
from ldbulk.manifest import ManifestSet, Problem

VALIDATE_JSON_VERSION: Final = 1
# How the manifest's messages append a suggestion: "unknown store "rr"; did you mean "r"?".
_HINT: Final = "; did you mean "


@click.command()
@manifest_paths
@manifest_options
@click.option("--require-secrets", is_flag=True,
              help="A ${VAR} reference whose variable is not set is an error, as for apply "
              "(by default a note: only apply needs the values).")
@output_option
def validate(
    manifests: tuple[Path, ...], require_secrets: bool, output: str, **kwargs: Any
) -> None:
    """Check manifests offline: syntax, stores, secret references, targets. Sends nothing."""
    if output != "json":
        loaded = load(manifests, kwargs, require_secrets=require_secrets, compares=False)
        print_line(
            f"{len(manifests)} manifest(s) valid: {len(loaded.stores)} store(s), "
            f"{loaded.target_lines} target line(s)."
        )
        return
    try:
        loaded = load(manifests, kwargs, require_secrets=require_secrets, compares=False)
    except UsageFailure as exc:
        exc.show()  # the problems on stderr too, for whoever reads the job's log
        click.echo(json.dumps(validate_json(manifests, None, exc), indent=2))
        raise SystemExit(EXIT_USAGE) from None
    click.echo(json.dumps(validate_json(manifests, loaded, None), indent=2))


def validate_json(
    paths: tuple[Path, ...], loaded: ManifestSet | None, failure: UsageFailure | None
) -> dict[str, Any]:
    """``validate -o json``: whether the manifests are valid, what they hold, and every
    problem with its place (``message`` alone when the failure is not a manifest's)."""
    problems = [_problem(problem) for problem in failure.problems] if failure else []
    if failure is not None and not problems:
        problems = [{"file": None, "line": None, "path": None,
                     "message": failure.message, "hint": None}]
    return {
        "version": VALIDATE_JSON_VERSION,
        "ok": failure is None,
        "manifests": [str(path) for path in paths],
        "digest": loaded.digest if loaded is not None else None,
        "stores": len(loaded.stores) if loaded is not None else None,
        "target_lines": loaded.target_lines if loaded is not None else None,
        "unset_references": {ref: list(stores) for ref, stores in
                             loaded.unset_references.items()} if loaded is not None else {},
        "problems": problems,
    }


def _problem(problem: Problem) -> dict[str, Any]:
    message, hint = problem.message, None
    if _HINT in message:
        message, suggestion = message.split(_HINT, 1)
        hint = "did you mean " + suggestion
    return {"file": problem.file, "line": problem.line, "path": problem.path,
            "message": message, "hint": hint}
