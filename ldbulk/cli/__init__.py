"""The ``ldbulk`` command line: click wiring, rendering, progress, signals and logs."""

from ldbulk.cli.main import main

__all__ = ["main"]
