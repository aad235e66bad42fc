"""The server's clock as the answers' ``Date`` shows it, on plain numbers."""

from __future__ import annotations

import math

import pytest

from ldbulk.api.limits import RESET_MARGIN_S
from ldbulk.http.clock import SAMPLES, ServerClock, WindowEnd, window_end

EPOCH = 1_800_000_000.0


def answer(clock: ServerClock, ours: float, offset: float, latency: float = 0.05) -> None:
    """An answer made at ``ours`` by a server ``offset`` s ahead, received ``latency`` later."""
    clock.observe(float(math.floor(ours + offset)), ours + latency)


def test_without_any_date_the_server_clock_is_ours() -> None:
    clock = ServerClock()
    clock.observe(None, EPOCH)
    assert clock.offset == 0.0 and clock.now(EPOCH) == EPOCH


def test_one_answer_reads_the_server_clock_at_most_a_second_early() -> None:
    for offset in (-30.4, 30.4, 0.0):
        clock = ServerClock()
        answer(clock, EPOCH + 0.3, offset)
        assert offset - 1.05 <= clock.offset <= offset


def test_answers_at_every_fraction_of_a_second_close_in_from_below() -> None:
    for offset in (-30.4, 30.4):
        clock = ServerClock()
        for i in range(20):
            answer(clock, EPOCH + i * 0.13, offset)
            assert clock.offset <= offset  # never ahead of the server: never a reset too soon
        assert clock.offset >= offset - 0.2


def test_one_broken_date_moves_nothing() -> None:
    clock = ServerClock()
    for i in range(10):
        answer(clock, EPOCH + i * 0.13, 30.4)
    before = clock.offset
    clock.observe(EPOCH + 86_400.0, EPOCH + 2)  # a day ahead: no other answer confirms it
    assert clock.offset == before


def test_a_late_answer_never_holds_the_estimate_back() -> None:
    clock = ServerClock()
    answer(clock, EPOCH, 30.4)
    answer(clock, EPOCH - 20, 30.4, latency=20.5)  # made 20 s ago, loose and low
    assert clock.offset >= 30.4 - 1.05


def test_a_stepped_clock_is_followed_once_old_answers_age_out() -> None:
    clock = ServerClock()
    for i in range(SAMPLES):
        answer(clock, EPOCH + i * 0.13, 30.4)
    for i in range(SAMPLES):
        answer(clock, EPOCH + 10 + i * 0.13, -5.0)
    assert -5.2 <= clock.offset <= -5.0


# -- one answer's reset in loop time -------------------------------------------------------

SERVER = 1_799_999_970.0  # the server's epoch seconds when the answer is taken in
LOOP = 100.0  # the loop's time then


def test_a_reset_on_the_servers_clock_ends_that_far_into_loop_time() -> None:
    end = window_end(int((SERVER + 4) * 1000), SERVER - 0.3, SERVER, LOOP)
    assert end == WindowEnd(pytest.approx(LOOP + 4 + RESET_MARGIN_S), SERVER + 4)


def test_a_reset_that_cannot_be_right_ends_one_window_from_now_and_keeps_its_name() -> None:
    before_its_date = window_end(int((SERVER - 1) * 1000), SERVER, SERVER, LOOP)
    assert before_its_date == WindowEnd(LOOP + 10.0, SERVER - 1)
    a_day_ahead = window_end(int((SERVER + 86_400) * 1000), SERVER, SERVER, LOOP, window=2.0)
    assert a_day_ahead == WindowEnd(LOOP + 2.0, SERVER + 86_400)


def test_no_reset_ends_one_window_from_now() -> None:
    assert window_end(None, SERVER, SERVER, LOOP) == WindowEnd(LOOP + 10.0, SERVER + 10.0)


def test_a_late_answers_reset_ends_now_under_its_own_name() -> None:
    end = window_end(int((SERVER - 15) * 1000), SERVER - 20, SERVER, LOOP)
    assert end == WindowEnd(LOOP + RESET_MARGIN_S, SERVER - 15)
