"""Log lines: server text in them is escaped, so a log read in a terminal cannot drive it."""

from __future__ import annotations

import json
import logging
import sys

from ldbulk.cli.logs import JSONFormatter, TextFormatter

SERVER_SAYS = "bad\x00\x1b[31mred\x07"


def record(exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(SERVER_SAYS)
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "ldbulk.http.client", logging.INFO, __file__, 1, "POST /x: %s", (SERVER_SAYS,), exc_info
    )


def test_text_lines_escape_control_characters_in_the_message_and_traceback() -> None:
    line = TextFormatter("%(levelname)s %(message)s").format(record(exc=True))
    assert "\x1b" not in line and "\x00" not in line and "\x07" not in line
    assert "INFO POST /x: bad\\x00\\x1b[31mred\\x07" in line
    assert "ValueError: bad\\x00\\x1b[31mred\\x07" in line
    assert "\nTraceback" in line  # the traceback still reads as lines


def test_json_lines_carry_control_characters_only_as_json_escapes() -> None:
    line = JSONFormatter().format(record())
    assert "\x1b" not in line
    assert json.loads(line)["message"] == f"POST /x: {SERVER_SAYS}"
