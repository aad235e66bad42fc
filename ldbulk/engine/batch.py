"""Whether a run lists the account first, or goes straight to its creates: a pure decision.

A run normally begins with one listing of the account's integrations (the only way
LaunchDarkly tells what exists: there is no filter and no paging), then creates what is
missing and reads what exists. For a batch that is small against the account, that listing
costs more than everything else the run does: in an account of 100,000 integrations, one new
environment's store would cost a listing of ~70 MB for a single create. Such a batch goes
**create-first** instead:

- each target is created at once; 201 is ``created``;
- a 409 says an integration is there already: ``exists`` when the run is create-only (nothing
  is read, no listing); when converging, the account is listed to learn its id (one listing,
  shared by every 409 of the run), then it is read and patched as in any run;
- an unclear create (no answer, a 5xx) is settled exactly as in any run: by a listing, never by
  sending it again blindly (see :mod:`ldbulk.engine.writes`).

The rule (:func:`creates_first`): create-first when the run needs no listing for its own sake
(no prune, no listing handed in, no state file, whose shortcut reads the listing's versions),
the number of targets is known, and the batch is small against the account:

- the client never listed the account: at most :data:`CREATE_FIRST_MAX` targets;
- it did (:attr:`Client.account_size <ldbulk.http.client.Client.account_size>`): at least
  :data:`LISTED_PER_TARGET` listed integrations per target, and at most
  :data:`CREATE_FIRST_KNOWN_MAX` targets. An account known to be small lists first: its
  listing is cheap and tells every target's fate in one request.

A worst case (every target already there, converging) costs one 409 per target more than a
listing-first run, against a listing that carries at least :data:`LISTED_PER_TARGET` times as
many items as there are 409s.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Collection, Iterable
from typing import Final

# The most targets a run sends create-first into an account of unknown size. A batch of this
# many whose integrations all exist costs this many 409s more than a listing would: a few
# requests of one window.
CREATE_FIRST_MAX: Final = 16
# The most into an account known to be large: past this, the 409s of a re-run could take
# several rate-limit windows, where one listing takes one request.
CREATE_FIRST_KNOWN_MAX: Final = 1_000
# Below this many listed integrations per target, the account's listing is cheap (a few
# kilobytes per target) and tells every target's fate in one request: list first.
LISTED_PER_TARGET: Final = 100


def creates_first(*, targets: int | None, account_size: int | None, needs_listing: bool) -> bool:
    """Whether a run of ``targets`` (None: not known before the run, an iterator) goes
    create-first, given the integrations the client's last listing found (``account_size``,
    None when it never listed) and whether the run ``needs_listing`` for its own sake."""
    if needs_listing or targets is None:
        return False
    if account_size is None:
        return targets <= CREATE_FIRST_MAX
    return targets <= CREATE_FIRST_KNOWN_MAX and account_size >= targets * LISTED_PER_TARGET


def known_count(targets: Iterable[object] | AsyncIterable[object]) -> int | None:
    """How many targets a run has, when that is known without consuming them."""
    return len(targets) if isinstance(targets, Collection) else None
