"""Converging a drifted account, and pruning it, through the library's apply and plan: the real
client against the real sandbox on a loopback port."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REDIS_MANIFEST, SandboxFactory

import ldbulk
from ldbulk.api import sansio
from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, DynamoDBConfig, RedisConfig, Target
from ldbulk.engine.plan import Action
from ldbulk.engine.provision import provision
from ldbulk.engine.report import Outcome
from ldbulk.engine.status import wait_for_stores
from ldbulk.http.client import Client
from ldbulk.sandbox import Sandbox

PASSWORD = "converge-redis-secret"
REDIS = RedisConfig(host="redis.internal", password=PASSWORD)


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    """The account of REDIS_MANIFEST: one project of three environments."""
    return await make_sandbox(projects=1, environments=3)


def manifest(text: str = REDIS_MANIFEST, password: str = PASSWORD) -> ldbulk.ManifestSet:
    return ldbulk.loads_manifest(text, env={"LD_REDIS_PASSWORD": password})


def patches(sandbox: Sandbox) -> int:
    return sandbox.stats.count(sansio.ROUTE_PATCH, 200)


async def test_apply_sends_one_patch_per_drifted_integration_and_the_next_plan_is_empty(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=2, environments=6)
    targets = [
        Target(project=f"proj-00{p}", environment=f"env-00{e}", config=REDIS, on=True,
               tags=("cache",), name=f"cache {p}/{e}")
        for p in (1, 2)
        for e in range(1, 7)
    ]
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await provision(client, targets)
        # By hand, four ways: a host, the switch, the tags, the name and a port at once.
        by_hand = {
            targets[0].key: [("/config/host", "redis-by-hand.lan")],
            targets[3].key: [("/on", False)],
            targets[7].key: [("/tags", ["cache", "extra"])],
            targets[10].key: [("/name", "renamed"), ("/config/port", "6380")],
        }
        for key, changes in by_hand.items():
            integration = sandbox.integration(*key)
            assert integration is not None
            await client.update_integration(
                *key, integration.id,
                [{"op": "replace", "path": path, "value": value} for path, value in changes],
            )
        written_by_hand = patches(sandbox)

        planned = await ldbulk.plan(client, targets)
        report = await provision(client, targets)
        again = await ldbulk.plan(client, targets)

    drifted = {item.key: item.fields for item in planned if item.action is Action.UPDATE}
    assert drifted == {
        targets[0].key: ("config.host",),
        targets[3].key: ("on",),
        targets[7].key: ("tags",),
        targets[10].key: ("config.port", "name"),
    }
    assert {item.action for item in planned if item.key not in drifted} == {Action.UNCHANGED}
    # Exactly one patch each, no create; the report names the fields, never a value.
    assert patches(sandbox) - written_by_hand == len(drifted)
    assert sandbox.stats.count(sansio.ROUTE_CREATE, 201) == len(targets)
    assert {r.key: r.changed for r in report.results if r.outcome is Outcome.UPDATED} == drifted
    assert report.counts["unchanged"] == len(targets) - len(drifted)
    assert PASSWORD not in report.dumps()
    assert {item.action for item in again} == {Action.UNCHANGED}
    stored = sandbox.integration(*targets[7].key)
    assert stored is not None and set(stored.tags) == {"cache", DEFAULT_OWNERSHIP_TAG}


async def test_prune_deletes_exactly_the_tagged_leftovers_in_scope_and_nothing_else(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=2, environments=6)
    manifests = manifest()
    dynamo = DynamoDBConfig(table_name="t", region="eu-west-1",
                            role_arn="arn:aws:iam::123456789012:role/ld", external_id="x-1")
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        ours = [DEFAULT_OWNERSHIP_TAG]
        await client.create_integration("proj-001", "env-004", REDIS, tags=ours)  # leftover
        await client.create_integration("proj-001", "env-005", REDIS, tags=["team-a"])  # theirs
        await client.create_integration("proj-002", "env-001", REDIS, tags=ours)  # other project
        await client.create_integration("proj-001", "env-006", dynamo, tags=ours)  # other key
        before = set(sandbox.integrations)

        resolution = await ldbulk.resolve(manifests, client)
        scope = ldbulk.PruneScope.of(manifests, unresolved_lines=len(resolution.unresolved))
        planned = await ldbulk.plan(client, resolution.targets, prune=scope)
        report = await ldbulk.apply(client, manifests, prune=True)

    leftover = ("proj-001", "env-004", "redis")
    assert [(i.key, i.action) for i in planned if i.target is None] == [
        (leftover, Action.DELETE),
        (("proj-001", "env-005", "redis"), Action.UNMANAGED),
        # Carrying the shared tag outside the scope: shown, never touched.
        (("proj-001", "env-006", "dynamodb"), Action.ORPHANED),
        (("proj-002", "env-001", "redis"), Action.ORPHANED),
    ]
    assert [(r.key, r.outcome) for r in report.results] == [
        (("proj-001", "env-001", "redis"), Outcome.CREATED),
        (("proj-001", "env-002", "redis"), Outcome.CREATED),
        (("proj-001", "env-003", "redis"), Outcome.CREATED),
        (leftover, Outcome.DELETED),
    ]
    assert set(sandbox.integrations) == (before - {leftover}) | {
        t.key for t in resolution.targets
    }


async def test_a_line_that_did_not_resolve_keeps_the_prune_from_deleting_anything(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=1, environments=6)
    manifests = manifest(
        REDIS_MANIFEST + "  - {project: no-such-project, environments: '*', store: cache}\n"
    )
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await client.create_integration(
            "proj-001", "env-004", REDIS, tags=[DEFAULT_OWNERSHIP_TAG]
        )
        report = await ldbulk.apply(client, manifests, prune=True)
    (kept,) = [r for r in report.results if r.environment == "env-004"]
    assert kept.outcome is Outcome.SKIPPED and kept.error is not None
    assert kept.error.code == "not_pruned" and "did not resolve" in kept.error.message
    assert sandbox.integration("proj-001", "env-004", "redis") is not None
    assert report.exit_code == 1


async def test_rotating_secrets_writes_each_password_once_and_a_rerun_again(
    sandbox: Sandbox,
) -> None:
    manifests = manifest()
    rotated = manifest(password="rotated-password")
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifests)
        unrotated = await ldbulk.apply(client, rotated)
        report = await ldbulk.apply(client, rotated, rotate_secrets=True)
    # The new password cannot be seen in a read: without rotating, nothing is written.
    assert unrotated.counts["unchanged"] == 3
    assert report.counts["updated"] == 3 and patches(sandbox) == 3
    assert {r.changed for r in report.results} == {("config.password",)}
    assert "rotated-password" not in report.dumps()


MIXED = """
version: 1
stores:
  cache: {integration: redis, config: {host: redis.internal, password: "${LD_REDIS_PASSWORD}"}}
  segments:
    integration: dynamodb
    config:
      tableName: segments
      region: eu-west-1
      roleArn: arn:aws:iam::123456789012:role/ld-segments
      externalId: "${LD_EXTERNAL_ID}"
targets:
  - {project: proj-001, environments: [env-001, env-002], store: cache}
  - {project: proj-001, environments: [env-001, env-002, env-003], store: segments}
"""


async def test_fields_a_server_masks_on_read_plan_unchanged_and_are_never_written_again(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(
        projects=1, environments=3, masked_fields={"password", "externalId", "roleArn"}
    )
    mixed = ldbulk.loads_manifest(
        MIXED, env={"LD_REDIS_PASSWORD": PASSWORD, "LD_EXTERNAL_ID": "ext-7f3e9a1234"}
    )
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        first = await ldbulk.apply(client, mixed)
        planned = await ldbulk.plan(client, (await ldbulk.resolve(mixed, client)).targets)
        before = sandbox.stats
        second = await ldbulk.apply(client, mixed)
        after = sandbox.stats
    assert {r.outcome for r in first.results} == {Outcome.CREATED}
    assert [item.action for item in planned] == [Action.UNCHANGED] * 5
    assert {item.drift.uncompared for item in planned if item.key[2] == "dynamodb"} == {
        ("roleArn", "externalId")
    }
    assert {r.outcome for r in second.results} == {Outcome.UNCHANGED}
    writes = [route for route in after.requests if not route.startswith("GET")]
    assert all(after.requests[r] == before.requests.get(r) for r in writes)


async def test_a_state_file_skips_the_reads_that_cannot_find_a_difference(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "seen.json"
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        first = await ldbulk.apply(client, manifest(), state=state)
        second = await ldbulk.apply(client, manifest(), state=state)
        # Someone moves one host: only that integration's version moved, so only it is read.
        moved = sandbox.integration("proj-001", "env-002", "redis")
        assert moved is not None
        await client.update_integration(
            "proj-001", "env-002", "redis", moved.id,
            [{"op": "replace", "path": "/config/host", "value": "by-hand.lan"}],
        )
        third = await ldbulk.apply(client, manifest(), state=state)
        # A changed wish is read again; a changed password is not one a read could see (only
        # --rotate-secrets writes it), so it is no reason to read, and not in the file at all.
        moved_back = REDIS_MANIFEST.replace("host: redis.internal", "host: redis-new.internal")
        fourth = await ldbulk.apply(client, manifest(moved_back), state=state)
        rotated = manifest(moved_back, password="another-secret")
        fifth = await ldbulk.apply(client, rotated, state=state)
    assert first.counts["created"] == 3 and first.stats.requests == 1 + 3
    assert second.counts["unchanged"] == 3 and second.stats.requests == 1
    assert third.counts["updated"] == 1 and third.stats.requests == 1 + 1 + 1
    assert fourth.counts["updated"] == 3 and fourth.stats.requests == 1 + 3 + 3
    assert fifth.counts["unchanged"] == 3 and fifth.stats.requests == 1
    text = state.read_text()
    assert PASSWORD not in text and "another-secret" not in text


async def test_a_state_file_that_is_not_one_is_refused_before_any_request(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "report.json"
    state.write_text('{"version": 2, "results": []}\n')
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        with pytest.raises(ldbulk.ConfigError, match="not an ldbulk state file"):
            await ldbulk.apply(client, manifest(), state=state)
        assert client.stats.requests == 0


async def test_waiting_for_stores_rehearsed_on_a_simulated_sync_with_one_poll_per_request(
    make_sandbox: SandboxFactory,
) -> None:
    now = [1_000_000.0]  # the sandbox's clock, moved by the test: nothing waits on real time
    world = {
        "projects": [{"key": "proj-001", "environments": [{"key": f"env-00{i}"} for i in (1, 2)]}],
        "unreachableHosts": ["redis.down.internal"],
    }
    sandbox = await make_sandbox(world=world, sync_delay_s=30.0, clock=lambda: now[0])
    down = RedisConfig(host="redis.down.internal", password=PASSWORD)
    targets = [
        Target(project="proj-001", environment="env-001", config=REDIS),
        Target(project="proj-001", environment="env-002", config=down),
    ]
    polls: list[int] = []
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await provision(client, targets)
        before = client.stats.requests
        syncing = await wait_for_stores(client, targets)
        now[0] += 31
        synced = await wait_for_stores(
            client, targets, wait_s=0.2, interval_s=0.05,
            on_poll=lambda states, _: polls.append(sum(s.available for s in states)),
        )
        requests = client.stats.requests - before
    assert [s.available for s in syncing] == [False, False]
    assert [s.available for s in synced] == [True, False]
    unreachable = synced[1].integration
    assert unreachable is not None and unreachable.status is not None
    assert unreachable.status.last_error is not None
    assert requests == 1 + len(polls)  # one listing per poll, whatever the number of targets


async def test_a_resumed_prune_never_deletes_what_the_journal_settled(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal"
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(), journal=journal)
        # Every target settled before: the resumed run tries none, yet each is still named.
        resumed = await ldbulk.apply(client, manifest(), resume=journal, prune=True)
    assert resumed.counts["created"] == 3 and resumed.counts["deleted"] == 0
    assert len(sandbox.integrations) == 3


async def test_apply_checking_stores_tries_no_target_of_a_store_that_fails(
    sandbox: Sandbox,
) -> None:
    closed = REDIS_MANIFEST.replace("host: redis.internal", "host: 127.0.0.1, port: 1")
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report = await ldbulk.apply(client, manifest(closed), check_stores=True)
    assert report.counts["skipped"] == 3 and sandbox.integrations == {}
    reasons = {r.error.code: r.error.message for r in report.results if r.error}
    assert list(reasons) == ["store_check_failed"]
    assert "connection refused" in reasons["store_check_failed"]


async def test_a_resume_converges_what_a_create_only_run_left_unread(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal"
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest())
        left = await ldbulk.apply(client, manifest(), create_only=True, journal=journal)
        resumed = await ldbulk.apply(client, manifest(), resume=journal)
    assert left.counts["exists"] == 3
    # "exists" says nothing of the config: without --create-only, each is read and compared.
    assert resumed.counts["unchanged"] == 3 and resumed.stats.requests == 1 + 3
