"""Converging existing integrations: the patch decided per integration, and the engine's
writes when the answer to a patch is clear, lost, or refused (canned answers, in memory).
Whole runs against the sandbox are in test_converge_sandbox.py."""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from ldbulk.api.converter import converter
from ldbulk.api.models import Integration, RedisConfig, Target
from ldbulk.engine.provision import Provisioner
from ldbulk.engine.prune import PruneScope
from ldbulk.engine.report import Outcome
from ldbulk.engine.update import update_for
from ldbulk.errors import TransportError
from ldbulk.http.client import Client
from ldbulk.http.transport import MemoryTransport
from ldbulk.manifest import loads_manifest

LIST = "/api/v2/integration-capabilities/big-segment-store"
ONE = f"{LIST}/web/prod/redis/id-1"
CREATE = re.compile(rf"{re.escape(LIST)}/web/prod/redis$")
PASSWORD = "s3cret-password"
CONFIG = RedisConfig(host="redis.internal", password=PASSWORD)
TARGET = Target(project="web", environment="prod", config=CONFIG, on=True, tags=("team-a",))


def read_back(
    target: Target = TARGET, *, version: int = 3, **changes: Any
) -> dict[str, Any]:
    """An integration as LaunchDarkly answers a read by id: the password redacted."""
    config = {**target.config.to_api(), "password": "********"}
    document = {
        "_id": "id-1",
        "integrationKey": "redis",
        "projectKey": target.project,
        "environmentKey": target.environment,
        "on": target.on,
        "tags": list(target.written_tags),
        "name": target.name or "",
        "version": version,
        "config": config,
        "_links": {},
    }
    for field, value in changes.items():
        if field in config:
            config[field] = value
        else:
            document[field] = value
    return document


def integration(**changes: Any) -> Integration:
    return converter.structure(read_back(**changes), Integration)


def patches(mocked: MemoryTransport) -> list[list[dict[str, Any]]]:
    return [json.loads(r.body or b"") for r in mocked.requests if r.method == "PATCH"]


async def converge(client: Client, mocked: MemoryTransport, **options: bool) -> Any:
    mocked.add("GET", LIST, json={"items": [{k: v for k, v in read_back().items()
                                             if k != "config"}], "_links": {}})
    async with client:
        report = await Provisioner(client, list_first=True, **options).run([TARGET])
    (result,) = report.results
    return result


# -- the patch decided ------------------------------------------------------------------------


def test_an_integration_as_the_manifest_says_needs_no_patch() -> None:
    assert update_for(TARGET, integration()) is None


def test_the_patch_tests_the_version_read_and_writes_only_what_differs() -> None:
    update = update_for(TARGET, integration(host="redis-moved.lan", on=False))
    assert update is not None
    assert update.fields == ("config.host", "on")
    assert update.operations == (
        {"op": "test", "path": "/version", "value": 3},
        {"op": "replace", "path": "/config/host", "value": "redis.internal"},
        {"op": "replace", "path": "/on", "value": True},
    )


def test_a_missing_ownership_tag_is_no_drift_but_comes_with_any_write() -> None:
    made_by_hand = integration(tags=["team-a"])
    assert update_for(TARGET, made_by_hand) is None
    update = update_for(TARGET, integration(tags=["team-a"], port="6380"))
    assert update is not None and update.fields == ("config.port", "tags")
    assert update.operations[-1] == {
        "op": "replace", "path": "/tags", "value": ["team-a", "managed-by-ldbulk"]
    }


def test_secrets_are_written_only_when_rotating_and_never_shown() -> None:
    assert update_for(TARGET, integration()) is None
    update = update_for(TARGET, integration(), rotate_secrets=True)
    assert update is not None and update.fields == ("config.password",)
    assert {"op": "replace", "path": "/config/password", "value": PASSWORD} in update.operations
    assert PASSWORD not in repr(update)


def test_a_field_launchdarkly_did_not_return_is_added_not_replaced() -> None:
    document = read_back()
    del document["config"]["username"]
    current = converter.structure(document, Integration)
    wanted = attrs.evolve(TARGET, config=attrs.evolve(CONFIG, username="ld"))
    update = update_for(wanted, current)
    assert update is not None
    assert {"op": "add", "path": "/config/username", "value": "ld"} in update.operations


# -- the engine's writes ----------------------------------------------------------------------


async def test_unchanged_is_one_read_and_no_write(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back())
    result = await converge(client, mocked)
    assert result.outcome is Outcome.UNCHANGED and patches(mocked) == []


async def test_drift_is_one_patch_and_the_report_names_the_fields(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    mocked.add("PATCH", ONE, json=read_back(version=4))
    result = await converge(client, mocked)
    assert (result.outcome, result.status, result.changed) == (
        Outcome.UPDATED, 200, ("config.host",)
    )
    assert len(patches(mocked)) == 1


async def test_a_lost_patch_that_was_applied_is_settled_by_reading_back(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    mocked.add("PATCH", ONE, error=TransportError)
    mocked.add("GET", ONE, json=read_back(version=4))  # it was applied
    result = await converge(client, mocked)
    assert (result.outcome, result.changed, result.attempts) == (
        Outcome.UPDATED, ("config.host",), 1
    )
    assert len(patches(mocked)) == 1


async def test_a_lost_patch_that_was_not_applied_is_sent_again(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    mocked.add("PATCH", ONE, error=TransportError)
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    mocked.add("PATCH", ONE, json=read_back(version=4))
    result = await converge(client, mocked)
    assert (result.outcome, result.attempts) == (Outcome.UPDATED, 2)
    assert len(patches(mocked)) == 2


async def test_a_concurrent_change_is_read_again_and_patched_over_the_new_version(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    conflict = {"code": "optimistic_locking_error", "message": "test failed", "id": "r"}
    mocked.add("PATCH", ONE, status=409, json=conflict)
    mocked.add("GET", ONE, json=read_back(version=5, host="redis-moved.lan", on=False))
    mocked.add("PATCH", ONE, json=read_back(version=6))
    result = await converge(client, mocked)
    assert result.outcome is Outcome.UPDATED and result.changed == ("config.host", "on")
    first, second = patches(mocked)
    assert first[0]["value"] == 3 and second[0]["value"] == 5


async def test_an_integration_deleted_since_the_listing_is_created_again(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, status=404, json={"code": "not_found", "message": "gone", "id": "r"})
    mocked.add("POST", CREATE, status=201, json=read_back())
    result = await converge(client, mocked)
    assert result.outcome is Outcome.CREATED


async def test_a_conflicting_patch_is_not_taken_for_ours_when_the_reread_matches(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    conflict = {"code": "optimistic_locking_error", "message": "test failed", "id": "r"}
    mocked.add("PATCH", ONE, status=409, json=conflict)
    mocked.add("GET", ONE, json=read_back(version=5))  # someone else moved it back
    result = await converge(client, mocked)
    assert (result.outcome, result.changed) == (Outcome.UNCHANGED, ())


async def test_a_patch_answered_404_creates_the_integration_again(
    client: Client, mocked: MemoryTransport
) -> None:
    mocked.add("GET", ONE, json=read_back(host="redis-moved.lan"))
    gone = {"code": "not_found", "message": "gone", "id": "r"}
    mocked.add("PATCH", ONE, status=404, json=gone)
    mocked.add("POST", CREATE, status=201, json=read_back())
    result = await converge(client, mocked)
    assert result.outcome is Outcome.CREATED


async def test_a_create_and_a_read_that_contradict_each_other_end_without_a_loop(
    client: Client, mocked: MemoryTransport
) -> None:
    # Listed, then gone when read, then a create answers 409 and the listing shows it again.
    mocked.add("GET", ONE, status=404, json={"code": "not_found", "message": "gone", "id": "r"},
               repeat=True)
    mocked.add("POST", CREATE, status=409, json={"code": "conflict", "message": "c", "id": "r"},
               repeat=True)
    mocked.add("GET", LIST, json={"items": [{k: v for k, v in read_back().items()
                                             if k != "config"}], "_links": {}}, repeat=True)
    async with client:
        report = await Provisioner(client, list_first=True).run([TARGET])
    (result,) = report.results
    assert result.outcome is Outcome.CONFLICT
    assert len(mocked.requests) < 10


async def test_create_only_reads_nothing_by_id(client: Client, mocked: MemoryTransport) -> None:
    result = await converge(client, mocked, create_only=True)
    assert result.outcome is Outcome.EXISTS and len(mocked.requests) == 1


# -- what a prune may delete ------------------------------------------------------------------

MANIFEST = """
version: 1
defaults: {ownershipTag: ours}
stores:
  cache: {integration: redis, config: {host: redis.internal}}
targets:
  - {project: web, environments: [prod], store: cache}
"""


def found(project: str, environment: str, key: str = "redis", *tags: str) -> Integration:
    document = read_back(tags=list(tags))
    document.update(projectKey=project, environmentKey=environment, integrationKey=key,
                    _id=f"{project}-{environment}-{key}")
    return converter.structure(document, Integration)


SHARED_TAG_MANIFEST = MANIFEST.replace("defaults: {ownershipTag: ours}\n", "")


def test_with_the_shared_tag_a_prune_deletes_only_tagged_integrations_in_its_scope() -> None:
    scope = PruneScope.of(loads_manifest(SHARED_TAG_MANIFEST), unresolved_lines=0)
    named = {("web", "prod", "redis")}
    existing = [
        found("web", "prod", "redis", "managed-by-ldbulk"),  # named by the target
        found("web", "qa", "redis", "managed-by-ldbulk"),  # in scope, tagged, unnamed: deleted
        found("web", "dev", "redis", "team-a"),  # in scope, untagged: unmanaged
        found("web", "qa", "dynamodb", "managed-by-ldbulk"),  # other key: orphaned
        found("api", "qa", "redis", "managed-by-ldbulk"),  # another project: orphaned
        found("api", "dev", "redis", "team-a"),  # another manifest's, out of scope: not listed
    ]
    pruning = scope.decide(existing, named)
    assert [i.id for i in pruning.deletes] == ["web-qa-redis"]
    assert [i.id for i in pruning.unmanaged] == ["web-dev-redis"]
    assert [i.id for i in pruning.orphaned] == ["api-qa-redis", "web-qa-dynamodb"]
    assert pruning.kept == ()


def test_a_tag_of_their_own_makes_every_integration_carrying_it_theirs_in_any_project() -> None:
    scope = PruneScope.of(loads_manifest(MANIFEST), unresolved_lines=0)
    named = {("web", "prod", "redis")}
    existing = [
        found("web", "prod", "redis", "ours"),  # named by the target
        found("web", "qa", "redis", "ours"),  # in the lines' scope, tagged, unnamed
        found("web", "qa", "dynamodb", "ours"),  # the other integration key: theirs too
        found("api", "qa", "redis", "ours"),  # a project whose block was removed: theirs too
        found("web", "dev", "redis", "team-a"),  # in the lines' scope, not theirs: unmanaged
        found("web", "stage", "redis", "managed-by-ldbulk"),  # the shared tag: unmanaged
        found("api", "dev", "redis", "managed-by-ldbulk"),  # the shared tag elsewhere: ignored
    ]
    pruning = scope.decide(existing, named)
    assert [i.id for i in pruning.deletes] == ["api-qa-redis", "web-qa-dynamodb", "web-qa-redis"]
    assert [i.id for i in pruning.unmanaged] == ["web-dev-redis", "web-stage-redis"]
    assert pruning.orphaned == ()


def test_a_blocked_project_keeps_its_integrations_with_the_reason_and_only_them() -> None:
    scope = PruneScope.of(loads_manifest(MANIFEST), unresolved_lines=0,
                          blocked_projects={"web": "a typo"})
    pruning = scope.decide(
        [found("web", "qa", "redis", "ours"), found("api", "qa", "redis", "ours")], set()
    )
    assert [i.id for i in pruning.deletes] == ["api-qa-redis"]
    assert [(i.id, why) for i, why in pruning.kept] == [("web-qa-redis", "a typo")]


def test_a_line_that_did_not_resolve_blocks_every_delete() -> None:
    scope = PruneScope.of(loads_manifest(MANIFEST), unresolved_lines=1)
    assert scope.blocked is not None and "did not resolve" in scope.blocked
