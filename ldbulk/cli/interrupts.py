"""SIGINT and SIGTERM anywhere in a command's run end it with 130 / 143, never with click's
"Aborted!" and exit 1, nor killed before it could say how it ended.

A command with a stop of its own (apply) takes both signals while its requests run
(:mod:`ldbulk.cli.signals`): this is the rest of the run, and the commands that have none
(plan, status, validate, export). A signal raises an exception where the process is, the
stack unwinds (an event loop cancels its tasks, a client closes), and the command's run
exits with the signal's code: so the metrics and the closing summary are still written.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ldbulk.cli.common import EXIT_SIGINT, EXIT_SIGTERM, notice


class Terminated(BaseException):
    """SIGTERM, raised where the process was, as SIGINT raises KeyboardInterrupt."""


@contextlib.contextmanager
def interrupts_as_exits() -> Iterator[None]:
    """Within: SIGINT exits 130 and SIGTERM 143, each with a line that says so."""
    received: list[int] = []

    def raise_where_we_are(signum: int, frame: FrameType | None) -> None:
        # Noted before raising: Python ignores what a finalizer or a weakref callback raises
        # (one runs during any import), so a signal landing there would otherwise be lost.
        received.append(signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated

    ours = threading.current_thread() is threading.main_thread()
    # A signal the process was started ignoring (a background job's SIGINT) stays ignored.
    previous = {
        signum: signal.signal(signum, raise_where_we_are)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if ours and signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
        if received:  # raised where it was ignored: the run went on, and ends now
            raise KeyboardInterrupt if received[0] == signal.SIGINT else Terminated
    except KeyboardInterrupt:
        notice("Interrupted by SIGINT.", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGINT) from None
    except Terminated:
        notice("Interrupted by SIGTERM.", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGTERM) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
