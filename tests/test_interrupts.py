"""A command's SIGINT and SIGTERM end it with 130 and 143, even when the signal lands where
Python ignores what is raised (a finalizer, a weakref callback: one runs during any import)."""

from __future__ import annotations

import signal
import sys

import pytest

from ldbulk.cli.interrupts import interrupts_as_exits


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
