"""Tables as lists on a narrow terminal: below :data:`NARROW_BELOW` columns a row of six cells
wraps into a dozen lines, and a key into pieces. Instead, one block per row, its first cell
whole on a line of its own and the rest indented under it; a plan's rows that make the same
change are one block, the change said once with how many it is ("30 x config.host: a → b").

Lines are made here and printed by the caller, never wrapped: a key stays whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import attrs

# Below this many columns a table of a plan, an apply or a status becomes a list (the progress
# bar drops its rate at the same width).
NARROW_BELOW: Final = 100


def is_narrow(width: int, *, terminal: bool) -> bool:
    """Whether a table drawn ``width`` columns wide is better shown as a list: only on a
    terminal (elsewhere a table is plain text at full width, never wrapped)."""
    return terminal and width < NARROW_BELOW


def row_blocks(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """One block per row: its first cell, then each other cell that says something, indented
    and named by its column (``  outcome: not_found``)."""
    for row in rows:
        yield row[0]
        for header, cell in zip(headers[1:], row[1:], strict=True):
            if cell:
                yield f"  {header}: {cell}"


@attrs.frozen(kw_only=True)
class PlanLine:
    """What the list shows of one plan row: its target, action, id and changes."""

    target: str
    action: str
    integration_id: str = ""
    changes: tuple[str, ...] = ()


def plan_blocks(lines: Iterable[PlanLine]) -> Iterator[str]:
    """One block per target, its changes indented; targets with the same action and the very
    same changes are one block, each change said once with their count, then the targets."""
    groups: dict[tuple[str, tuple[str, ...]], list[PlanLine]] = {}
    for line in lines:
        groups.setdefault((line.action, line.changes), []).append(line)
    for (action, changes), members in groups.items():
        if len(members) == 1 or not changes:
            yield from _one_by_one(members)
            continue
        yield f"{action}: {len(members)} targets"
        yield from (f"  {len(members)} x {change}" for change in changes)
        yield from (f"  - {_named(member)}" for member in members)


def _one_by_one(members: list[PlanLine]) -> Iterator[str]:
    for member in members:
        yield f"{member.action}: {_named(member)}"
        yield from (f"  {change}" for change in member.changes)


def _named(line: PlanLine) -> str:
    return f"{line.target} ({line.integration_id})" if line.integration_id else line.target
