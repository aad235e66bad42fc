"""A local LaunchDarkly API sandbox: the persistent store routes, projects and environments.

Run it from the command line (``ldbulk sandbox`` or ``python -m ldbulk.sandbox``) or in-process::

    async with Sandbox(SandboxOptions(projects=2, environments=3)) as sandbox:
        ...  # point a Client at sandbox.url with sandbox.token
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldbulk.sandbox.options import RecordedResponse, SandboxOptions, SandboxStats
from ldbulk.sandbox.world import WorldSpec, generate_world, read_world_file

if TYPE_CHECKING:
    from ldbulk.sandbox.server import Sandbox

__all__ = [
    "RecordedResponse",
    "Sandbox",
    "SandboxOptions",
    "SandboxStats",
    "WorldSpec",
    "generate_world",
    "read_world_file",
]


def __getattr__(name: str) -> Any:
    # The server needs aiohttp.web, and the command line imports this package for every
    # command: it loads the server only when something asks for it.
    if name == "Sandbox":
        from ldbulk.sandbox.server import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
