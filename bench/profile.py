"""``python -m bench.profile``: one ldbulk client run under pyinstrument, against a sandbox.

The sandbox runs in its own process, so the profile shows only the client. Needs pyinstrument
(the ``bench`` extra). The text profile goes to stdout, or to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Sequence

from bench.sandbox import SandboxProcess, SandboxSpec
from bench.scenarios import ENVIRONMENTS


def main(argv: Sequence[str] | None = None) -> int:
    """Start a sandbox, profile one client run, print or write the profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--contender", default="ldbulk", help="ldbulk or bare_aiohttp")
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output", default=None, help="write the text profile here")
    args = parser.parse_args(argv)
    spec = {
        "contender": args.contender,
        "targets": args.targets,
        "environments": ENVIRONMENTS,
        "concurrency": args.concurrency,
    }
    command = [sys.executable, "-m", "pyinstrument", "-r", "text"]
    if args.output:
        command += ["-o", args.output]
    command += ["-m", "bench.client", json.dumps(spec)]
    sandbox_spec = SandboxSpec(
        projects=math.ceil(args.targets / ENVIRONMENTS), environments=ENVIRONMENTS
    )
    with SandboxProcess(sandbox_spec) as sandbox:
        process = subprocess.run(  # noqa: S603 - our own interpreter and module
            command, env=sandbox.client_env(), capture_output=True, text=True, check=False
        )
        print(sandbox.scrub(process.stdout))
        if process.returncode != 0:
            print(sandbox.scrub(process.stderr), file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
