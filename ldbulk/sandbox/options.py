"""What a sandbox is told (:class:`SandboxOptions`) and what it tells (stats, recorded responses).

Plain values with no server behind them: the command line parses its options into these without
loading aiohttp.web.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ldbulk.errors import ConfigError
from ldbulk.sandbox.masking import CONFIG_KEYS, DEFAULT_MASKED


def _probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{attribute.name}: must be from 0 to 1, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name}: must not be negative, got {value!r}")


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{attribute.name}: must be positive (or None for no limit)")


def _port(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ConfigError(f"port: must be from 0 (any free port) to 65535, got {value!r}")


def _window(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ConfigError(f"window_s: must be positive, got {value!r}")


def _keys(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _masked_fields(
    instance: object, attribute: attrs.Attribute[frozenset[str]], value: frozenset[str]
) -> None:
    unknown = sorted(value - CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"masked_fields: not a config key of either integration: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(CONFIG_KEYS))})"
        )


def generate_token() -> str:
    """A random access token in LaunchDarkly's shape (``api-`` and a uuid)."""
    return f"api-{uuid.uuid4()}"


@attrs.frozen(kw_only=True)
class SandboxOptions:
    """How a sandbox behaves: its address, its world, its limits and its faults.

    - ``world``: a JSON/YAML file or the already-parsed data (see :mod:`ldbulk.sandbox.world`);
      without one, a generated world of ``projects`` x ``environments``.
    - ``route_limit`` / ``global_limit`` / ``token_limit``: requests per ``window_s`` window,
      per route, for the account, per access token (None: unlimited).
    - ``background_rate``: requests per window that the account's other clients spend from the
      global budget and from every route's, spread evenly over each window (0: none).
    - ``retry_after``: also send ``Retry-After`` (seconds) on a 429.
    - ``echo_token``: a 401's message quotes the ``Authorization`` header it was sent, as a
      server (or a proxy) may that quotes what it was sent: the client must not show it.
    - ``latency_ms``: added to every API request; ``fault_rate``: probability of a 5xx before
      the request is applied; ``drop_after_commit``: probability that a create is stored and
      its connection then cut without an answer. ``seed`` makes the faults reproducible.
    - ``state``: a JSON file holding the integrations; loaded at start when it exists (it then
      replaces the world's integrations) and rewritten atomically after changes.
    - ``seed_integrations``: that many redis integrations exist at start, one in each
      environment in the world's order (where the world has none): a large account, fast.
    - ``record``: keep every API response in :attr:`Sandbox.responses` (tests validate them).
    - ``sync_delay_s``: how long after its configuration is set a store reports itself
      available (a simulated sync; 0: at once). A world's ``unreachableHosts`` never sync.
    - ``masked_fields``: the config keys whose set values a read shows masked in LaunchDarkly's
      style (``ext********234``, see :mod:`ldbulk.sandbox.masking`); by default the Redis
      password, which LaunchDarkly marks secret. LaunchDarkly does not publish which fields it
      masks: adding ``externalId`` or ``roleArn`` tries a server that masks more.
    - ``clock``: epoch seconds for the rate-limit windows and the simulated sync (tests pin
      it, and move it).
    - ``clock_offset_s``: how far the server's clock is ahead of ``clock`` (negative: behind).
      Its resets and the ``Date`` of every answer are on that clock, as a LaunchDarkly whose
      clock is off from the client's would send them.
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=0, validator=_port)
    token: str = attrs.field(factory=generate_token, repr=False)
    world: Path | Mapping[str, Any] | None = None
    projects: int = attrs.field(default=3, validator=_non_negative)
    environments: int = attrs.field(default=3, validator=_non_negative)
    route_limit: int | None = attrs.field(default=None, validator=_positive_or_none)
    global_limit: int | None = attrs.field(default=None, validator=_positive_or_none)
    token_limit: int | None = attrs.field(default=None, validator=_positive_or_none)
    window_s: float = attrs.field(default=10.0, validator=_window)
    background_rate: int = attrs.field(default=0, validator=_non_negative)
    retry_after: bool = False
    echo_token: bool = False
    latency_ms: float = attrs.field(default=0.0, validator=_non_negative)
    fault_rate: float = attrs.field(default=0.0, validator=_probability)
    drop_after_commit: float = attrs.field(default=0.0, validator=_probability)
    seed: int | None = None
    sync_delay_s: float = attrs.field(default=0.0, validator=_non_negative)
    state: Path | None = None
    seed_integrations: int = attrs.field(default=0, validator=_non_negative)
    record: bool = False
    masked_fields: frozenset[str] = attrs.field(
        default=DEFAULT_MASKED, converter=_keys, validator=_masked_fields
    )
    clock: Callable[[], float] = attrs.field(default=time.time, repr=False)
    clock_offset_s: float = 0.0

    def server_clock(self) -> float:
        """The server's epoch time: ``clock`` moved by ``clock_offset_s``."""
        return self.clock() + self.clock_offset_s


@attrs.frozen(kw_only=True)
class SandboxStats:
    """What the sandbox has served since start (or the last reset)."""

    requests: Mapping[str, Mapping[str, int]]
    total: int
    throttled: int
    faults: int
    dropped: int
    integrations: int

    def count(self, route: str, status: int | str) -> int:
        """Requests on ``route`` answered with ``status`` (``"dropped"`` for cut connections)."""
        return self.requests.get(route, {}).get(str(status), 0)

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /_sandbox/stats``."""
        return {
            "requests": {route: dict(by_status) for route, by_status in self.requests.items()},
            "total": self.total,
            "throttled": self.throttled,
            "faults": self.faults,
            "dropped": self.dropped,
            "integrations": self.integrations,
        }


@attrs.frozen(kw_only=True)
class RecordedResponse:
    """One API response as sent: which route answered, the status and the body bytes."""

    method: str
    route: str
    status: int
    body: bytes = attrs.field(repr=False)
