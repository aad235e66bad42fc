"""``ldbulk sandbox``: run the LaunchDarkly API sandbox until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from ldbulk.errors import ConfigError
from ldbulk.sandbox.masking import CONFIG_KEYS, DEFAULT_MASKED
from ldbulk.sandbox.options import SandboxOptions, generate_token

if TYPE_CHECKING:
    from ldbulk.sandbox.server import Sandbox

_PROBABILITY = click.FloatRange(0.0, 1.0)

# The one line the sandbox prints when it is listening; scripts read the URL and token from it.
START_LINE: Final = re.compile(r"ldbulk sandbox listening on (?P<url>\S+) token (?P<token>\S+)")


def read_start_line(line: str) -> tuple[str, str] | None:
    """The (URL, token) that a sandbox's start line announces, or None for any other line."""
    found = START_LINE.search(line)
    return None if found is None else (found["url"], found["token"])


def start_lines(url: str, token: str, *, print_env: bool) -> str:
    """What the sandbox prints once it listens: the start line; with ``print_env``, as a shell
    comment followed by the ``export`` line, so the whole output can be sourced or eval'd."""
    line = f"ldbulk sandbox listening on {url} token {token}"
    if not print_env:
        return line
    # Names as ldbulk reads them (--base-uri's variable, the access token's).
    env = f"export LD_BASE_URI={shlex.quote(url)} LD_ACCESS_TOKEN={shlex.quote(token)}"
    return f"# {line}\n{env}"


async def _serve(sandbox: Sandbox, *, print_env: bool = False) -> None:
    """Start the sandbox, announce it, and wait for a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with sandbox:
            # The token is the sandbox's own, generated for local tests: printing it is the point.
            # One write, flushed: a reader waiting on the file or pipe sees both lines at once.
            print(start_lines(sandbox.url, sandbox.token, print_env=print_env), flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port."
)
@click.option("--token", default=None, help="The one access token accepted (default: random).")
@click.option(
    "--world",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON or YAML file of projects, environments and existing integrations.",
)
@click.option("--projects", type=click.IntRange(min=0), default=None, help="Generated projects.")
@click.option(
    "--environments", type=click.IntRange(min=0), default=None, help="Environments per project."
)
@click.option("--route-limit", type=click.IntRange(min=1), default=None, help="Per route/window.")
@click.option("--global-limit", type=click.IntRange(min=1), default=None, help="Per window.")
@click.option(
    "--token-limit", type=click.IntRange(min=1), default=None, help="Per access token/window."
)
@click.option(
    "--window-s",
    type=click.FloatRange(min=0.0, min_open=True),
    default=10.0,
    show_default=True,
    help="Rate-limit window length in seconds.",
)
@click.option(
    "--background-rate",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Requests per window other clients spend of the global and each route's budget.",
)
@click.option(
    "--clock-offset",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds the server's clock runs ahead of this machine's (negative: behind): its "
    "resets and Date headers follow it.",
)
@click.option("--retry-after", is_flag=True, help="Also send Retry-After on 429.")
@click.option(
    "--echo-token",
    is_flag=True,
    help="A 401's message quotes the Authorization header it was sent (a client must hide it).",
)
@click.option("--latency-ms", type=click.FloatRange(min=0.0), default=0.0, show_default=True)
@click.option("--fault-rate", type=_PROBABILITY, default=0.0, show_default=True, help="5xx odds.")
@click.option(
    "--drop-after-commit",
    type=_PROBABILITY,
    default=0.0,
    show_default=True,
    help="Odds that a create is stored and its connection cut.",
)
@click.option("--seed", type=int, default=None, help="Seed for reproducible faults.")
@click.option(
    "--sync-delay",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Seconds after a store's config is set until it reports itself available.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file keeping the integrations across restarts.",
)
@click.option(
    "--print-env",
    is_flag=True,
    help="Once listening, also print `export LD_BASE_URI=... LD_ACCESS_TOKEN=...` (the start "
    "line becomes a shell comment), for `. FILE` or eval; then serve as usual.",
)
@click.option(
    "--seed-integrations",
    type=click.IntRange(min=0),
    default=0,
    help="Redis integrations existing at start, one per environment (a large account, fast).",
)
@click.option(
    "--mask",
    "masked",
    multiple=True,
    type=click.Choice(sorted(CONFIG_KEYS)),
    help="Also mask this config key on read, as LaunchDarkly may (ext********234); repeatable. "
    "The Redis password is always masked.",
)
def sandbox_command(**params: Any) -> None:
    """Run a local LaunchDarkly API sandbox to rehearse against."""
    world: Path | None = params["world"]
    if world is not None and (params["projects"] is not None or params["environments"] is not None):
        raise click.UsageError("--world and --projects/--environments exclude each other")
    state: Path | None = params["state"]
    if state is not None and not state.parent.is_dir():
        raise click.BadParameter(
            f"directory {str(state.parent)!r} does not exist", param_hint="--state"
        )
    try:
        options = SandboxOptions(
            host=params["host"],
            port=params["port"],
            token=params["token"] or generate_token(),
            world=world,
            projects=3 if params["projects"] is None else params["projects"],
            environments=3 if params["environments"] is None else params["environments"],
            route_limit=params["route_limit"],
            global_limit=params["global_limit"],
            token_limit=params["token_limit"],
            window_s=params["window_s"],
            background_rate=params["background_rate"],
            clock_offset_s=params["clock_offset"],
            retry_after=params["retry_after"],
            echo_token=params["echo_token"],
            latency_ms=params["latency_ms"],
            fault_rate=params["fault_rate"],
            drop_after_commit=params["drop_after_commit"],
            seed=params["seed"],
            sync_delay_s=params["sync_delay"],
            state=state,
            seed_integrations=params["seed_integrations"],
            masked_fields=DEFAULT_MASKED | frozenset(params["masked"]),
        )
        # Imported here, not above: every command of the CLI imports this module, and only this
        # one needs the server (and aiohttp.web with it).
        from ldbulk.sandbox.server import Sandbox

        sandbox = Sandbox(options)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        asyncio.run(_serve(sandbox, print_env=params["print_env"]))
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {params['host']}:{params['port']}: {exc}"
        ) from None
