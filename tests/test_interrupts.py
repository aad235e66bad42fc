"""A command's SIGINT and SIGTERM end it with 130 and 143, even when the signal lands where
Python ignores what is raised (a finalizer, a weakref callback: one runs during any import);
in an event loop SIGINT is asyncio's, and a signal the process ignores stays ignored."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType

import pytest

from ldbulk.cli.interrupts import interrupts_as_exits, sigint_to_asyncio
from ldbulk.cli.signals import signals


class _SignalledWhenFinalized:
    """Its finalizer runs the handler of ``signum``, as if the signal landed there."""

    def __init__(self, signum: signal.Signals) -> None:
        self.signum = signum

    def __del__(self) -> None:
        handler = signal.getsignal(self.signum)
        assert callable(handler)
        handler(self.signum, None)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_raised_where_python_ignores_it_still_ends_the_command(
    signum: signal.Signals, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ignored: list[BaseException | None] = []
    monkeypatch.setattr(
        sys, "unraisablehook", lambda unraisable: ignored.append(unraisable.exc_value)
    )
    with pytest.raises(SystemExit) as exited, interrupts_as_exits():
        _SignalledWhenFinalized(signum)
        ran_on = True
    assert ran_on and len(ignored) == 1  # the raise was lost where it landed
    assert exited.value.code == code


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_lost_signal_decides_the_exit_of_a_command_that_exits_on_its_own(
    signum: signal.Signals, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: None)
    with pytest.raises(SystemExit) as exited, interrupts_as_exits():
        _SignalledWhenFinalized(signum)
        raise SystemExit(0)  # as plan, status and apply end
    assert exited.value.code == code


def test_sigint_in_an_event_loop_cancels_its_main_task() -> None:
    unwound: list[str] = []

    async def main() -> None:
        signal.raise_signal(signal.SIGINT)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            unwound.append("cancelled at the await")
            raise

    with pytest.raises(SystemExit) as exited, interrupts_as_exits():
        with sigint_to_asyncio():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
            asyncio.run(main())
    assert exited.value.code == 130 and unwound == ["cancelled at the await"]


def test_sigint_outside_a_command_is_left_to_asyncio_as_it_was() -> None:
    before = signal.getsignal(signal.SIGINT)
    with sigint_to_asyncio():
        assert signal.getsignal(signal.SIGINT) is before


def _custom(signum: int, frame: FrameType | None) -> None:
    """A handler an application installed."""


async def test_a_runs_own_stop_puts_back_the_handlers_it_found_and_leaves_an_ignored_one() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _custom)
    try:
        with signals(lambda signum: None):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not _custom  # the loop's, meanwhile
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is _custom
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_the_handlers_before_the_command_are_put_back() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with interrupts_as_exits():
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
    assert {signum: signal.getsignal(signum) for signum in before} == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_the_process_ignores_stays_ignored(signum: signal.Signals) -> None:
    before = signal.signal(signum, signal.SIG_IGN)
    try:
        with interrupts_as_exits():
            assert signal.getsignal(signum) is signal.SIG_IGN
    finally:
        signal.signal(signum, before)
