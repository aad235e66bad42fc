"""What a prune deletes, and what keeps it from deleting, through the library's apply and
plan: ownership tags, environments that do not exist, consent and the most deletes allowed.
The real client against the real sandbox on a loopback port."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import TEAM_A_STORES, SandboxFactory

import ldbulk
from ldbulk.api import sansio
from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, Integration, RedisConfig
from ldbulk.engine.plan import Action
from ldbulk.engine.report import Outcome
from ldbulk.errors import PruneRefused
from ldbulk.http.client import Client
from ldbulk.sandbox import Sandbox

FIRST = """\
  - {project: proj-001, environments: [env-001, env-002], store: cache}
  - {project: proj-001, environments: [env-001, env-002], store: table}
"""
SECOND = FIRST.replace("proj-001", "proj-002")
REDIS = RedisConfig(host="redis.internal")


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    """The account of FIRST and SECOND: two projects of three environments."""
    return await make_sandbox(projects=2, environments=3)


def manifest(text: str) -> ldbulk.ManifestSet:
    return ldbulk.loads_manifest(text, env={"LD_DYNAMODB_EXTERNAL_ID": "ext-id-x1"})


def writes(sandbox: Sandbox) -> int:
    """Requests that change something: creates, patches, deletes, whatever their answer."""
    return sum(
        count
        for route, statuses in sandbox.stats.requests.items()
        if not route.startswith("GET")
        for count in statuses.values()
    )


def deletes(sandbox: Sandbox) -> int:
    return sandbox.stats.count(sansio.ROUTE_DELETE, 204)


async def test_removing_a_projects_block_deletes_what_it_made_and_only_that(
    sandbox: Sandbox,
) -> None:
    both = manifest(TEAM_A_STORES + FIRST + SECOND)
    first_only = manifest(TEAM_A_STORES + FIRST)
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, both)
        # Another team's, and the shared tag's, in the same project: never theirs.
        await client.create_integration("proj-002", "env-003", REDIS, tags=["team-b"])
        await client.create_integration("proj-002", "env-003", ldbulk.DynamoDBConfig(
            table_name="t", region="eu-west-1", role_arn="arn:aws:iam::123456789012:role/ld",
            external_id="x-1"), tags=[DEFAULT_OWNERSHIP_TAG])
        resolution = await ldbulk.resolve(first_only, client)
        scope = ldbulk.PruneScope.of(first_only, unresolved_lines=0)
        planned = await ldbulk.plan(client, resolution.targets, prune=scope)
        report = await ldbulk.apply(client, first_only, prune=True)
    removed = {(p, e, i) for p in ("proj-002",) for e in ("env-001", "env-002")
               for i in ("redis", "dynamodb")}
    assert {i.key for i in planned if i.action is Action.DELETE} == removed
    assert {r.key for r in report.results if r.outcome is Outcome.DELETED} == removed
    assert deletes(sandbox) == 4
    assert set(sandbox.integrations) == {t.key for t in resolution.targets} | {
        ("proj-002", "env-003", "redis"), ("proj-002", "env-003", "dynamodb")
    }


def typo_world() -> dict[str, object]:
    return {"projects": [{"key": "web", "environments": [
        {"key": "production"}, {"key": "staging"}, {"key": "qa"}]}]}


TYPO = """
version: 1
stores:
  cache: {integration: redis, config: {host: redis.internal}}
targets:
  - {project: web, environments: [prodution, staging], store: cache}
"""


async def test_a_typo_in_an_explicit_list_deletes_nothing_in_its_project(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(world=typo_world())
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        for environment in ("production", "staging", "qa"):
            await client.create_integration("web", environment, REDIS,
                                            tags=[DEFAULT_OWNERSHIP_TAG])
        manifests = ldbulk.loads_manifest(TYPO)
        resolution = await ldbulk.resolve(manifests, client, check_environments=True)
        scope = ldbulk.PruneScope.of(manifests, unresolved_lines=0,
                                     blocked_projects=resolution.prune_blocks)
        planned = await ldbulk.plan(client, resolution.targets, prune=scope)
        report = await ldbulk.apply(client, manifests, prune=True)
    assert deletes(sandbox) == 0 and len(sandbox.integrations) == 3
    assert not [i for i in planned if i.action is Action.DELETE]
    rows = {r.environment: r for r in report.results}
    assert rows["prodution"].outcome is Outcome.NOT_FOUND
    for kept in ("production", "qa"):
        error = rows[kept].error
        assert rows[kept].outcome is Outcome.SKIPPED and error is not None
        assert error.code == "not_pruned" and '"prodution"' in error.message
    assert report.exit_code == 1


async def test_refused_consent_writes_nothing_at_all_and_leaves_no_journal(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    asked: list[list[tuple[str, str, str]]] = []

    async def no(doomed: Sequence[Integration]) -> bool:
        asked.append([(i.project_key, i.environment_key, i.integration_key) for i in doomed])
        return False

    journal = tmp_path / "run.journal"
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST + SECOND))
        before = writes(sandbox)
        # One more target to create: a refusal must not create it either.
        grown = TEAM_A_STORES + FIRST.replace("env-002]", "env-002, env-003]")
        with pytest.raises(PruneRefused, match="4 integrations without consent") as refused:
            await ldbulk.apply(client, manifest(grown), prune=True, consent=no,
                               journal=journal)
    assert writes(sandbox) == before
    assert len(asked) == 1 and len(asked[0]) == 4
    assert {key[0] for key in asked[0]} == {"proj-002"}
    assert len(refused.value.deletes) == 4
    assert not journal.exists()


async def test_consent_given_deletes_exactly_what_was_shown(
    sandbox: Sandbox,
) -> None:
    shown: list[str] = []

    async def yes(doomed: Sequence[Integration]) -> bool:
        shown.extend(i.id for i in doomed)
        return True

    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST + SECOND))
        report = await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST), prune=True,
                                    consent=yes)
    assert sorted(r.integration_id or "" for r in report.results
                  if r.outcome is Outcome.DELETED) == sorted(shown)
    assert len(shown) == 4 and deletes(sandbox) == 4


async def test_consent_is_not_asked_when_nothing_would_be_deleted(
    sandbox: Sandbox,
) -> None:

    async def never(doomed: Sequence[Integration]) -> bool:
        raise AssertionError("asked with nothing to delete")

    async with Client(sandbox.token, base_url=sandbox.url) as client:
        report = await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST), prune=True,
                                    consent=never, max_deletes=0)
    assert report.counts["created"] == 4 and report.exit_code == 0


async def test_more_deletes_than_allowed_are_refused_before_any_write(
    sandbox: Sandbox,
) -> None:
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST + SECOND))
        before = writes(sandbox)
        with pytest.raises(PruneRefused, match="more than the 3 allowed"):
            await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST), prune=True,
                               max_deletes=3)
        assert writes(sandbox) == before
        report = await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST), prune=True,
                                    max_deletes=4)
    assert report.counts["deleted"] == 4


async def test_a_refused_listing_is_every_targets_outcome_and_nothing_is_deleted(
    sandbox: Sandbox,
) -> None:
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST + SECOND))
    async with Client("api-wrong", base_url=sandbox.url) as client:
        report = await ldbulk.apply(client, manifest(TEAM_A_STORES + FIRST), prune=True)
    assert {r.outcome for r in report.results} == {Outcome.UNAUTHORIZED}
    assert deletes(sandbox) == 0 and len(sandbox.integrations) == 8
