"""Consent to a prune's deletes at the command line: the question on a terminal, a refusal
without one. The library decides what would be deleted and when to ask; this only asks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Sequence

from rich.text import Text

from ldbulk.api.models import Integration
from ldbulk.cli.common import notice, stderr
from ldbulk.engine.deletes import Consent
from ldbulk.engine.inventory import key_of
from ldbulk.text import printable

# How many deletes the question lists one by one before it counts the rest.
SHOWN: int = 50


def consent_for(*, yes: bool, stop: asyncio.Event) -> Consent | None:
    """The consent ``apply`` asks for: none needed with ``--yes``; the question on a terminal;
    without one, a refusal that says how to consent."""
    if yes:
        return None
    if _on_terminal():

        async def ask(deletes: Sequence[Integration]) -> bool:
            return await _ask(deletes, stop)

        return ask
    return _refuse


def _on_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):  # no stdin at all, or closed
        return False


def _listing(deletes: Sequence[Integration]) -> str:
    lines = [
        f"  - {printable('/'.join(key_of(found)))} ({printable(found.id)})"
        for found in deletes[:SHOWN]
    ]
    if len(deletes) > SHOWN:
        lines.append(f"  ... and {len(deletes) - SHOWN} more (plan --prune lists them all)")
    return "\n".join(lines)


def _heading(deletes: Sequence[Integration]) -> str:
    count = len(deletes)
    return f"apply --prune would delete {count} integration{'s' if count != 1 else ''}:"


async def _refuse(deletes: Sequence[Integration]) -> bool:
    notice(
        f"{_heading(deletes)}\n{_listing(deletes)}\n"
        "Not without consent, and there is no terminal to ask: give --yes (--auto-approve) "
        "once plan --prune shows the deletes you expect.",
        level=logging.ERROR,
    )
    return False


async def _ask(deletes: Sequence[Integration], stop: asyncio.Event) -> bool:
    """Show the deletes and wait for an answer: only ``yes`` goes on; a stop (Ctrl-C) is a
    no."""
    stderr.print(Text(f"{_heading(deletes)}\n{_listing(deletes)}"), soft_wrap=True)
    stderr.print(Text("Delete them? Only 'yes' goes on: ", style="bold"), end="")
    answer = await _read_line(stop)
    if answer is None:
        stderr.print()
    return answer is not None and answer.strip() == "yes"


async def _read_line(stop: asyncio.Event) -> str | None:
    """One line of stdin, or None when the run is stopped first. Read in a daemon thread:
    a signal never interrupts a blocking read, and a thread left waiting on a terminal that
    never answers must not keep the process alive."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[str] = loop.create_future()

    def answer(line: str) -> None:
        if not answered.done():
            answered.set_result(line)

    def read() -> None:
        try:
            line = sys.stdin.readline()
        except (OSError, ValueError):
            line = ""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(answer, line)

    threading.Thread(target=read, name="ldbulk-consent", daemon=True).start()
    stopped = asyncio.ensure_future(stop.wait())
    stopped.add_done_callback(lambda _: answered.done() or answered.cancel())
    try:
        await answered
    except asyncio.CancelledError:
        if not stop.is_set():
            raise  # the task itself was cancelled, not the question
    finally:
        stopped.cancel()
    return None if answered.cancelled() else answered.result()
