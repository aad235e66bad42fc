"""The README's library example runs as written, against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ldbulk import Client, Outcome, Report
from ldbulk.sandbox import Sandbox

README = Path(__file__).parent.parent / "README.md"


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


async def test_the_async_service_example_provisions_stores(sandbox: Sandbox) -> None:
    (code,) = [block for block in readme_python_blocks() if "async def provision_stores" in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README

    # The README's pattern: one client for the application, handed to the function.
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report: Report = await namespace["provision_stores"](client)

    assert [r.outcome for r in report.results] == [Outcome.CREATED, Outcome.CREATED]
    assert set(sandbox.integrations) == {
        ("proj-001", "env-001", "redis"),
        ("proj-001", "env-002", "redis"),
    }
