"""A local LaunchDarkly API sandbox: the persistent store routes, projects and environments.

Run it from the command line (``ldbulk sandbox`` or ``python -m ldbulk.sandbox``) or in-process::

    async with Sandbox(SandboxOptions(projects=2, environments=3)) as sandbox:
        ...  # point a Client at sandbox.url with sandbox.token
"""

from ldbulk.sandbox.options import RecordedResponse, SandboxOptions, SandboxStats
from ldbulk.sandbox.server import Sandbox
from ldbulk.sandbox.world import WorldSpec, generate_world, read_world_file

__all__ = [
    "RecordedResponse",
    "Sandbox",
    "SandboxOptions",
    "SandboxStats",
    "WorldSpec",
    "generate_world",
    "read_world_file",
]
