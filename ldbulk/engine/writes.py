"""The writes of a run, one target or leftover integration at a time: create, update, delete.

Each write whose answer is unclear (connection cut, timeout, 5xx) may have been applied, so none
is sent again without knowing it is safe:

- a create is sent again, since LaunchDarkly answers a second create with 409, never with a
  duplicate; a 409, or an unclear last try, is settled by the account's listing;
- an update is settled by reading the integration back: what is still different is sent again,
  under a ``test`` of the version just read, so nothing is written over someone else's change;
- a delete is retried by the client itself: a 404 after a lost answer means it was deleted.
"""

from __future__ import annotations

import asyncio

import attrs

from ldbulk.api.models import Integration, Target
from ldbulk.engine.decide import Action, after_read, before_read
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.report import Outcome
from ldbulk.engine.seen import Seen
from ldbulk.engine.verdict import CHANGED_SINCE_PLAN, Verdict, outcome_of
from ldbulk.errors import (
    Conflict,
    HTTPStatusError,
    LdbulkError,
    NotFound,
    ResponseFormatError,
    Stopped,
    TransportError,
    Unauthorized,
)
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope

# The errors after which a write may or may not have been applied.
UNCLEAR = (TransportError, ResponseFormatError)


@attrs.define(eq=False)
class Writes:
    """The writes of one run, sharing its client, scope and inventory, and the 401 that
    refused the run's token (after which nothing more is tried)."""

    client: Client
    scope: RequestScope
    inventory: Inventory
    create_only: bool = attrs.field(default=False, kw_only=True)
    rotate_secrets: bool = attrs.field(default=False, kw_only=True)
    seen: Seen | None = attrs.field(default=None, kw_only=True)
    # Whether an integration someone else created where ours was to go is converged
    # (adopted), or left alone as a conflict (a saved plan writes only what was reviewed).
    adopt: bool = attrs.field(default=True, kw_only=True)
    # A create-only run that did not list first takes a 409 to a clear create as the
    # integration being there (``exists``, id unknown): listing the account to confirm it
    # would cost what not listing saved, and nothing is written either way.
    exists_on_conflict: bool = attrs.field(default=False, kw_only=True)
    refused: Unauthorized | None = attrs.field(default=None, init=False)

    def answered(self, exc: HTTPStatusError, attempts: int) -> Verdict | None:
        """The verdict of a status that says the write was answered and not applied."""
        if isinstance(exc, Unauthorized):
            self.refused = exc
        outcome = outcome_of(exc)
        return Verdict.of(outcome, exc, attempts) if outcome is not None else None

    async def existing(
        self, target: Target, integration_id: str, *, recreate: bool = True
    ) -> Verdict:
        """A target whose integration is there: left alone (create-only) or converged.
        ``recreate``: whether an integration gone since the listing may be created again (not
        when a create's 409 led here: the two would chase each other)."""
        # What the listing gave, or a stand-in with the id alone when it gave nothing (it
        # is there: an answer said so), which only a create-only run leaves unread.
        listed = self.inventory.integration(target.key) or _listed_as(target, integration_id)
        action = before_read(target, listed, create_only=self.create_only,
                             rotate_secrets=self.rotate_secrets, seen=self.seen)
        if action is Action.EXISTS:
            return Verdict(outcome=Outcome.EXISTS, integration_id=integration_id)
        if action is Action.UNCHANGED:
            # As an earlier run left it, for the same wish: a read could only confirm it.
            return Verdict(outcome=Outcome.UNCHANGED, integration_id=integration_id,
                           version=listed.version)
        return await self.update(target, integration_id, recreate=recreate)

    async def create(self, target: Target) -> Verdict:
        """Create; after an unclear answer send it again, and let a 409 or the last try be
        settled by the account's listing.

        LaunchDarkly holds one integration per environment and integration key and answers a
        second create with 409, never with a duplicate: sending again is safe, and costs a
        listing only where one is needed (a create that was applied, or no try left), not one
        per 5xx.
        """
        sent = 0  # creates sent: one stopped before its turn never was
        error: LdbulkError | None = None
        sent_unclear = False  # a create of ours may have been applied without our knowing
        try:
            async for attempt in self.client.retry_context(self.scope):
                try:
                    integration = await self.client.create_integration(
                        target.project,
                        target.environment,
                        target.config,
                        on=target.on,
                        tags=target.written_tags,
                        name=target.name,
                        lean=True,  # the id, keys and version are all a run keeps
                        scope=self.scope,
                    )
                except (*UNCLEAR, Conflict) as exc:
                    if isinstance(exc, Conflict) and self.exists_on_conflict and not sent_unclear:
                        return Verdict(outcome=Outcome.EXISTS, status=409, attempts=attempt.num)
                    error = exc
                    sent_unclear = sent_unclear or not isinstance(exc, Conflict)
                except HTTPStatusError as exc:
                    answered = self.answered(exc, attempt.num)
                    if answered is not None:
                        return answered
                    error = exc  # 5xx, or a status the spec does not name: unclear
                    sent_unclear = True
                else:
                    return Verdict.created(integration.id, attempt.num, integration.version)
                sent = attempt.num
                if not isinstance(error, Conflict) and self.refused is None and attempt.retry():
                    continue  # unclear: send it again (a 409 will tell if it was applied)
                settled = await self._settle(target, error, sent, sent_unclear)
                if settled is not None:
                    return settled
                if self.refused is not None or not attempt.retry():
                    outcome = Outcome.CONFLICT if isinstance(error, Conflict) else Outcome.FAILED
                    return Verdict.of(outcome, error, sent)
        except Stopped:  # before a create's turn came, or while backing off before the next
            if sent_unclear:
                # A create of ours may have been applied: the listing that tells is the one
                # request a stopped run still sends.
                settled = await self._settle(target, error, sent, sent_unclear)
                if settled is not None:
                    return settled
            return Verdict.stopped(error, sent)
        raise AssertionError("unreachable: every attempt returns or is retried")

    async def _settle(
        self, target: Target, error: LdbulkError | None, sent: int, sent_unclear: bool
    ) -> Verdict | None:
        """Ask the account's listing whether the target's integration is there now: a verdict
        when that settles the target, None when it is not there (another try may follow)."""
        try:
            await self.inventory.refresh(newer_than=asyncio.get_running_loop().time())
        except Unauthorized as exc:
            self.refused = exc
            return Verdict.of(Outcome.UNAUTHORIZED, exc, sent)
        except LdbulkError as exc:
            # Without the listing nobody knows whether the create was applied, and creating
            # again without knowing is what the engine never does.
            return Verdict.unsettled(error, exc, sent)
        found = self.inventory.get(target.key)
        if found is None:
            return None
        if not sent_unclear:
            # A 409 to a create of ours that was never unclear: someone else's integration is
            # there; converge it as any other, or leave it to a new plan.
            if not self.adopt:
                return Verdict(outcome=Outcome.CONFLICT, status=409, integration_id=found,
                               attempts=sent, error=CHANGED_SINCE_PLAN)
            return await self.existing(target, found, recreate=False)
        # Ours, most likely; but a 409 may also have met someone else's, never compared: no
        # version, so a state file does not take it as settled.
        return Verdict(
            outcome=Outcome.CREATED,
            status=getattr(error, "status", None),
            integration_id=found,
            attempts=sent,
        )

    async def update(
        self, target: Target, integration_id: str, *, recreate: bool = True
    ) -> Verdict:
        """Read the integration, and patch what differs; after an unclear answer or a
        concurrent change (409), read it again and patch what still differs."""
        sent = 0  # patches sent
        written: tuple[str, ...] = ()  # the fields of the last patch sent
        maybe_applied = False  # a patch of ours got no clear answer (not a 409: that one was not)
        error: LdbulkError | None = None
        key = target.key
        try:
            async for attempt in self.client.retry_context(self.scope):
                try:
                    current = await self.client.get_integration(
                        *key, integration_id, scope=self.scope
                    )
                except NotFound as exc:
                    return await self._gone(target, exc, sent, recreate=recreate)
                except HTTPStatusError as exc:
                    return self.answered(exc, sent) or Verdict.of(Outcome.FAILED, exc, sent)
                except Stopped:
                    raise
                except LdbulkError as exc:  # the client's own retries of the read ran out
                    return Verdict.of(Outcome.FAILED, exc, sent)
                update = after_read(target, current, rotate_secrets=self.rotate_secrets).update
                if update is None:
                    if maybe_applied:  # an unclear patch of ours was applied after all
                        return Verdict(outcome=Outcome.UPDATED, integration_id=integration_id,
                                       attempts=sent, changed=written, version=current.version)
                    return Verdict(outcome=Outcome.UNCHANGED, integration_id=integration_id,
                                   version=current.version)
                sent, written = attempt.num, update.fields
                try:
                    patched = await self.client.update_integration(
                        *key, integration_id, update.operations, scope=self.scope
                    )
                except Conflict as exc:
                    error = exc  # changed under us, ours not applied: read it again
                except UNCLEAR as exc:
                    error, maybe_applied = exc, True  # maybe applied: read it again
                except NotFound as exc:
                    return await self._gone(target, exc, sent, recreate=recreate)
                except HTTPStatusError as exc:
                    answered = self.answered(exc, sent)
                    if answered is not None:
                        return answered
                    error, maybe_applied = exc, True  # a 5xx: unclear
                else:
                    return Verdict(outcome=Outcome.UPDATED, status=200,
                                   integration_id=integration_id, attempts=sent, changed=written,
                                   version=patched.version)
                if self.refused is not None or not attempt.retry():
                    outcome = Outcome.CONFLICT if isinstance(error, Conflict) else Outcome.FAILED
                    return Verdict.of(outcome, error, sent)
        except Stopped:
            return Verdict.stopped(error, sent)
        raise AssertionError("unreachable: every attempt returns or is retried")

    async def _gone(
        self, target: Target, exc: NotFound, sent: int, *, recreate: bool
    ) -> Verdict:
        """The integration was deleted since the listing: the target needs a create again,
        once (not when a create's 409 led here: the two would chase each other)."""
        if recreate:
            return await self.create(target)
        return Verdict.of(Outcome.CONFLICT, exc, sent,
                          note="listed, answered 409 to a create, and gone when read")

    async def delete(self, integration: Integration) -> Verdict:
        """Delete a leftover integration (the client retries a lost answer itself)."""
        try:
            await self.client.delete_integration(
                integration.project_key,
                integration.environment_key,
                integration.integration_key,
                integration.id,
                scope=self.scope,
            )
        except Stopped:
            return Verdict.stopped(None, 0)
        except NotFound:
            # Gone already (someone else deleted it since the listing): what a prune wants.
            return Verdict(outcome=Outcome.DELETED, status=404, integration_id=integration.id,
                           attempts=1)
        except HTTPStatusError as exc:
            return self.answered(exc, 1) or Verdict.of(Outcome.FAILED, exc, 1)
        except LdbulkError as exc:
            return Verdict.of(Outcome.FAILED, exc, 1)
        return Verdict(outcome=Outcome.DELETED, status=204, integration_id=integration.id,
                       attempts=1)


def _listed_as(target: Target, integration_id: str) -> Integration:
    """An integration known only by its id: no version, so no state file takes it as settled."""
    project, environment, integration_key = target.key
    return Integration(id=integration_id, project_key=project, environment_key=environment,
                       integration_key=integration_key)
