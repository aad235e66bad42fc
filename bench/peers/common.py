"""What every peer shares: the request each target sends, and the result it reports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

BSS: Final = "/api/v2/integration-capabilities/big-segment-store"

# The create body ldbulk sends for RedisConfig(host="redis.internal"), so every contender
# asks the sandbox for exactly the same work.
REDIS_CONFIG: Final[Mapping[str, Any]] = {
    "host": "redis.internal",
    "port": "6379",
    "username": "",
    "password": "",
    "tlsEnabled": False,
}
CREATE_BODY: Final[Mapping[str, Any]] = {"config": REDIS_CONFIG, "on": False}

Pair = tuple[str, str]


def create_url(base_url: str, project: str, environment: str) -> str:
    """The create endpoint of the Redis integration of one environment."""
    return f"{base_url}{BSS}/{project}/{environment}/redis"


def create_headers(token: str) -> dict[str, str]:
    """The headers of a create: the raw token, the beta opt-in, JSON."""
    return {
        "Authorization": token,
        "LD-API-Version": "beta",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def create_data() -> bytes:
    """The serialized create body."""
    return json.dumps(CREATE_BODY).encode()


def reset_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until ``X-Ratelimit-Reset`` (epoch milliseconds), or None without the header."""
    value = headers.get("X-Ratelimit-Reset")
    if value is None:
        return None
    try:
        return max(int(value) / 1000 - now, 0.0)
    except ValueError:
        return None


@attrs.define
class PeerResult:
    """What a peer achieved: targets created (or found existing), failed, and its own counts."""

    created: int = 0
    failed: int = 0
    requests: int = 0
    throttled: int = 0

    def to_json(self) -> dict[str, int]:
        """The fields as a JSON object."""
        return attrs.asdict(self)
