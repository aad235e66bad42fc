"""Carrying out a saved plan (:mod:`ldbulk.engine.saved`): its actions, and nothing else.

Nothing is listed or compared first: the plan was the comparison, and its reviewer approved
it. What is checked is that nobody wrote the integration since:

- an update sends its planned operations after a ``test`` of the planned version, so
  LaunchDarkly refuses the whole patch (409) if the integration moved;
- a delete reads the integration first and deletes it only at the planned version;
- a create that meets an integration (409) leaves it alone rather than converging it.

Each of those ends ``conflict`` with the code ``changed_since_plan``. An unclear answer is
settled as a run settles it: a create by the account's listing, an update by reading the
integration back (it was applied when the planned fields hold the planned values).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from ldbulk.api.models import ErrorBody, Target
from ldbulk.engine.decide import Action, after_read
from ldbulk.engine.inventory import Inventory
from ldbulk.engine.provision import concurrency_or_default
from ldbulk.engine.report import Key, Outcome, Report, TargetResult, utc_now
from ldbulk.engine.run import timed_result
from ldbulk.engine.saved import SavedAction, SavedPlan
from ldbulk.engine.update import operations
from ldbulk.engine.verdict import CHANGED_SINCE_PLAN, STOPPED, Verdict, unauthorized_reason
from ldbulk.engine.writes import UNCLEAR, Writes
from ldbulk.errors import (
    Conflict,
    HTTPStatusError,
    LdbulkError,
    NotFound,
    Stopped,
)
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope


async def carry_out(
    client: Client,
    plan: SavedPlan,
    targets: Mapping[Key, Target],
    *,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
    on_result: Callable[[TargetResult], Awaitable[None] | None] | None = None,
) -> Report:
    """Do each action of ``plan``, ``targets`` giving each create's and update's values (see
    :meth:`SavedPlan.targets`); one report row per action, in the plan's order. A plan made
    against another base URL than the client's is refused (:class:`ConfigError`).
    ``on_result`` (a plain function or a coroutine function) is handed each result as it
    settles; once ``stop`` is set, nothing more is sent and the rest is reported ``skipped``."""
    plan.check(base_url=client.base_url)
    loop = asyncio.get_running_loop()
    started, started_at = loop.time(), utc_now()
    scope = RequestScope(stop=stop)
    inventory = Inventory(client, scope)
    writes = Writes(client, scope, inventory, rotate_secrets=plan.rotate_secrets, adopt=False)
    gate = asyncio.Semaphore(concurrency_or_default(concurrency))

    async def settle(action: SavedAction) -> TargetResult:
        async with gate:
            target = targets.get(action.key)
            redact = target.config.redact if target is not None else str
            result = await timed_result(action.key, _verdict(writes, action, target), redact)
        if on_result is not None:
            maybe = on_result(result)
            if maybe is not None:
                await maybe
        return result

    try:
        async with asyncio.TaskGroup() as group:
            inventory.serve_in(group)
            tasks = [group.create_task(settle(action)) for action in plan.actions]
    finally:
        await inventory.aclose()
    return Report(
        results=tuple(task.result() for task in tasks),
        stats=scope.meter.run_stats(elapsed_s=loop.time() - started),
        started_at=started_at,
        finished_at=utc_now(),
        base_url=client.base_url,
    )


async def _verdict(writes: Writes, action: SavedAction, target: Target | None) -> Verdict:
    if writes.refused is not None:
        return Verdict.skipped("skipped", unauthorized_reason(writes.refused))
    if writes.scope.stopped:
        return Verdict.skipped("stopped", STOPPED)
    if action.action is Action.DELETE:
        return await _delete(writes, action)
    assert target is not None, "SavedPlan.targets gives every create and update its target"
    if action.action is Action.CREATE:
        return await writes.create(target)
    return await _update(writes, action, target)


async def _update(writes: Writes, action: SavedAction, target: Target) -> Verdict:
    """Send the planned patch under a test of the planned version; after an unclear answer,
    send it again: the test refuses it if the first was applied, and a read tells."""
    assert action.integration_id is not None and action.version is not None
    client, key = writes.client, action.key
    patch = operations(target, action.patch, action.version)
    fields = _fields(action)
    maybe_applied = False
    error: LdbulkError | None = None
    sent = 0
    try:
        async for attempt in client.retry_context(writes.scope):
            sent = attempt.num
            try:
                patched = await client.update_integration(
                    *key, action.integration_id, patch, scope=writes.scope
                )
            except UNCLEAR as exc:
                error, maybe_applied = exc, True
            except Conflict as exc:
                if maybe_applied:
                    return await _applied_or_conflict(writes, action, target, sent, fields)
                return _moved(action, exc, sent, "changed since the plan")
            except NotFound as exc:
                return _moved(action, exc, sent, "deleted since the plan")
            except HTTPStatusError as exc:
                answered = writes.answered(exc, sent)
                if answered is not None:
                    return answered
                error, maybe_applied = exc, True
            else:
                return Verdict(outcome=Outcome.UPDATED, status=200, attempts=sent,
                               integration_id=action.integration_id, changed=fields,
                               version=patched.version)
            if not attempt.retry():
                return Verdict.of(Outcome.FAILED, error, sent)
    except Stopped:
        return Verdict.stopped(error, sent)
    raise AssertionError("unreachable: every attempt returns or is retried")


async def _applied_or_conflict(
    writes: Writes, action: SavedAction, target: Target, sent: int, fields: tuple[str, ...]
) -> Verdict:
    """A patch of ours got no clear answer, and its resend was refused as the integration had
    moved: ours, when the planned fields now hold the planned values."""
    assert action.integration_id is not None
    try:
        current = await writes.client.get_integration(
            *action.key, action.integration_id, scope=writes.scope
        )
    except LdbulkError as exc:
        return Verdict.of(Outcome.FAILED, exc, sent, note="whether the patch was applied is "
                          "unknown; a new plan tells")
    still = set(after_read(target, current, rotate_secrets=writes.rotate_secrets).fields)
    if still & set(fields):
        return Verdict(outcome=Outcome.CONFLICT, status=409, attempts=sent,
                       integration_id=action.integration_id, error=CHANGED_SINCE_PLAN)
    return Verdict(outcome=Outcome.UPDATED, attempts=sent, integration_id=action.integration_id,
                   changed=fields, version=current.version)


async def _delete(writes: Writes, action: SavedAction) -> Verdict:
    """Delete the planned integration if it is still at the planned version."""
    assert action.integration_id is not None
    try:
        current = await writes.client.get_integration(
            *action.key, action.integration_id, scope=writes.scope
        )
    except NotFound:
        # Gone already: what the plan wanted.
        return Verdict(outcome=Outcome.DELETED, status=404,
                       integration_id=action.integration_id, attempts=1)
    except Stopped:
        return Verdict.stopped(None, 0)
    except HTTPStatusError as exc:
        return writes.answered(exc, 0) or Verdict.of(Outcome.FAILED, exc, 0)
    except LdbulkError as exc:
        return Verdict.of(Outcome.FAILED, exc, 0)
    if current.version != action.version:
        return Verdict(outcome=Outcome.CONFLICT, integration_id=action.integration_id,
                       error=CHANGED_SINCE_PLAN)
    return await writes.delete(current)


def _moved(action: SavedAction, exc: HTTPStatusError, sent: int, what: str) -> Verdict:
    """A planned write LaunchDarkly refused because the integration moved since the plan."""
    error = ErrorBody(code=CHANGED_SINCE_PLAN.code, id=exc.request_id,
                      message=f"{what}: not written; make a new plan and review it")
    return Verdict(outcome=Outcome.CONFLICT, status=exc.status, attempts=sent,
                   integration_id=action.integration_id, error=error)


def _fields(action: SavedAction) -> tuple[str, ...]:
    """The fields a planned patch writes, named as a report names them ("config.host")."""
    return tuple(path.removeprefix("/").replace("/", ".", 1) for _, path in action.patch)
