"""How the sandbox masks config values on read, in LaunchDarkly's style.

LaunchDarkly documents that it redacts secrets on read, not which fields it counts as secret:
the Redis password (``isSecret`` in the formVariables) reads back masked, and so may the
DynamoDB external id (``ext********234``). The sandbox masks the config keys it is told to
(:attr:`~ldbulk.sandbox.options.SandboxOptions.masked_fields`, by default the fields the field
table marks redacted on read), so that ldbulk can be tried against a server that masks fields
it does not expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ldbulk.api.models import CONFIG_CLASSES, api_name, form_fields, redacted_on_read

# The mask of a value too short to show any of it, and the stars between the ends of a longer one.
REDACTED_VALUE: Final = "********"

# LaunchDarkly's style: the first three characters, stars, the last three; a value shorter than
# this shows nothing of itself, so that at least half of it stays hidden.
_SHOWN: Final = 3
_SHORTEST_SHOWN: Final = 12

# What LaunchDarkly masks whatever else it does: the formVariables marked secret.
DEFAULT_MASKED: Final = frozenset(
    api_name(field)
    for cls in CONFIG_CLASSES.values()
    for field in form_fields(cls)
    if redacted_on_read(field)
)

# Every config key a sandbox can be told to mask: the formVariables of both integrations.
CONFIG_KEYS: Final = frozenset(
    api_name(field) for cls in CONFIG_CLASSES.values() for field in form_fields(cls)
)


def mask(value: str) -> str:
    """``value`` as LaunchDarkly shows a masked one: ``ext********234``, or only stars."""
    if len(value) < _SHORTEST_SHOWN:
        return REDACTED_VALUE
    return value[:_SHOWN] + REDACTED_VALUE + value[-_SHOWN:]


def masked_config(config: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """``config`` as a read shows it: each set value of ``fields`` masked, never the value."""
    return {
        key: (mask(str(value)) if key in fields and value else value)
        for key, value in config.items()
    }


def unmask(
    config: dict[str, Any], stored: Mapping[str, Any], fields: frozenset[str]
) -> None:
    """A config read back (so masked) and patched whole keeps the values behind its masks:
    a member still equal to the mask a read shows (or to the bare stars) is the stored value."""
    for key in fields:
        value = config.get(key)
        if not isinstance(value, str):
            continue
        held = stored.get(key)
        if value == REDACTED_VALUE or (held and value == mask(str(held))):
            config[key] = held if held is not None else ""
