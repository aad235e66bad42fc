"""``make demo``: the command line against a local sandbox, from start to report.

Starts ``ldbulk sandbox`` on a free port, runs ``ldbulk plan`` and ``ldbulk apply`` on a manifest
twice (the second run finds everything in place), then changes the account by hand as people do
(a host moved in one integration, one made by ldbulk that no manifest names any more, one made by
hand), and shows ``plan --prune`` and ``apply --prune`` converging it, ``status`` waiting on the
stores, and ``export`` writing the account back as a manifest that plans clean; says where the JSON
report is, and stops the sandbox. First, when redis-server is installed, ``ldbulk check``
preflights one started for the purpose. Run it as ``python -m ldbulk.demo [MANIFEST]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, RedisConfig
from ldbulk.http.client import Client
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


async def _change_by_hand(url: str, token: str) -> None:
    """What happens to an account between two nightly runs: someone moves a host, a manifest
    line is removed (its integration, made by ldbulk, stays behind), someone adds their own."""
    async with Client(token, base_url=url) as client:
        for integration in await client.list_integrations():
            if integration.integration_key == "redis":
                await client.update_integration(
                    integration.project_key,
                    integration.environment_key,
                    "redis",
                    integration.id,
                    [{"op": "replace", "path": "/config/host", "value": "redis-by-hand.lan"}],
                )
                break
        leftover = RedisConfig(host="redis.old.internal")
        await client.create_integration("proj-001", "env-004", leftover,
                                        tags=[DEFAULT_OWNERSHIP_TAG])
        await client.create_integration("proj-001", "env-003", RedisConfig(host="theirs.lan"))
    print("\n# by hand: one host moved, one integration left behind by a removed manifest "
          "line (tagged), one made by someone else (untagged)")


def _check_local_redis() -> None:
    """``ldbulk check`` against a redis-server started on a free loopback port, when one is
    installed: the preflight a real store gets before the first create."""
    server = shutil.which("redis-server")
    if server is None:
        print("(check step skipped: no redis-server on this machine)")
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        manifest = Path(directory) / "local-redis.yaml"
        manifest.write_text(
            "version: 1\nstores:\n  local-redis:\n    integration: redis\n"
            f"    config: {{host: 127.0.0.1, port: {port}, password: \"${{LD_REDIS_PASSWORD}}\"}}\n"
            "targets:\n  - {project: proj-001, environments: [env-001], store: local-redis}\n",
            encoding="utf-8",
        )
        redis = subprocess.Popen(  # noqa: S603 (the installed redis-server, fixed arguments)
            [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", directory,
             "--requirepass", DEMO_SECRETS["LD_REDIS_PASSWORD"]],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            _step("preflight the store (a local redis-server)", "check", str(manifest),
                  env=os.environ | DEMO_SECRETS)
        finally:
            redis.terminate()
            redis.wait()


def _exported_secrets(path: Path) -> dict[str, str]:
    """The variables an exported manifest's secret references name, each set to the secret the
    demo gave its kind of store (a user sets them from their vault)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    secret_of = {
        "redis": DEMO_SECRETS["LD_REDIS_PASSWORD"],
        "dynamodb": DEMO_SECRETS["LD_DYNAMODB_EXTERNAL_ID"],
    }
    return {
        value[2:-1]: secret_of[store["integration"]]
        for store in document["stores"].values()
        for value in store["config"].values()
        if isinstance(value, str) and value.startswith("${")
    }


def main(argv: list[str]) -> int:
    """Run the demo; returns the exit code of the last apply."""
    manifest = argv[0] if argv else "manifests/example.yaml"
    report = Path("reports/demo.json")
    _check_local_redis()
    try:
        with launch_sandbox("--projects", "3", "--environments", "4") as sandbox:
            print(f"sandbox: {sandbox.url}")
            env = os.environ | DEMO_SECRETS | {"LD_ACCESS_TOKEN": sandbox.token}
            env["LD_BASE_URI"] = sandbox.url
            _step("offline check", "validate", manifest, env=env)
            _step("what apply would do", "plan", manifest, env=env)
            _step("first run: creates", "apply", manifest, "--report", str(report), env=env)
            _step("second run: reads each, writes nothing", "apply", manifest, env=env)
            asyncio.run(_change_by_hand(sandbox.url, sandbox.token))
            _step("the drift, and what a prune would delete", "plan", "--prune", manifest,
                  env=env)
            # The plan above showed the delete: that review is the consent.
            code = _step("converge: one patch, one delete", "apply", "--prune", "--yes",
                         manifest, "--report", str(report), env=env)
            _step("converged: nothing left to change", "plan", "--prune", manifest, env=env)
            _step("every store available: one listing per poll", "status", manifest,
                  "--wait", "5", env=env)
            exported = Path("reports/exported.yaml")
            _step("the account as a manifest", "export", "-o", str(exported), env=env)
            env |= _exported_secrets(exported)
            _step("the export is a valid manifest", "validate", str(exported), env=env)
            _step("and plans clean", "plan", str(exported), env=env)
            print(f"\nThe converging run's JSON report: {report} (its shape: README, The report).")
            return code
    except LaunchError as exc:
        print(f"demo: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
