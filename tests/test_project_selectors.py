"""Lines over several projects: ``project: "*"``, ``projects: [a, b]`` and ``projects: {tags:
[...]}``, from the manifest's schema through resolution against the sandbox to export (at the
command line: test_cli_project_selectors.py)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_manifest import STRUCTURES, _paths, check_outcome

from ldbulk.api import sansio
from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, Environment, Project
from ldbulk.engine.export import export
from ldbulk.engine.prune import PruneScope
from ldbulk.engine.report import Outcome
from ldbulk.engine.resolve import resolve
from ldbulk.errors import Unauthorized
from ldbulk.http.client import Client
from ldbulk.http.scope import RequestScope
from ldbulk.manifest import (
    AllProjects,
    ManifestError,
    ManifestSet,
    TaggedProjects,
    loads_manifest,
)
from ldbulk.sandbox import Sandbox

SandboxFactory = Callable[..., Awaitable[Sandbox]]

WORLD = {
    "projects": [
        {
            "key": "web",
            "tags": ["frontend", "eu"],
            "environments": [{"key": "production", "tags": ["prod"]}, {"key": "staging"}],
        },
        {
            "key": "api",
            "tags": ["backend", "eu"],
            "environments": [{"key": "production", "tags": ["prod"]}, {"key": "staging"}],
        },
        {
            "key": "batch",
            "tags": ["backend"],
            "environments": [{"key": "production", "tags": ["prod"]}],
        },
    ]
}

STORES = """\
version: 1
stores:
  cache: {integration: redis, config: {host: redis.internal}}
  table:
    integration: dynamodb
    config:
      tableName: segments
      region: eu-west-1
      roleArn: arn:aws:iam::123456789012:role/ld
      externalId: "${LD_DYNAMODB_EXTERNAL_ID}"
targets:
"""
TARGETS_LINE = STORES.count("\n") + 1  # the line of the first target
ENV = {"LD_DYNAMODB_EXTERNAL_ID": "ext-id-7d2c"}


def manifest(targets: str) -> ManifestSet:
    body = textwrap.indent(textwrap.dedent(targets), "  ")
    return loads_manifest(STORES + body, file="m.yaml", env=ENV)


def problems(targets: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        manifest(targets)
    return [str(problem) for problem in info.value.problems]


# -- the manifest ------------------------------------------------------------------------


def test_the_three_forms_are_read_each_with_its_source() -> None:
    loaded = manifest("""\
        - {project: "*", environments: [production], store: cache}
        - projects: [web, api]
          environments: "*"
          store: table
        - {projects: {tags: [backend, backend, eu]}, environments: {tags: [prod]}, store: table}
        """)
    every, web, api, tagged = loaded.selectors
    assert every.project == ""
    assert every.projects == AllProjects(source=every.project_source)
    assert str(every.project_source) == f"m.yaml:{TARGETS_LINE} (targets[0].project)"
    # A list is one line per project, each at its item.
    assert (web.project, web.projects, api.project, api.projects) == ("web", None, "api", None)
    assert str(web.project_source) == f"m.yaml:{TARGETS_LINE + 1} (targets[1].projects[0])"
    assert str(api.project_source) == f"m.yaml:{TARGETS_LINE + 1} (targets[1].projects[1])"
    assert web.source == api.source
    assert tagged.projects == TaggedProjects(tags=("backend", "eu"), source=tagged.project_source)
    assert tagged.describe_projects() == "{tags: [backend, eu]}"
    assert web.describe_projects() == '"web"'


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            '{project: "*", projects: [web], environments: "*", store: cache}',
            'targets[0]: "project" and "projects" exclude each other: write one of them',
        ),
        (
            '{projects: "*", environments: "*", store: cache}',
            "targets[0].projects: must be a list of project keys or {tags: [...]} (every "
            'project: project: "*"), got a string',
        ),
        (
            '{projects: [web, "*"], environments: "*", store: cache}',
            'targets[0].projects[1]: every project is written project: "*", not in a list',
        ),
        (
            "{projects: [], environments: '*', store: cache}",
            "targets[0].projects: must list at least one project",
        ),
        (
            "{projects: {tags: []}, environments: '*', store: cache}",
            "targets[0].projects.tags: must list at least one tag",
        ),
        (
            "{projects: [web, api, web], environments: [production], store: cache}",
            'targets[0].projects[2]: project "web" is listed twice: also at m.yaml:'
            f"{TARGETS_LINE} (targets[0].projects[0])",
        ),
        (
            "{project: [web, api], environments: '*', store: cache}",
            "targets[0].project: must be a string, got a list (several projects are written "
            "projects: [...] or projects: {tags: [...]})",
        ),
        (
            "{projets: [web], environments: '*', store: cache}",
            'targets[0].projets: unknown key (did you mean "projects"?)',
        ),
        (
            "{projects: {tag: [eu]}, environments: '*', store: cache}",
            'targets[0].projects.tag: unknown key (did you mean "tags"?)',
        ),
        (
            "{projects: ['-web'], environments: '*', store: cache}",
            'targets[0].projects[0]: "-web" is not a valid project key',
        ),
    ],
)
def test_bad_project_selectors_are_problems_at_their_line(target: str, message: str) -> None:
    found = problems(f"- {target}\n")
    assert any(problem.startswith(f"m.yaml:{TARGETS_LINE}: {message}") for problem in found), (
        found
    )


def test_a_line_without_project_or_projects_misses_project() -> None:
    assert problems("- {environments: '*', store: cache}\n") == [
        f'm.yaml:{TARGETS_LINE}: targets[0]: missing required key "project" (or "projects")'
    ]


def test_two_lines_naming_one_project_explicitly_are_duplicates_when_read() -> None:
    found = problems("""\
        - {projects: [web, api], environments: [production], store: cache}
        - {project: api, environments: [production, staging], store: cache}
        """)
    assert found == [
        f"m.yaml:{TARGETS_LINE + 1}: targets[1].environments[0]: duplicate target "
        f"api/production/redis: also at m.yaml:{TARGETS_LINE} (targets[0].environments[0])"
    ]


SELECTOR_LINES = """\
  - {project: "*", environments: [production], store: cache}
  - {projects: [web, api], environments: "*", store: table}
  - {projects: {tags: [backend]}, environments: {tags: [prod]}, store: cache}
"""


@settings(max_examples=200, deadline=None)
@given(data=st.data(), as_json=st.booleans())
def test_project_selectors_with_one_value_replaced_end_in_a_manifest_or_problems(
    data: st.DataObject, as_json: bool
) -> None:
    document = yaml.safe_load(STORES + SELECTOR_LINES)
    path = data.draw(st.sampled_from(_paths(document)))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(STRUCTURES)
    text = json.dumps(document) if as_json else yaml.safe_dump(document, allow_unicode=True)
    check_outcome(text, "fuzz.json" if as_json else "fuzz.yaml")


def test_the_shipped_schema_takes_the_three_forms_and_refuses_both_keys() -> None:
    import jsonschema

    schema = json.loads(
        (Path(__file__).parent.parent / "ldbulk/manifest/manifest.schema.json").read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    base: dict[str, Any] = {"version": 1, "stores": {"c": {"integration": "redis",
                                                           "config": {"host": "h"}}}}
    good = [{"project": "*"}, {"projects": ["a", "b"]}, {"projects": {"tags": ["t"]}}]
    for selector in good:
        document = base | {"targets": [selector | {"environments": "*", "store": "c"}]}
        assert not list(validator.iter_errors(document)), selector
    both = {"project": "a", "projects": ["b"], "environments": "*", "store": "c"}
    assert list(validator.iter_errors(base | {"targets": [both]}))


# -- resolution ------------------------------------------------------------------------


async def resolved(make_sandbox: SandboxFactory, targets: str) -> tuple[Any, Sandbox]:
    sandbox = await make_sandbox(world=WORLD)
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        return await resolve(manifest(targets), client), sandbox


async def test_every_project_and_tagged_projects_resolve_in_the_accounts_order(
    make_sandbox: SandboxFactory,
) -> None:
    resolution, sandbox = await resolved(make_sandbox, """\
        - {project: "*", environments: {tags: [prod]}, store: cache}
        - {projects: {tags: [backend]}, environments: "*", store: table}
        """)
    assert resolution.unresolved == []
    assert [target.key for target in resolution.targets] == [
        ("web", "production", "redis"),
        ("api", "production", "redis"),
        ("batch", "production", "redis"),
        ("api", "production", "dynamodb"),
        ("api", "staging", "dynamodb"),
        ("batch", "production", "dynamodb"),
    ]
    sources = {str(entry.source) for entry in resolution.resolved}
    assert sources == {
        f"m.yaml:{TARGETS_LINE} (targets[0].environments)",
        f"m.yaml:{TARGETS_LINE + 1} (targets[1].environments)",
    }
    # The account's projects listed once for both lines.
    assert sandbox.stats.count(sansio.ROUTE_PROJECTS, 200) == 1
    # A prune counts each project a line matched as the line's.
    scope = PruneScope.of(manifest("- {project: web, environments: [qa], store: cache}\n"),
                          unresolved_lines=0, selectors=resolution.selectors)
    assert set(scope.owners) == {
        ("web", "redis"), ("api", "redis"), ("batch", "redis"),
        ("api", "dynamodb"), ("batch", "dynamodb"),
    }  # fmt: skip


async def test_a_project_matched_by_two_lines_is_a_duplicate_target(
    make_sandbox: SandboxFactory,
) -> None:
    resolution, _ = await resolved(make_sandbox, """\
        - {projects: {tags: [eu]}, environments: [production], store: cache}
        - {project: "*", environments: "*", store: cache}
        """)
    duplicates = [entry for entry in resolution.unresolved if entry.outcome is Outcome.SKIPPED]
    assert [(entry.project, entry.environment) for entry in duplicates] == [
        ("web", "production"),
        ("api", "production"),
    ]
    assert str(duplicates[0].problem) == (
        f"m.yaml:{TARGETS_LINE + 1}: targets[1].environments: duplicate target "
        'web/production/redis (from projects "*", environments "*"): also at '
        f"m.yaml:{TARGETS_LINE} (targets[0].environments[0])"
    )
    # Everything else of the second line is a target.
    assert [target.key for target in resolution.targets][2:] == [
        ("web", "staging", "redis"),
        ("api", "staging", "redis"),
        ("batch", "production", "redis"),
    ]


async def test_a_project_selector_matching_nothing_is_an_unresolved_line(
    make_sandbox: SandboxFactory,
) -> None:
    resolution, _ = await resolved(make_sandbox, """\
        - {projects: {tags: [backend, frontend]}, environments: "*", store: cache}
        - {projects: [batch], environments: "*", store: cache}
        """)
    (nothing,) = resolution.unresolved
    assert (nothing.project, nothing.environment, nothing.outcome) == (
        "{tags: [backend, frontend]}", '"*"', Outcome.NOT_FOUND,
    )  # fmt: skip
    assert str(nothing.problem) == (
        f"m.yaml:{TARGETS_LINE}: targets[0].projects: no project carries all of the tags "
        "[backend, frontend]"
    )
    assert nothing.result().error is not None
    assert [target.key for target in resolution.targets] == [("batch", "production", "redis")]


class RefusingProjects:
    """A client whose projects cannot be listed (401) and whose environments are asked for
    only by lines naming their project."""

    def __init__(self) -> None:
        self.listings = 0

    async def projects(self, *, scope: RequestScope | None = None) -> AsyncIterator[Project]:
        self.listings += 1
        raise Unauthorized(status=401, method="GET", path="/api/v2/projects")
        yield  # pragma: no cover - an async generator

    async def environments(
        self, project: str, *, scope: RequestScope | None = None
    ) -> AsyncIterator[Environment]:
        yield Environment(id="id", key="production", name="Production")


async def test_projects_that_cannot_be_listed_end_their_lines_only() -> None:
    client = RefusingProjects()
    resolution = await resolve(manifest("""\
        - {project: "*", environments: "*", store: cache}
        - {projects: {tags: [eu]}, environments: "*", store: table}
        - {project: web, environments: "*", store: cache}
        """), client)
    assert client.listings == 1
    first, second = resolution.unresolved
    assert (first.project, first.outcome) == ('"*"', Outcome.UNAUTHORIZED)
    assert (second.project, second.outcome) == ("{tags: [eu]}", Outcome.UNAUTHORIZED)
    assert first.problem.message == "could not list the projects of the account"
    assert isinstance(first.error, Unauthorized)
    assert [target.key for target in resolution.targets] == [("web", "production", "redis")]


async def test_lines_without_project_selectors_never_list_the_projects(
    make_sandbox: SandboxFactory,
) -> None:
    resolution, sandbox = await resolved(
        make_sandbox, "- {projects: [web, api], environments: '*', store: cache}\n"
    )
    assert len(resolution.targets) == 4
    assert sandbox.stats.count(sansio.ROUTE_PROJECTS, 200) == 0


# -- export ------------------------------------------------------------------------------


def integration(project: str, environment: str, *, owned: bool = True) -> dict[str, Any]:
    return {
        "projectKey": project, "environmentKey": environment, "integrationKey": "redis",
        "config": {"host": "cache.internal"}, "on": True,
        "tags": [DEFAULT_OWNERSHIP_TAG] if owned else [],
    }  # fmt: skip


async def test_export_writes_every_project_once_and_names_what_was_made_by_hand(
    make_sandbox: SandboxFactory,
) -> None:
    everywhere = [
        integration(project["key"], environment["key"], owned=project["key"] != "api")
        for project in WORLD["projects"]
        for environment in project["environments"]
    ]
    sandbox = await make_sandbox(world=WORLD | {"integrations": everywhere})
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        whole = await export(client)
        some = await export(client, projects=["web", "api"])
    assert whole.document["targets"] == [
        {"project": "*", "environments": "*", "store": "cache"}
    ]
    text = whole.to_yaml()
    assert '- project: "*"\n  environments: "*"\n  store: cache\n' in text
    assert "tag: api/production, api/staging." in text.replace("\n# ", " ")
    # Only a whole account's projects are all of them; an export of some names each.
    assert [target["project"] for target in some.document["targets"]] == ["api", "web"]
    assert sandbox.stats.count(sansio.ROUTE_PROJECTS, 200) == 1
    loaded = loads_manifest(text, env={"LD_REDIS_PASSWORD_CACHE": "x"})
    assert loaded.selectors[0].projects is not None


async def test_projects_with_different_targets_are_each_named(
    make_sandbox: SandboxFactory,
) -> None:
    account = WORLD | {"integrations": [integration("web", "production"),
                                        integration("api", "staging")]}
    sandbox = await make_sandbox(world=account)
    async with Client(sandbox.token, base_url=sandbox.url) as client:
        result = await export(client)
    assert [(t["project"], t["environments"]) for t in result.document["targets"]] == [
        ("api", ["staging"]), ("web", ["production"]),
    ]  # fmt: skip
    # Not alike: the account's projects are not even listed.
    assert sandbox.stats.count(sansio.ROUTE_PROJECTS, 200) == 0
