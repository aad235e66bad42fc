"""Text from elsewhere (LaunchDarkly's error bodies, a store's error messages) made safe to show.

Such text is data, and reaches terminals, logs, JUnit XML and Markdown. A raw control character
there is a command: ESC starts an ANSI sequence that recolours a terminal or moves its cursor,
BEL rings it, and XML 1.0 forbids almost every C0 control outright (a CI server then rejects
the whole JUnit file). Escaping them visibly keeps what the server said readable, e.g.
``\\x1b[31m``, and keeps every output well-formed.
"""

from __future__ import annotations

import re
from typing import Final

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
