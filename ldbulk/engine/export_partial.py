"""An export's partial file: each integration read so far, one JSON line, beside the output.

An export of a large account reads every integration by id, at LaunchDarkly's pace: hours
for hundreds of thousands. Each read is written down as soon as it is described (its store's
shape, never a secret: secrets are only ever "set" or not, a mask only by its digest), so an
export that is stopped resumes from the file and reads only what it had not. The output itself
is written whole at the end (atomically), then the partial file is removed.

The first line says which export the file is of (its format and the projects asked for); a
file of another export is not resumed from but started over. A last line cut short (the
process killed mid-write) is ignored: that integration is read again.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

from ldbulk.engine.export_document import Placed
from ldbulk.engine.export_shape import Shape, SkippedIntegration
from ldbulk.files import open_private, write_atomically

PARTIAL_SUFFIX: Final = ".partial"
PARTIAL_FORMAT: Final = 1

# What reading an integration by id came to: described, left out (and why), or gone since the
# listing (None).
Read = Placed | SkippedIntegration | None


def partial_path(output: Path) -> Path:
    """Where the partial file of an export written to ``output`` is kept."""
    return output.with_name(output.name + PARTIAL_SUFFIX)


def _header(projects: Sequence[str]) -> dict[str, Any]:
    return {"ldbulk_export_partial": PARTIAL_FORMAT, "projects": sorted(set(projects))}


def _encode(integration_id: str, read: Read) -> str:
    row: dict[str, Any] = {"id": integration_id}
    if isinstance(read, Placed):
        row |= {"project": read.project, "environment": read.environment,
                "owned": read.owned, "shape": read.shape.to_data()}  # fmt: skip
    elif isinstance(read, SkippedIntegration):
        row |= {"project": read.project, "environment": read.environment,
                "integration": read.integration, "skipped": read.reason}  # fmt: skip
    return json.dumps(row, separators=(",", ":")) + "\n"


def _decode(row: dict[str, Any], shapes: dict[Shape, Shape]) -> Read:
    if "shape" in row:
        shape = Shape.from_data(row["shape"])
        return Placed(
            project=sys.intern(str(row["project"])),
            environment=str(row["environment"]),
            # One object per store, however many integrations it has.
            shape=shapes.setdefault(shape, shape),
            owned=bool(row["owned"]),
        )
    if "skipped" in row:
        return SkippedIntegration(
            project=str(row["project"]), environment=str(row["environment"]),
            integration=str(row["integration"]), reason=str(row["skipped"]),
        )  # fmt: skip
    return None


def load_partial(path: Path, projects: Sequence[str]) -> dict[str, Read]:
    """What the partial file at ``path`` holds of an export of ``projects``, by integration id
    (empty when there is none, or it is of another export)."""
    done: dict[str, Read] = {}
    shapes: dict[Shape, Shape] = {}
    try:
        file = path.open(encoding="utf-8")
    except FileNotFoundError:
        return done
    with file:
        first = file.readline()
        try:
            if json.loads(first) != _header(projects):
                return done
        except ValueError:
            return done
        for line in file:
            try:
                row = json.loads(line)
                done[str(row["id"])] = _decode(row, shapes)
            except (ValueError, KeyError, TypeError):
                break  # cut short when the process was killed: read again from here
    return done


class PartialWriter:
    """Appends each read to the partial file as it is made (a line at a time, so a stopped
    export loses at most the read it was writing)."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, integration_id: str, read: Read) -> None:
        self._file.write(_encode(integration_id, read))
        self._file.flush()


@contextlib.contextmanager
def partial_writer(
    path: Path, projects: Sequence[str], kept: dict[str, Read]
) -> Iterator[PartialWriter]:
    """A writer of the partial file at ``path``, which starts with the header and the reads
    ``kept`` from before (rewritten: a line cut short or of another export is gone)."""
    def start(file: IO[str]) -> None:
        file.write(json.dumps(_header(projects)) + "\n")
        for integration_id, read in kept.items():
            file.write(_encode(integration_id, read))

    # Whole or not at all: stopped while rewriting, the file of before is still there.
    write_atomically(path, start)
    with open_private(path, append=True) as file:
        yield PartialWriter(file)
