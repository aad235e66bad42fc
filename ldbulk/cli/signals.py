"""SIGINT and SIGTERM during a run: the first stops it gracefully (requests in flight get
:data:`~ldbulk.http.scope.STOP_GRACE_S` to be answered, so the process is gone within 2 s), a
second SIGINT leaves at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator

from ldbulk.cli.common import EXIT_SIGINT, notice
from ldbulk.http.scope import STOP_GRACE_S


@contextlib.contextmanager
def signals(on_first: Callable[[signal.Signals], None]) -> Iterator[list[signal.Signals]]:
    """First SIGINT/SIGTERM: stop gracefully. A second SIGINT: leave at once."""
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def handle(signum: signal.Signals) -> None:
        if received and signum == signal.SIGINT:
            notice("Interrupted again: exiting now.", style="red", level=logging.ERROR)
            os._exit(EXIT_SIGINT)
        received.append(signum)
        notice(
            f"{signum.name}: waiting up to {STOP_GRACE_S:g} s for requests in flight, "
            "skipping the rest (Ctrl-C again to exit at once)."
        )
        on_first(signum)

    # The handlers before, put back after (the loop would leave Python's defaults); a signal
    # the process was started ignoring stays ignored.
    previous = {
        signum: handler
        for signum in (signal.SIGINT, signal.SIGTERM)
        if (handler := signal.getsignal(signum)) is not signal.SIG_IGN
    }
    for signum in previous:
        loop.add_signal_handler(signum, handle, signum)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            if handler is not None:
                signal.signal(signum, handler)
        if received:
            # Interrupted once: a second Ctrl-C while the reports are written still means
            # "leave now", not a KeyboardInterrupt traceback.
            signal.signal(signal.SIGINT, lambda signum, frame: os._exit(EXIT_SIGINT))
