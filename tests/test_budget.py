"""The budget model on plain numbers: times are given in, nothing waits."""

from __future__ import annotations

import math

from ldbulk.http.budget import Budget, Budgets
from ldbulk.http.clock import WindowEnd


def fresh(limit: int = 10, left: int | None = None, reset: float = 10.0) -> Budget:
    """A budget as first learned at time 0, none of ours counted yet."""
    budget = Budget(
        server_left=limit if left is None else left, limit=limit, reset=reset, server_reset=reset
    )
    budget.first_word()
    return budget


def send(budget: Budget, now: float, count: int = 1) -> list[int]:
    return [budget.sent(now) for _ in range(count)]


def test_a_budget_nobody_else_spends_opens_each_window_in_full() -> None:
    budget = fresh()
    for generation in send(budget, 0.0, 10):
        budget.answered(generation)
    budget.learn(0, 10, 10.0)
    assert budget.spent and budget.next_turn(1.0) == 10.0
    budget.roll_over(10.0)
    assert not budget.shared and budget.left == 10
    assert budget.next_turn(10.0) == 10.0  # at once, and the next nine too
    send(budget, 10.0, 9)
    assert budget.next_turn(10.0) == 10.0


def test_what_was_spent_before_our_first_word_keeps_the_next_window_shared() -> None:
    budget = fresh(left=3)  # spent by an earlier run of ours, or by someone starting with us
    # This window: what is left is spread, not sent at once (the first request goes at once).
    assert budget.shared and budget.next_turn(0.0) == 0.0
    (generation,) = send(budget, 0.0)
    assert budget.next_turn(0.0) > 0.0
    budget.answered(generation)
    # A run that started a round trip before us spent it, and will open the next window at
    # once: ours opens with one request, whose answer tells whether anybody else is there.
    budget.roll_over(10.0)
    assert budget.shared and budget.left == 10 and budget.next_turn(10.0) == 10.0
    (generation,) = send(budget, 10.0)
    assert budget.next_turn(10.0) == 20.0
    budget.learn(9, 10, 20.0)
    budget.answered(generation)
    # Nobody was: the window after opens in full, at once.
    budget.roll_over(20.0)
    assert not budget.shared and budget.left == 10 and budget.next_turn(20.0) == 20.0


def test_spending_our_requests_do_not_explain_makes_the_budget_shared() -> None:
    budget = fresh()
    (generation,) = send(budget, 0.0)
    budget.answered(generation)
    budget.learn(9, 10, 10.0)
    assert not budget.shared
    (generation,) = send(budget, 1.0)
    budget.answered(generation)
    budget.learn(5, 10, 10.0)  # one of ours, and three of someone else's
    assert budget.shared and budget.others == 3


def shared_budget() -> Budget:
    """A budget that others spent as much of as we did in the window ending at 10 s."""
    budget = fresh()
    for at in (0.0, 1.0):
        (generation,) = send(budget, at)
        budget.answered(generation)
    budget.learn(6, 10, 10.0)  # two of ours, two of theirs
    budget.roll_over(10.0)
    return budget


def test_a_shared_budget_sends_one_request_into_a_new_window_and_waits_for_its_answer() -> None:
    budget = shared_budget()
    assert budget.share == 0.5
    assert budget.next_turn(10.0) == 10.0
    (probe,) = send(budget, 10.0)
    assert budget.next_turn(10.0) == 20.0  # until its answer (which wakes the pacer)
    budget.answered(probe)
    budget.learn(7, 10, 20.0)  # the server's word: ours and two others' so far
    assert not budget.projected and budget.left == 7


def test_what_is_left_of_our_part_is_spread_up_to_the_reset() -> None:
    budget = shared_budget()
    (probe,) = send(budget, 10.0)
    budget.answered(probe)
    budget.learn(7, 10, 20.0)
    # Our part of 7 is 7 x sqrt(0.5) (the claim of a half share), and ten of ours wait (more
    # than our part): the next request a (part + 1)th of the time left after the probe, up
    # to half a second before the reset.
    part = 7 * math.sqrt(0.5)
    turn = budget.next_turn(10.0, waiting=10)
    assert math.isclose(turn, 10.0 + 9.5 / (part + 1))
    send(budget, turn)
    budget.learn(1, 10, 20.0)  # others spent faster: less than one of ours is left
    assert budget.next_turn(turn) == 20.0


def test_the_servers_word_wins_over_the_model_in_both_directions() -> None:
    budget = shared_budget()
    (probe,) = send(budget, 10.0)
    budget.answered(probe)
    budget.learn(9, 10, 20.0)  # nobody else has spent yet: more than our part is there
    assert budget.left == 9
    send(budget, 11.0, 2)
    budget.learn(2, 10, 20.0)  # less than the model thinks: two of ours are still in flight
    assert budget.left == 0 and budget.spent


def test_a_late_answer_from_the_last_window_settles_nothing_in_this_one() -> None:
    budget = fresh()
    (old,) = send(budget, 9.9)
    budget.roll_over(10.0)
    (new,) = send(budget, 10.0)
    budget.answered(old)
    budget.learn(0, 10, 10.0)  # its word is about the window that ended
    assert budget.in_flight == 1 and budget.left == 9
    budget.answered(new)
    assert budget.in_flight == 0


def test_a_request_unanswered_at_the_reset_counts_against_the_next_window() -> None:
    """Sent late in a window, it may land in the next one: until its answer says where it
    landed, the next window has one less (else every such request overdraws it)."""
    budget = fresh()
    late = send(budget, 9.8, 3)
    budget.roll_over(10.0)
    assert budget.left == 7
    budget.answered(late[0])
    assert budget.left == 8
    # One still unanswered a whole window later is not counted any longer.
    budget.roll_over(20.0)
    assert budget.left == 10


def test_a_429_spent_nothing_of_ours() -> None:
    budget = fresh()
    generations = send(budget, 0.0, 4)
    for generation in generations:
        budget.answered(generation, counted=False)
    budget.learn(0, 10, 10.0)  # all ten went to someone else
    assert budget.others == 10 and budget.shared


def test_windows_are_told_apart_by_the_servers_own_reset_not_our_reading_of_it() -> None:
    """Our reading of the server's clock improves as answers come, which moves the loop time
    of one and the same reset: the server's own reset says it is one window."""
    budget = Budget(server_left=10, limit=10, reset=10.4, server_reset=1_800_000_010.0)
    budget.first_word()
    budget.learn(5, 10, 10.4, 1_800_000_010.0)
    budget.learn(4, 10, 10.0, 1_800_000_010.0)  # read 0.4 s earlier now: the same window
    assert budget.server_left == 4 and budget.reset == 10.0 and budget.length == 10.0
    budget.learn(9, 10, 19.9, 1_800_000_020.0)  # the next window: ten seconds on its clock
    assert budget.server_left == 9 and budget.length == 10.0


def test_an_answer_of_the_same_window_never_pushes_its_end_out() -> None:
    """Without a Date, an answer that arrives just after its window's reset reads it as past,
    and its end is guessed one window from now: the window it names still ends when known."""
    budget = Budget(server_left=10, limit=10, reset=10.0, server_reset=1_800_000_010.0)
    budget.first_word()
    budget.learn(0, 10, 20.05, 1_800_000_010.0)
    assert budget.reset == 10.0 and budget.spent and budget.next_turn(5.0) == 10.0


def test_a_window_learned_from_an_answer_is_shared_only_if_others_spent_the_last() -> None:
    """The server's answer, not our clock, opens the next windows (our sends were spaced up
    to the reset): each one decides anew, so the others' going ends the shared mode."""
    budget = fresh()
    (generation,) = send(budget, 0.0)
    budget.answered(generation)
    budget.learn(5, 10, 10.0)  # one of ours, four of someone else's
    assert budget.shared
    (generation,) = send(budget, 9.9)
    budget.answered(generation)
    budget.learn(9, 10, 20.0)  # the next window, by an answer: only ours counted in it
    assert budget.shared and budget.share == 2 / 6
    for at, remaining in ((10.5, 8), (11.0, 7)):
        (generation,) = send(budget, at)
        budget.answered(generation)
        budget.learn(remaining, 10, 20.0)  # ours alone
    (generation,) = send(budget, 19.9)
    budget.answered(generation)
    budget.learn(9, 10, 30.0)  # nobody else spent the window that ended
    assert not budget.shared and budget.share == 1.0
    assert budget.next_turn(20.0, waiting=50) == 20.0  # the whole window at once


def test_the_share_is_taken_anew_at_every_window_however_it_was_learned() -> None:
    budget = shared_budget()  # two of ours and two of theirs: half
    assert budget.share == 0.5
    for at in (10.0, 11.0, 12.0):
        (generation,) = send(budget, at)
        budget.answered(generation)
    budget.learn(6, 10, 20.0)  # three of ours, one of theirs
    (generation,) = send(budget, 19.9)
    budget.answered(generation)
    budget.learn(9, 10, 30.0)  # the next window, by an answer
    assert budget.shared and budget.share == 4 / 5
    budget.roll_over(40.0)  # and by our clock: nobody else in the last one
    assert not budget.shared and budget.share == 1.0


def test_what_waits_goes_at_once_when_it_fits_in_our_part() -> None:
    """A run's last requests are not spread over the rest of the window when our part of it
    holds them all: spreading only keeps a run from taking the others' part."""
    budget = fresh(limit=100)
    for generation in send(budget, 0.0, 50):
        budget.answered(generation)
    budget.learn(0, 100, 10.0)  # fifty of ours, fifty of theirs
    budget.roll_over(10.0)
    assert budget.share == 0.5
    (probe,) = send(budget, 10.0)
    budget.answered(probe)
    budget.learn(90, 100, 20.0)  # our probe and nine of theirs so far
    # Our measured half of the window is 50, less the probe: 41 go at once, 50 are spaced.
    assert budget.next_turn(10.1, waiting=41) == 10.1
    assert budget.next_turn(10.1, waiting=50) > 10.1


def test_a_run_that_sent_its_part_at_once_spaces_the_rest() -> None:
    budget = shared_budget()
    (probe,) = send(budget, 10.0)
    budget.answered(probe)
    budget.learn(9, 10, 20.0)
    assert budget.next_turn(10.0, waiting=4) == 10.0  # our half of 10, less the probe
    send(budget, 10.0, 4)
    assert budget.next_turn(10.0, waiting=1) > 10.0  # the half is spent: spaced again


def test_a_shared_window_nobody_else_has_spent_yet_is_spread_in_full() -> None:
    """The others of the last window may have gone: until one of theirs shows, all that is
    left is spread as ours (else a window after they stop ends a request or more short)."""
    budget = shared_budget()
    (probe,) = send(budget, 10.0)
    budget.answered(probe)
    budget.learn(9, 10, 20.0)  # only our probe counted so far
    assert budget.claim == 1.0
    assert math.isclose(budget.next_turn(10.0, waiting=20), 10.0 + 9.5 / 10)
    (generation,) = send(budget, 11.0)
    budget.answered(generation)
    budget.learn(6, 10, 20.0)  # two of ours, two of theirs: back to the claim of our half
    assert budget.claim == math.sqrt(0.5)


def test_in_flight_across_routes_is_the_most_any_route_is_worth() -> None:
    """A target's work may go by any write route: the bound is the largest of theirs, each
    the least of the account's, the token's and its own budget over a window."""
    budgets = Budgets()
    end = WindowEnd(at=10.0, said=10.0)
    assert budgets.in_flight_bound(("create", "update"), 0.1, 512) == 512  # nothing known
    budgets.learn("global", 1000, 1000, end, known=True)
    budgets.learn("token", 500, 500, end, known=True)
    assert budgets.in_flight_bound(("create",), None, 512) == 512  # no round trip yet
    assert budgets.in_flight_bound(("create",), 0.1, 512) == 500  # the token's, no route's
    budgets.learn("create", 100, 100, end, known=True)
    budgets.learn("update", 300, 300, end, known=True)
    assert budgets.in_flight_bound(("create",), 0.1, 512) == 100
    assert budgets.in_flight_bound(("create", "update"), 0.1, 512) == 300
    assert budgets.in_flight_bound(("create", "update", "delete"), 0.1, 512) == 500
    assert budgets.in_flight_bound(("create", "update"), 0.1, 64) == 64  # the ceiling
    # A round trip of 25 s spans two and a half windows: as many windows' budgets.
    assert budgets.in_flight_bound(("create",), 25.0, 512) == 250
