"""What `make demo` and `make test` install is what the README says: the demo only the runtime
and the check extra, the tests the Debian redis-server too, which can be skipped."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent


def dry_run(*args: str) -> str:
    """What make would run, without running it (a fresh venv path: nothing is installed)."""
    return subprocess.run(
        ["make", "-n", "-B", *args, "VENV=/nonexistent/venv"], cwd=ROOT, capture_output=True,
        text=True, check=True, timeout=60,
    ).stdout


def test_make_demo_installs_the_runtime_and_the_check_extra_only() -> None:
    commands = dry_run("demo")
    installs = re.findall(r"pip install .*", commands)
    assert installs == ["pip install --quiet -e '.[check]'"], commands
    assert "test" not in installs[0] and "bench" not in installs[0]
    assert "ldbulk.demo" in commands


def test_make_test_installs_redis_server_and_make_o_redis_skips_it() -> None:
    assert "apt-get install -y -qq redis-server" in dry_run("unit")
    assert "redis-server" not in dry_run("-o", "redis", "unit")


def test_the_quickstart_says_what_each_make_target_installs() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "`redis-server`" in quickstart and "`sudo`" in quickstart
    assert "`make -o redis test`" in quickstart
    assert "`check` extra" in quickstart
