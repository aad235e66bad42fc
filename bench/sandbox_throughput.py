"""Requests per second the sandbox serves on loopback.

The sandbox runs in its own process (``python -m ldbulk sandbox``), so the load generator does
not share its event loop; the load is plain aiohttp with keep-alive connections, a mix of
creates, project pages and environment pages by default. ``--raw`` replaces aiohttp with
hand-written HTTP/1.1 over asyncio streams (GETs only), whose lower cost per request shows more
of the server's own ceiling when both share a small machine.

    python bench/sandbox_throughput.py --seconds 5 --concurrency 64 [--raw]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import aiohttp

from ldbulk.sandbox.launch import launch_sandbox

BSS = "/api/v2/integration-capabilities/big-segment-store"


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    deadline: float,
    slots: itertools.count[int],
    mix: str,
    counts: dict[int, int],
) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        slot = next(slots)
        kind = mix[slot % len(mix)]
        if kind == "c":
            project, environment = divmod(slot, 1000)
            path = f"{BSS}/proj-{project % 100 + 1:03d}/env-{environment + 1:03d}/redis"
            request = session.post(url + path, json={"config": {"host": "h"}}, headers=headers)
        elif kind == "p":
            request = session.get(url + "/api/v2/projects?limit=20", headers=headers)
        else:
            request = session.get(
                url + "/api/v2/projects/proj-001/environments?limit=5", headers=headers
            )
        async with request as response:
            await response.read()
            counts[response.status] = counts.get(response.status, 0) + 1


async def raw_worker(
    host: str, port: int, token: str, deadline: float, counts: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        "GET /api/v2/projects/proj-001/environments?limit=5 HTTP/1.1\r\nHost: sandbox\r\n"
        f"Authorization: {token}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        status = int(head[9:12])
        counts[status] = counts.get(status, 0) + 1
    writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--mix", default="cpe", help="c: create, p: projects page, e: envs page")
    parser.add_argument("--raw", action="store_true", help="raw HTTP/1.1 GETs instead of aiohttp")
    args = parser.parse_args()

    # Starting and stopping block the loop, but nothing else runs on it then.
    with launch_sandbox("--projects", "100", "--environments", "1000") as sandbox:
        url, token = sandbox.url, sandbox.token
        headers = {"Authorization": token, "LD-API-Version": "beta"}
        counts: dict[int, int] = {}
        start = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + args.seconds
        if args.raw:
            host, port = url.removeprefix("http://").rsplit(":", 1)
            await asyncio.gather(
                *(
                    raw_worker(host, int(port), token, deadline, counts)
                    for _ in range(args.concurrency)
                )
            )
        else:
            await load_with_aiohttp(url, headers, deadline, args.concurrency, args.mix, counts)
        elapsed = time.perf_counter() - start
    total = sum(counts.values())
    print(
        f"{total} requests in {elapsed:.1f} s: {total / elapsed:.0f} requests/s; statuses {counts}"
    )


async def load_with_aiohttp(
    url: str,
    headers: dict[str, str],
    deadline: float,
    concurrency: int,
    mix: str,
    counts: dict[int, int],
) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        slots = itertools.count()
        await asyncio.gather(
            *(
                worker(session, url, headers, deadline, slots, mix, counts)
                for _ in range(concurrency)
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
