"""What an earlier run saw, so a re-run can skip the reads that cannot find a difference.

LaunchDarkly raises an integration's ``version`` with every change, and the list (one request)
gives every integration's version. An integration whose id and version are those an earlier
run left it at, with a target that asks for exactly what it asked for then, is as that run
left it: as the manifest says. Reading it by id again could only confirm that. Anything else
(another version, another id, another wish) is read and compared as usual.

The file holds the base URL it was written against and, per target, the integration id, its
version and a fingerprint of what the target asked for. The file is a shortcut, never a
source of truth, so whatever it cannot vouch for is read:

- **It is signed.** An HMAC-SHA256 over the whole document, keyed with a key derived from the
  access token (:meth:`~ldbulk.http.client.Client.derive_key`; the file holds neither), so a
  hand-edited file (a version bumped to hide a change made by hand) does not verify. A file
  that does not verify, was written against another base URL, or by an older ldbulk, is
  ignored as a whole with a warning (every target is read) and replaced at the end of the run.
  A new access token has the same effect, once.
- **A version ahead of the listing** (a restored account, an edited file) is no match: only the
  exact id and version skip the read.
- **No value.** The fingerprint is an HMAC with that same key over the fields a comparison
  covers, so a changed manifest value is noticed without the file holding any value, and
  without the file alone allowing a guess at one to be tested offline. The secrets LaunchDarkly
  redacts on read (the Redis password) are left out: no read could compare them anyway, and
  ``--rotate-secrets`` bypasses this file.

A file that is no state file at all (another kind, or a newer ldbulk's format) is refused, not
overwritten; a missing one is an empty start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from ldbulk.api.models import Integration, Target, api_name, form_fields, redacted_on_read
from ldbulk.engine.report import Key, Outcome, TargetResult
from ldbulk.errors import ConfigError
from ldbulk.files import write_atomically

if TYPE_CHECKING:
    from ldbulk.http.client import Client

log = logging.getLogger(__name__)

KIND: Final = "ldbulk-seen"
FORMAT: Final = 2
# What the key is derived for: a key for this file and nothing else.
KEY_LABEL: Final = "ldbulk state file"

# The outcomes after which the integration is known to be as the target asks, at a version.
_SETTLED: Final = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})


@attrs.frozen
class _Entry:
    integration_id: str
    version: int
    fingerprint: str


class Seen:
    """The integrations an earlier run left as their targets asked, by target key, as seen
    at ``base_url`` by the holder of ``key``."""

    def __init__(
        self, *, key: bytes, base_url: str, entries: dict[Key, _Entry] | None = None
    ) -> None:
        self._key = key
        self._base_url = base_url
        self._entries = entries if entries is not None else {}

    def __repr__(self) -> str:
        return f"Seen(base_url={self._base_url!r}, entries={len(self._entries)})"

    @classmethod
    def for_client(cls, path: Path, client: Client) -> Seen:
        """The file at ``path`` as ``client`` (its base URL and access token) can vouch for."""
        return cls.load(path, key=client.derive_key(KEY_LABEL), base_url=client.base_url)

    @classmethod
    def load(cls, path: Path, *, key: bytes, base_url: str) -> Seen:
        """The file at ``path``; an empty one when it does not exist yet, or cannot be trusted
        (see the module's notes)."""
        empty = cls(key=key, base_url=base_url)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return empty
        except (OSError, ValueError) as exc:
            raise ConfigError(f"state {path}: cannot read it: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ConfigError(f"state {path}: not an ldbulk state file (format {FORMAT})")
        written = data.get("format")
        if not isinstance(written, int) or written > FORMAT:
            # A newer ldbulk's file: refused rather than replaced by an older format.
            raise ConfigError(
                f"state {path}: format {written!r}; this ldbulk reads format {FORMAT}"
            )
        reason = empty._distrust(data)
        if reason is not None:
            log.warning("state %s: ignored, every integration is read: %s", path, reason)
            return empty
        try:
            entries = {
                tuple(item["key"]): _Entry(item["id"], int(item["version"]), item["fingerprint"])
                for item in data["integrations"]
            }
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"state {path}: malformed") from None
        return cls(key=key, base_url=base_url, entries=entries)

    def _distrust(self, data: dict[str, Any]) -> str | None:
        """Why a state document cannot be taken at its word (None when it can)."""
        written = data["format"]
        if written < FORMAT:
            return f"written by an older ldbulk (format {written})"
        claimed = data.get("mac")
        if not isinstance(claimed, str) or not hmac.compare_digest(claimed, self._mac(data)):
            return (
                "its signature does not verify (edited by hand, or written with another "
                "access token)"
            )
        if data.get("baseUrl") != self._base_url:
            return f"written against another base URL ({data.get('baseUrl')!r})"
        return None

    def save(self, path: Path) -> None:
        """Write the file whole or not at all."""
        document: dict[str, Any] = {
            "kind": KIND,
            "format": FORMAT,
            "baseUrl": self._base_url,
            "integrations": [
                {"key": list(key), "id": entry.integration_id, "version": entry.version,
                 "fingerprint": entry.fingerprint}
                for key, entry in sorted(self._entries.items())
            ],
        }
        document["mac"] = self._mac(document)
        write_atomically(path, json.dumps(document, indent=1) + "\n")

    def unchanged(self, target: Target, integration: Integration) -> bool:
        """Whether ``integration`` (as listed) is exactly as an earlier run left it for this
        very wish of ``target``. Only the exact id and version count: a recorded version
        ahead of the listed one is no proof of anything, so the integration is read."""
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

    def _mac(self, document: dict[str, Any]) -> str:
        """The signature of everything in ``document`` but the signature itself."""
        signed = {name: value for name, value in document.items() if name != "mac"}
        text = json.dumps(signed, sort_keys=True, separators=(",", ":"))
        return self._hmac("document", text)

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
        return self._hmac("fingerprint", json.dumps(wish, sort_keys=True))

    def _hmac(self, purpose: str, text: str) -> str:
        # The purpose keeps a fingerprint from ever passing for a signature, and back.
        message = f"{purpose}\n{text}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
