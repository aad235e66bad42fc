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


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def interrupts_as_exits() -> Iterator[None]:
    """Within: SIGINT exits 130 and SIGTERM 143, each with a line that says so."""
    ours = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if ours else None
    try:
        yield
    except KeyboardInterrupt:
        notice("Interrupted by SIGINT.", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGINT) from None
    except Terminated:
        notice("Interrupted by SIGTERM.", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGTERM) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
