"""What an earlier run saw, so a re-run can skip the reads that cannot find a difference.

LaunchDarkly raises an integration's ``version`` with every change, and the list (one request)
gives every integration's version. An integration whose id and version are those an earlier
run left it at, with a target that asks for exactly what it asked for then, is as that run
left it: as the manifest says. Reading it by id again could only confirm that. Anything else
(another version, another id, another wish) is read and compared as usual.

The file holds, per target, the integration id, its version and a fingerprint of what the
target asked for: a salted SHA-256 over the fields a comparison covers, so a changed manifest
value is noticed without the file holding any value. The secrets LaunchDarkly redacts on read
(the Redis password) are left out: no read could compare them anyway, ``--rotate-secrets``
bypasses this file, and a hash of a password beside its salt would let anyone who reads the file
test guesses offline. A file that cannot be read as one of these is refused; a missing one is an
empty start.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any, Final

import attrs

from ldbulk.api.models import Integration, Target, api_name, form_fields, redacted_on_read
from ldbulk.engine.report import Key, Outcome, TargetResult
from ldbulk.errors import ConfigError
from ldbulk.files import write_atomically

KIND: Final = "ldbulk-seen"
FORMAT: Final = 1

# The outcomes after which the integration is known to be as the target asks, at a version.
_SETTLED: Final = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})


@attrs.frozen
class _Entry:
    integration_id: str
    version: int
    fingerprint: str


class Seen:
    """The integrations an earlier run left as their targets asked, by target key."""

    def __init__(self, salt: str | None = None, entries: dict[Key, _Entry] | None = None) -> None:
        self._salt = salt or secrets.token_hex(16)
        self._entries = entries if entries is not None else {}

    @classmethod
    def load(cls, path: Path) -> Seen:
        """The file at ``path``; an empty one when it does not exist yet."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"state {path}: cannot read it: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") != KIND or data.get("format") != FORMAT:
            raise ConfigError(f"state {path}: not an ldbulk state file (format {FORMAT})")
        try:
            entries = {
                tuple(item["key"]): _Entry(item["id"], int(item["version"]), item["fingerprint"])
                for item in data["integrations"]
            }
            return cls(str(data["salt"]), entries)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"state {path}: malformed") from None

    def save(self, path: Path) -> None:
        """Write the file whole or not at all."""
        document: dict[str, Any] = {
            "kind": KIND,
            "format": FORMAT,
            "salt": self._salt,
            "integrations": [
                {"key": list(key), "id": entry.integration_id, "version": entry.version,
                 "fingerprint": entry.fingerprint}
                for key, entry in sorted(self._entries.items())
            ],
        }
        write_atomically(path, json.dumps(document, indent=1) + "\n")

    def unchanged(self, target: Target, integration: Integration) -> bool:
        """Whether ``integration`` (as listed) is exactly as an earlier run left it for this
        very wish of ``target``."""
        entry = self._entries.get(target.key)
        return entry is not None and entry == _Entry(
            integration.id, integration.version, self._fingerprint(target)
        )

    def record(self, target: Target, result: TargetResult) -> None:
        """Remember a target's integration at the version the run left it (or forget it, when
        the run does not know that version)."""
        if result.outcome in _SETTLED and result.integration_id and result.version is not None:
            self._entries[target.key] = _Entry(
                result.integration_id, result.version, self._fingerprint(target)
            )
        elif result.outcome is not Outcome.EXISTS:
            self._entries.pop(target.key, None)

    def _fingerprint(self, target: Target) -> str:
        config = target.config
        compared = {
            api_name(field): getattr(config, field.name)
            for field in form_fields(type(config))
            if not redacted_on_read(field)
        }
        wish = {
            "config": compared,
            "on": target.on,
            "tags": sorted(target.written_tags),
            "name": target.name,
        }
        text = json.dumps(wish, sort_keys=True)
        return hashlib.sha256(f"{self._salt}\n{text}".encode()).hexdigest()
