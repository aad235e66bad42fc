"""SIGINT and SIGTERM anywhere in a command's run end it with 130 / 143, never with click's
"Aborted!" and exit 1, nor killed before it could say how it ended.

A command with a stop of its own (apply, export) takes both signals while its requests run
(:mod:`ldbulk.cli.signals`): this is the rest of the run, and the commands that have none
(plan, status, check, validate). A signal raises an exception where the process is (SIGINT
in an event loop is asyncio's: it cancels the loop's main task, see :func:`sigint_to_asyncio`),
the stack unwinds (a client closes), and the command's run exits with the signal's code: so
the metrics and the closing summary are still written.
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


class _Raising:
    """A command's handler of SIGINT and SIGTERM: notes the signal, then raises it where the
    process is (KeyboardInterrupt, :class:`Terminated`). Noted first: Python ignores what a
    finalizer or a weakref callback raises (one runs during any import), and a signal landing
    there would otherwise be lost."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        raise _interruption(signum)


def _interruption(signum: int) -> BaseException:
    """What a signal raises where the process is."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


@contextlib.contextmanager
def interrupts_as_exits() -> Iterator[None]:
    """Within: SIGINT exits 130 and SIGTERM 143, each with a line that says so; a signal whose
    exception was lost ends the command so when it ends, however it ends."""
    handler = _Raising()
    ours = threading.current_thread() is threading.main_thread()
    # A signal the process was started ignoring (a background job's SIGINT) stays ignored.
    previous = {
        signum: signal.signal(signum, handler)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if ours and signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        try:
            yield
        except (KeyboardInterrupt, Terminated):
            raise
        except BaseException:
            if not handler.received:
                raise
        if handler.received:  # raised where Python ignored it: the command went on
            raise _interruption(handler.received[0])
    except KeyboardInterrupt:
        notice("Interrupted by SIGINT.", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGINT) from None
    except Terminated:
        notice("Interrupted by SIGTERM.", style="", level=logging.ERROR)
        raise SystemExit(EXIT_SIGTERM) from None
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


@contextlib.contextmanager
def sigint_to_asyncio() -> Iterator[None]:
    """Around ``asyncio.run``: SIGINT is Python's default again, so asyncio takes it while its
    loop runs (a first Ctrl-C cancels the main task, which unwinds at an ``await``, then
    KeyboardInterrupt comes out of ``asyncio.run``), rather than an exception raised wherever
    the loop happens to be."""
    handler = signal.getsignal(signal.SIGINT)
    if not isinstance(handler, _Raising):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
