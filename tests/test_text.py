"""Text from elsewhere: control characters escaped, secrets taken out whole."""

from __future__ import annotations

from ldbulk.text import printable, redact


def test_every_whole_occurrence_of_a_secret_is_replaced_and_parts_are_kept() -> None:
    token = "api-0a1b2c3d"
    text = f"token {token} refused; tokens start with api- ({token}!)"
    assert redact(text, [token]) == "token *** refused; tokens start with api- (***!)"
    assert redact("api-0a1b2c only", [token]) == "api-0a1b2c only"


def test_a_secret_inside_another_is_not_half_replaced() -> None:
    assert redact("long: abcdef, short: abc", ["abc", "abcdef"]) == "long: ***, short: ***"


def test_no_secret_or_an_empty_one_leaves_the_text_as_it_is() -> None:
    text = "nothing to hide"
    assert redact(text, []) is text and redact(text, [""]) is text


def test_redact_before_escaping_an_escaped_secret_would_no_longer_match() -> None:
    secret = "pass\nword"
    assert secret not in printable(redact(f"said {secret}", [secret]))
    assert redact(printable(f"said {secret}"), [secret]) != "said ***"
