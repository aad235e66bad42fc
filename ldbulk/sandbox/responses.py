"""The sandbox's answers: JSON bodies, and LaunchDarkly's error shape ``{code, message, id}``."""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from aiohttp import web

JSON: Final = "application/json"


class ApiError(Exception):
    """An error answer: status and LaunchDarkly's ``{code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Dropped(Exception):
    """The connection was cut on purpose: there is no answer to send."""


def json_response(status: int, data: Any) -> web.Response:
    """``data`` as a JSON answer."""
    return web.Response(status=status, body=json.dumps(data).encode(), content_type=JSON)


def error_response(status: int, code: str, message: str) -> web.Response:
    """An error answer in LaunchDarkly's shape, with a fresh id."""
    return json_response(status, {"code": code, "message": message, "id": str(uuid.uuid4())})
