"""``python -m bench.small_batches``: what one call of ``ldbulk.provision`` costs, by batch size
and account size: requests, bytes answered, and wall time on loopback.

Each call provisions new environments' stores (nothing there yet) on one long-lived client,
as a service would, in a sandbox already holding 10,000 or 100,000 integrations; the
``list first`` rows force the listing a run made before small batches went create-first.
Prints a Markdown table; timings are this machine's, not asserted anywhere.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from ldbulk import Client, RedisConfig, Target, provision
from ldbulk.sandbox import Sandbox, SandboxOptions

BATCHES = (1, 10, 100)
ACCOUNTS = (10_000, 100_000)
CONFIG = RedisConfig(host="redis.internal")


class Row(NamedTuple):
    """One call of ``provision``: what it cost."""

    account: int
    batch: int
    mode: str
    requests: int
    answered_bytes: int
    wall_s: float

    def markdown(self) -> str:
        return (f"| {self.account:,} | {self.batch} | {self.mode} | {self.requests} | "
                f"{self.answered_bytes / 1e6:.3f} MB | {self.wall_s:.2f} s |")


async def measure(account: int) -> list[Row]:
    """The rows of one account size, in the order the calls were made."""
    # Each batch size with the account's size unknown to the client, then one forced listing,
    # then the largest batch again, now that the client knows the account is large.
    runs = [(n, False) for n in BATCHES] + [(1, True), (BATCHES[-1], False)]
    fresh = sum(batch for batch, _ in runs)
    options = SandboxOptions(projects=1, environments=account + fresh,
                             seed_integrations=account, record=True)
    rows = []
    async with Sandbox(options) as sandbox:
        async with Client(sandbox.token, base_url=sandbox.url) as client:
            next_env = account + 1
            for batch, list_first in runs:
                targets = [
                    Target(project="proj-001", environment=f"env-{next_env + i:03d}",
                           config=CONFIG)
                    for i in range(batch)
                ]
                next_env += batch
                known = client.account_size is not None
                sandbox.responses.clear()
                started = time.perf_counter()
                report = await provision(client, targets, list_first=list_first)
                elapsed = time.perf_counter() - started
                assert report.ok, report.counts
                answered = sum(len(response.body) for response in sandbox.responses)
                mode = "list first" if list_first else (
                    "default, size known" if known else "default, size unknown"
                )
                rows.append(Row(account, batch, mode, report.stats.requests, answered, elapsed))
    return rows


def main() -> None:
    """Measure every account size and print the table."""
    print("| integrations | targets | run | requests | bytes answered | wall |")
    print("|---:|---:|---|---:|---:|---:|")
    for account in ACCOUNTS:
        for row in asyncio.run(measure(account)):
            print(row.markdown())


if __name__ == "__main__":
    main()
