"""Text from elsewhere (LaunchDarkly's error bodies, a store's error messages) made safe to show.

Such text is data, and reaches terminals, logs, JUnit XML and Markdown. A raw control character
there is a command: ESC starts an ANSI sequence that recolours a terminal or moves its cursor,
BEL rings it, and XML 1.0 forbids almost every C0 control outright (a CI server then rejects
the whole JUnit file). Escaping them visibly keeps what the server said readable, e.g.
``\\x1b[31m``, and keeps every output well-formed.

Such text may also quote what it was sent, a secret included (a 401 that echoes the
Authorization header): :func:`redact` takes secrets out, before anything escapes or cuts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

# What stands where a secret was.
REDACTED: Final = "***"

# C0 controls, DEL and C1 controls (0x9b is a one-byte CSI on some terminals), lone surrogates
# (JSON may encode them; no UTF-8 file can hold one) and U+FFFE/U+FFFF, which XML 1.0 forbids.
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character escaped as ``\\xNN`` (or ``\\uNNNN``).

    Newlines and tabs are escaped too: a value from a server is one line. Idempotent, so text
    escaped at its source can pass through an output that escapes again.
    """
    return _UNPRINTABLE.sub(_escape, text)


def occurrences(values: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching each of ``values`` where it stands as a whole: not where it is part
    of a longer word (a one-letter password ``x`` is no reason to show "could not list
    existing" as ``e***isting``). Longest first, so a value inside another is not
    half-replaced. None when there is no value to look for."""
    found = sorted({value for value in values if value}, key=len, reverse=True)
    if not found:
        return None
    return re.compile("|".join(map(_whole, found)))


def _whole(value: str) -> str:
    """``value`` as a pattern that matches it only where no letter, digit or ``_`` runs on
    from its ends into the text around it (``\\b`` at an end that is a word character)."""
    start = r"\b" if re.match(r"\w", value[0]) else ""
    end = r"\b" if re.match(r"\w", value[-1]) else ""
    return f"{start}{re.escape(value)}{end}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every whole occurrence of each of ``secrets`` replaced by ``***``.

    One pass, longest first: a secret inside another is not half-replaced, and a replacement is
    never searched again. Only whole occurrences: a part of a secret (the ``api-`` every
    access token starts with) is no secret, and hiding it would garble the text; nor is a
    secret's text inside a longer word (see :func:`occurrences`). So redact before escaping or
    cutting, never after: either could leave a part the search no longer finds, shown.
    """
    pattern = occurrences(secret for secret in secrets if secret and secret in text)
    return text if pattern is None else pattern.sub(REDACTED, text)


_DIGITS: Final = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[str, int], ...]:
    """A sort key that reads runs of digits as numbers, as people count: ``env-2`` before
    ``env-10`` (by the characters, ``env-10`` comes first).

    Split at its runs of digits, a text alternates pieces of text and numbers, so two keys
    compare piece by piece, text with text (``(piece, 0)``) and number with number
    (``("", number)``). The length comes last: ``env-02`` after ``env-2``, never equal.
    """
    pieces = _DIGITS.split(text)
    numbered = [("", int(piece)) if odd else (piece, 0) for odd, piece in _alternate(pieces)]
    return (*numbered, ("", len(text)))


def _alternate(pieces: list[str]) -> Iterator[tuple[bool, str]]:
    """Each piece of a split at a capturing group, with whether it is a captured one (every
    other piece, from the second)."""
    return ((position % 2 == 1, piece) for position, piece in enumerate(pieces))


def natural_order(key: Iterable[str]) -> tuple[tuple[tuple[str, int], ...], ...]:
    """A sort key for a key of several parts (project, environment, integration): each part
    in :func:`natural_key`'s order, the first part first."""
    return tuple(natural_key(part) for part in key)
