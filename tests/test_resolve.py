"""Resolving selectors into targets: a fake client for the rules, the sandbox for the demo."""

from __future__ import annotations

import asyncio
import gc
import textwrap
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import pytest
from conftest import TABLE_STORE

from ldbulk.api.models import Environment, RedisConfig, Target
from ldbulk.engine.report import Outcome
from ldbulk.engine.resolve import EnvironmentLister, resolve, resolve_targets
from ldbulk.errors import NotFound, Unauthorized
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import (
    ManifestError,
    ManifestSet,
    load_manifest,
    load_manifests,
    loads_manifest,
)
from ldbulk.sandbox import Sandbox

ENV = {"LD_REDIS_PASSWORD": "redis-secret", "LD_DYNAMODB_EXTERNAL_ID": "ext-secret"}
EXAMPLE = Path(__file__).parent.parent / "manifests" / "example.yaml"

HEADER = """\
version: 1
stores:
  cache:
    integration: redis
    name: "{environment} of {project}"
    on: true
    tags: [managed]
    config: {host: redis.internal, password: "${LD_REDIS_PASSWORD}"}
  cache2:
    integration: redis
    config: {host: other.internal}
""" + TABLE_STORE + "targets:\n"
FIRST_TARGET_LINE = HEADER.count("\n") + 1


def manifest(targets: str, file: str = "m.yaml") -> ManifestSet:
    body = textwrap.indent(textwrap.dedent(targets), "  ")
    return loads_manifest(HEADER + body, file=file, env=ENV)


def env(key: str, *tags: str) -> Environment:
    return Environment(id=f"id-{key}", key=key, name=key.title(), tags=tags)


class FakeClient:
    """Environments per project from a dict; unknown projects are 404s. Counts the listings."""

    def __init__(self, world: Mapping[str, Sequence[Environment]]) -> None:
        self.world = world
        self.listed: list[str] = []

    async def environments(
        self, project: str, *, scope: RequestScope | None = None
    ) -> AsyncIterator[Environment]:
        self.listed.append(project)
        if project not in self.world:
            raise NotFound(
                status=404, method="GET", path=f"/api/v2/projects/{project}/environments"
            )
        for environment in self.world[project]:
            await asyncio.sleep(0)
            yield environment


WORLD = {
    "web": [env("production", "prod", "eu"), env("staging", "dev"), env("qa", "dev", "eu")],
    "api": [env("production", "prod"), env("canary", "prod", "eu")],
    "empty": [],
}


def keys(targets: Sequence[Target]) -> list[tuple[str, str, str]]:
    return [target.key for target in targets]


def lines(error: ManifestError) -> list[str]:
    return [str(problem) for problem in error.problems]


async def test_the_fake_client_satisfies_the_protocol() -> None:
    lister: EnvironmentLister = FakeClient(WORLD)
    assert [e.key async for e in lister.environments("api")] == ["production", "canary"]


async def test_explicit_lists_are_used_as_written_without_any_request() -> None:
    client = FakeClient({})
    targets = await resolve_targets(
        manifest("- {project: nowhere, environments: [prod, ghost], store: cache}"), client
    )
    assert keys(targets) == [("nowhere", "prod", "redis"), ("nowhere", "ghost", "redis")]
    assert client.listed == []


async def test_for_a_prune_an_explicit_environment_that_does_not_exist_blocks_its_project() -> None:
    client = FakeClient(WORLD)
    resolution = await resolve(
        manifest("""\
            - {project: web, environments: [prodution, staging], store: cache}
            - {project: api, environments: [production], store: cache}
            - {project: nowhere, environments: [production], store: cache}
        """),
        client,
        check_environments=True,
    )
    # The targets stay targets (the typo's ends not_found when it is tried)...
    assert keys(resolution.targets)[0] == ("web", "prodution", "redis")
    assert sorted(client.listed) == ["api", "nowhere", "web"]
    # ... and the projects where a prune may delete nothing say why, with the line.
    assert sorted(resolution.prune_blocks) == ["nowhere", "web"]
    assert '"prodution"' in resolution.prune_blocks["web"]
    assert f"m.yaml:{FIRST_TARGET_LINE}" in resolution.prune_blocks["web"]


async def test_a_project_whose_environments_cannot_be_listed_blocks_its_prune() -> None:
    class Refusing(FakeClient):
        async def environments(
            self, project: str, *, scope: RequestScope | None = None
        ) -> AsyncIterator[Environment]:
            raise Unauthorized(status=401, method="GET", path="/api/v2/projects")
            yield env("never")

    resolution = await resolve(
        manifest("- {project: web, environments: [production], store: cache}"),
        Refusing(WORLD),
        check_environments=True,
    )
    assert len(resolution.targets) == 1 and "could not be listed" in resolution.prune_blocks["web"]


async def test_targets_carry_the_store_config_on_tags_and_rendered_name() -> None:
    (target,) = await resolve_targets(
        manifest("- {project: web, environments: [production], store: cache}"), FakeClient({})
    )
    assert target == Target(
        project="web",
        environment="production",
        config=RedisConfig(host="redis.internal", password="redis-secret"),
        on=True,
        tags=("managed",),
        name="production of web",
    )


async def test_wildcard_expands_in_the_apis_order() -> None:
    targets = await resolve_targets(
        manifest('- {project: web, environments: "*", store: cache2}'), FakeClient(WORLD)
    )
    assert keys(targets) == [
        ("web", "production", "redis"),
        ("web", "staging", "redis"),
        ("web", "qa", "redis"),
    ]
    assert [target.name for target in targets] == [None, None, None]


async def test_tag_selector_needs_every_tag() -> None:
    targets = await resolve_targets(
        manifest("- {project: web, environments: {tags: [dev, eu]}, store: table}"),
        FakeClient(WORLD),
    )
    assert keys(targets) == [("web", "qa", "dynamodb")]


async def test_each_project_is_listed_once_however_many_selectors_name_it() -> None:
    client = FakeClient(WORLD)
    targets = await resolve_targets(
        manifest(
            """\
            - {project: web, environments: {tags: [prod]}, store: cache}
            - {project: api, environments: "*", store: table}
            - {project: web, environments: {tags: [dev]}, store: cache}
            - {project: web, environments: "*", store: table}
            """
        ),
        client,
    )
    assert sorted(client.listed) == ["api", "web"]
    # Manifest order first, then the API's environment order within each selector.
    assert keys(targets) == [
        ("web", "production", "redis"),
        ("api", "production", "dynamodb"),
        ("api", "canary", "dynamodb"),
        ("web", "staging", "redis"),
        ("web", "qa", "redis"),
        ("web", "production", "dynamodb"),
        ("web", "staging", "dynamodb"),
        ("web", "qa", "dynamodb"),
    ]


async def test_listing_is_concurrent_but_bounded() -> None:
    running = 0
    peak = 0

    class Slow(FakeClient):
        async def environments(
            self, project: str, *, scope: RequestScope | None = None
        ) -> AsyncIterator[Environment]:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            yield env("production")

    projects = "".join(f'- {{project: p{i}, environments: "*", store: cache}}\n' for i in range(10))
    targets = await resolve_targets(manifest(projects), Slow({}), concurrency=3)
    assert [target.project for target in targets] == [f"p{i}" for i in range(10)]
    assert 1 < peak <= 3


async def test_duplicate_after_expansion_names_both_places() -> None:
    loaded = manifest(
        """\
        - {project: web, environments: [staging], store: cache}
        - {project: web, environments: {tags: [dev]}, store: cache2}
        """
    )
    with pytest.raises(ManifestError) as info:
        await resolve_targets(loaded, FakeClient(WORLD))
    first, second = FIRST_TARGET_LINE, FIRST_TARGET_LINE + 1
    assert lines(info.value) == [
        f"m.yaml:{second}: targets[1].environments: duplicate target web/staging/redis "
        f"(from {{tags: [dev]}}): also at m.yaml:{first} (targets[0].environments[0])"
    ]


async def test_duplicates_across_files_after_expansion(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(HEADER + '  - {project: api, environments: "*", store: table}\n')
    b.write_text(
        "version: 1\ntargets:\n  - {project: api, environments: {tags: [eu]}, store: table}\n"
    )
    loaded = load_manifests([a, b], env=ENV)
    with pytest.raises(ManifestError) as info:
        await resolve_targets(loaded, FakeClient(WORLD))
    assert lines(info.value) == [
        f"{b}:3: targets[0].environments: duplicate target api/canary/dynamodb "
        f"(from {{tags: [eu]}}): also at {a}:{FIRST_TARGET_LINE} (targets[0].environments)"
    ]


async def test_redis_and_dynamodb_on_the_same_environment_are_not_duplicates() -> None:
    targets = await resolve_targets(
        manifest(
            """\
            - {project: api, environments: "*", store: cache}
            - {project: api, environments: "*", store: table}
            """
        ),
        FakeClient(WORLD),
    )
    assert len(targets) == 4


async def test_selectors_that_match_nothing_and_missing_projects_are_all_reported() -> None:
    loaded = manifest(
        """\
        - {project: web, environments: {tags: [prod, dev]}, store: cache}
        - {project: empty, environments: "*", store: cache}
        - project: ghost
          environments: "*"
          store: cache
        - {project: api, environments: [production], store: table}
        """
    )
    client = FakeClient(WORLD)
    with pytest.raises(ManifestError) as info:
        await resolve_targets(loaded, client)
    line = FIRST_TARGET_LINE
    assert lines(info.value) == [
        f"m.yaml:{line}: targets[0].environments: no environment of project "
        '"web" carries all of the tags [prod, dev]',
        f'm.yaml:{line + 1}: targets[1].environments: project "empty" has no environments',
        f'm.yaml:{line + 2}: targets[2].project: project "ghost" not found',
    ]
    assert sorted(client.listed) == ["empty", "ghost", "web"]


async def test_other_api_errors_propagate_unchanged() -> None:
    class Denied(FakeClient):
        async def environments(
            self, project: str, *, scope: RequestScope | None = None
        ) -> AsyncIterator[Environment]:
            if project == "api":
                raise Unauthorized(status=401, method="GET", path="/api/v2/projects")
            async for environment in super().environments(project):
                yield environment

    loaded = manifest(
        """\
        - {project: ghost, environments: "*", store: cache}
        - {project: api, environments: "*", store: cache}
        """
    )
    with pytest.raises(Unauthorized):
        await resolve_targets(loaded, Denied(WORLD))


async def test_resolve_keeps_the_source_of_each_target() -> None:
    resolution = await resolve(
        manifest(
            """\
            - {project: web, environments: [qa], store: cache}
            - {project: api, environments: "*", store: cache}
            """
        ),
        FakeClient(WORLD),
    )
    resolved = resolution.resolved
    assert [(item.target.environment, item.source.path) for item in resolved] == [
        ("qa", "targets[0].environments[0]"),
        ("production", "targets[1].environments"),
        ("canary", "targets[1].environments"),
    ]
    assert {item.source.line for item in resolved} == {FIRST_TARGET_LINE, FIRST_TARGET_LINE + 1}


def generated_world(projects: int, environments: int) -> dict[str, list[Environment]]:
    """The sandbox's generated world: odd environments tagged dev, even ones prod."""
    return {
        f"proj-{p:03d}": [
            env(f"env-{e:03d}", "prod" if e % 2 == 0 else "dev") for e in range(1, environments + 1)
        ]
        for p in range(1, projects + 1)
    }


EXPECTED_EXAMPLE = [
    ("proj-001", "env-001", "redis"),
    ("proj-001", "env-002", "redis"),
    ("proj-002", "env-003", "dynamodb"),
    ("proj-002", "env-001", "redis"),
    ("proj-002", "env-002", "redis"),
    ("proj-002", "env-003", "redis"),
    ("proj-003", "env-002", "dynamodb"),
]


async def test_example_manifest_resolves_against_the_generated_world() -> None:
    targets = await resolve_targets(
        load_manifest(EXAMPLE, env=ENV), FakeClient(generated_world(3, 3))
    )
    assert keys(targets) == EXPECTED_EXAMPLE


async def test_example_manifest_resolves_against_the_real_sandbox(sandbox: Sandbox) -> None:
    loaded = load_manifest(EXAMPLE, env=ENV)
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        targets = await resolve_targets(loaded, client)
        assert keys(targets) == EXPECTED_EXAMPLE
        # Two projects have selectors that need the API; the explicit one needs nothing.
        assert client.stats.requests == 2


async def test_a_missing_project_is_one_not_found_line_and_the_others_resolve() -> None:
    loaded = manifest(
        """\
        - {project: ghost, environments: "*", store: cache}
        - {project: api, environments: "*", store: cache}
        """
    )
    resolution = await resolve(loaded, FakeClient(WORLD))
    (missing,) = resolution.unresolved
    row = missing.result()
    assert (row.project, row.environment, row.integration) == ("ghost", '"*"', "redis")
    assert row.outcome is Outcome.NOT_FOUND
    assert row.error is not None and 'project "ghost" not found' in row.error.message
    assert keys(resolution.targets) == [("api", "production", "redis"), ("api", "canary", "redis")]


async def test_a_listing_the_api_refused_is_a_row_with_the_apis_words() -> None:
    class Denied(FakeClient):
        async def environments(
            self, project: str, *, scope: RequestScope | None = None
        ) -> AsyncIterator[Environment]:
            raise Unauthorized(
                status=401, method="GET", path="/p", code="unauthorized",
                message="Invalid access token",
            )
            yield  # pragma: no cover - makes this an async generator

    loaded = manifest(
        """\
        - {project: web, environments: {tags: [prod]}, store: cache}
        - {project: api, environments: [production], store: table}
        """
    )
    resolution = await resolve(loaded, Denied(WORLD))
    (refused,) = resolution.unresolved
    row = refused.result()
    assert row.outcome is Outcome.UNAUTHORIZED and row.status == 401
    assert row.environment == "{tags: [prod]}"
    assert row.error is not None and "Invalid access token" in row.error.message
    # The explicit line needs no listing: it goes on to the engine.
    assert keys(resolution.targets) == [("api", "production", "dynamodb")]


async def test_resolution_keeps_no_listed_environment_once_it_is_done() -> None:
    """Only each environment's key (in its target) outlives resolution: a run over 100,000
    environments kept every listed one, ~35 MB, for the whole run."""
    listed: list[weakref.ref[Environment]] = []

    class Lister:
        async def environments(
            self, project: str, *, scope: RequestScope | None = None
        ) -> AsyncIterator[Environment]:
            for number in range(50):
                environment = env(f"e{number}", "prod")
                listed.append(weakref.ref(environment))
                await asyncio.sleep(0)
                yield environment

    manifests = manifest("""\
        - {project: web, environments: "*", store: cache2}
        - {project: api, environments: {tags: [prod]}, store: cache2}
        """)
    resolution = await resolve(manifests, Lister())
    gc.collect()
    assert len(resolution.targets) == 100 and len(listed) == 100
    assert not [ref for ref in listed if ref() is not None]
