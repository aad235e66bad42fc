"""The one launcher of ``ldbulk sandbox`` as a subprocess, for the demo, benchmarks and tests.

A sandbox in a process of its own keeps its CPU time apart from the client being measured, and
lets the command line be tested the way it is used. The sandbox announces its URL and token on
its first line (:func:`~ldbulk.sandbox.cli.read_start_line`); the token stays in memory, for
the caller to hand to clients.

::

    with launch_sandbox("--projects", "3", "--environments", "4") as sandbox:
        ...  # sandbox.url, sandbox.token
"""

from __future__ import annotations

import contextlib
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any, Final

import attrs

from ldbulk.errors import LdbulkError
from ldbulk.sandbox.cli import read_start_line

START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0


class LaunchError(LdbulkError):
    """The sandbox subprocess did not announce that it listens."""


def _stop(process: subprocess.Popen[str], signum: signal.Signals) -> int:
    """Send ``signum`` unless the process has exited; wait, killing it if it hangs."""
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@attrs.frozen(kw_only=True)
class LaunchedSandbox:
    """A running ``ldbulk sandbox`` subprocess: where it listens and the token it accepts."""

    url: str
    token: str = attrs.field(repr=False)
    process: subprocess.Popen[str] = attrs.field(repr=False)

    @property
    def pid(self) -> int:
        """The sandbox's process id."""
        return self.process.pid

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Stop it with ``signum`` (killed if it does not exit in time); its exit code."""
        return _stop(self.process, signum)


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    # readline alone would wait forever for a sandbox stuck before it listens. Nothing has been
    # read yet, so the pipe (not a buffer) says whether the line is there.
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
    return process.stdout.readline() if ready else ""


@contextlib.contextmanager
def launch_sandbox(*args: str, stderr: int | IO[Any] | None = None) -> Iterator[LaunchedSandbox]:
    """Start ``python -m ldbulk sandbox ARGS``; yield it once it listens; stop it at the end.

    ``args`` are the command's options (without ``--port``, it takes a free one). ``stderr``
    is where the sandbox's errors go: inherited unless told otherwise (a pipe is closed when
    the block ends: read it before). Stopping sends SIGTERM (unless
    :meth:`LaunchedSandbox.stop` already stopped it) and waits for a clean exit.
    """
    # This interpreter and the sandbox's own options: nothing from outside reaches the command.
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "ldbulk", "sandbox", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        line = _first_line(process)
        announced = read_start_line(line)
        if announced is None:
            code = _stop(process, signal.SIGTERM)
            raise LaunchError(
                f"ldbulk sandbox did not start (exit code {code}): {line.strip() or 'no output'}"
            )
        url, token = announced
        yield LaunchedSandbox(url=url, token=token, process=process)
    finally:
        _stop(process, signal.SIGTERM)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
