"""The small-batch benchmark (``python -m bench.small_batches``) keeps measuring what README's
table says, at its smaller account: requests and bytes per call, never its timings."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent


async def test_the_small_batch_rows_cost_what_readme_says_at_10000(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # bench is a folder of the repository, not an installed package.
    monkeypatch.syspath_prepend(str(ROOT))
    bench: Any = importlib.import_module("bench.small_batches")
    rows = await bench.measure(10_000)
    assert [(row.batch, row.mode, row.requests) for row in rows] == [
        (1, "default, size unknown", 1),
        (10, "default, size unknown", 10),
        (100, "default, size unknown", 101),  # more than a small batch: lists first
        (1, "list first", 2),
        (100, "default, size known", 100),  # the account is known to be large now
    ]
    created = [row.answered_bytes / row.requests for row in rows if row.requests in (1, 10, 100)]
    listed = [row.answered_bytes for row in rows if row.requests in (2, 101)]
    # A create's answer is under a kilobyte; a listing of 10,000 integrations is megabytes.
    assert all(size < 1_000 for size in created)
    assert all(size > 5_000_000 for size in listed)
