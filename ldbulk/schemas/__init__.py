"""The JSON Schemas of ldbulk's JSON outputs, shipped with the package: the apply report
(``--report``), ``plan -o json``, ``status -o json``, ``validate -o json`` and ``export
--format json``.

Each document carries a ``version``; each schema's ``$id`` names the version it describes, and
fixes it with ``const``: a shape that changes gets a new version and a new schema.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final, cast

NAMES: Final = ("export", "plan", "report", "status", "validate")


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one output, by name (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"no schema named {name!r}: one of {', '.join(NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))
