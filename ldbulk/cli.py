"""The ``ldbulk`` command line."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``ldbulk`` console script."""
    raise SystemExit("ldbulk: the command line is not built yet")
