"""``make demo``: the command line against a local sandbox, from start to report.

Starts ``ldbulk sandbox`` on a free port, runs ``ldbulk plan`` and ``ldbulk apply`` on a manifest
twice (the second run finds everything in place), prints the JSON report, and stops the sandbox.
Run it as ``python -m ldbulk.demo [MANIFEST]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ldbulk.sandbox.launch import LaunchError, launch_sandbox

# Stand-ins for the secrets the example manifest references: the sandbox checks nothing else.
DEMO_SECRETS = {
    "LD_REDIS_PASSWORD": "demo-redis-password",
    "LD_DYNAMODB_EXTERNAL_ID": "demo-external-id",
}


def _step(title: str, *args: str, env: dict[str, str]) -> int:
    print(f"\n$ ldbulk {' '.join(args)}    # {title}", flush=True)
    # This interpreter and ldbulk's own arguments: nothing from outside reaches the command.
    return subprocess.call([sys.executable, "-m", "ldbulk", *args], env=env)  # noqa: S603


def main(argv: list[str]) -> int:
    """Run the demo; returns the exit code of the last apply."""
    manifest = argv[0] if argv else "manifests/example.yaml"
    report = Path("reports/demo.json")
    try:
        with launch_sandbox("--projects", "3", "--environments", "4") as sandbox:
            print(f"sandbox: {sandbox.url}")
            env = os.environ | DEMO_SECRETS | {"LD_ACCESS_TOKEN": sandbox.token}
            env["LD_BASE_URI"] = sandbox.url
            _step("offline check", "validate", manifest, env=env)
            _step("what apply would do", "plan", manifest, env=env)
            _step("first run: creates", "apply", manifest, "--report", str(report), env=env)
            code = _step("second run: one request, no writes", "apply", manifest, env=env)
            print(f"\n{report}:")
            print(report.read_text(encoding="utf-8"))
            return code
    except LaunchError as exc:
        print(f"demo: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
