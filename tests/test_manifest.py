"""The manifest loader: each rule with its exact message and line; secrets; hostile input."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TABLE_STORE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldbulk import manifest as manifest_module
from ldbulk.api.models import DynamoDBConfig, RedisConfig
from ldbulk.errors import ConfigError, LdbulkError
from ldbulk.manifest import (
    AllEnvironments,
    EnvironmentKeys,
    ManifestError,
    ManifestSet,
    Problem,
    TaggedEnvironments,
    load_manifest,
    load_manifests,
    loads_manifest,
    nodes,
)
from ldbulk.manifest.nodes import quote
from ldbulk.manifest.references import (
    CREDENTIAL_VARIABLES,
    credential_pattern,
    manifest_allow_refusal,
)

REDIS_SECRET = "hunter2-redis-secret"
EXTERNAL_SECRET = "ext-id-9f8e7d6c"
ENV = {"LD_REDIS_PASSWORD": REDIS_SECRET, "LD_DYNAMODB_EXTERNAL_ID": EXTERNAL_SECRET}
MANIFESTS = Path(__file__).parent.parent / "manifests"

# The issue's example, line for line (with the store name the targets use).
ISSUE_EXAMPLE = """\
version: 1
defaults:                 # optional, merged into every store
  on: true
  tags: [managed-by-ldbulk]
stores:
  redis-east:
    integration: redis
    name: "Big segments for {project}/{environment}"   # optional template
    config:                                            # the API's formVariables names
      host: redis.internal.example.com
      port: 6379
      username: launchdarkly
      password: ${LD_REDIS_PASSWORD}                   # from the environment
      tlsEnabled: true
  dynamo-prod:
    integration: dynamodb
    config:
      tableName: ld-big-segments
      region: us-east-1
      roleArn: arn:aws:iam::123456789012:role/launchdarkly-big-segments
      externalId: ${LD_DYNAMODB_EXTERNAL_ID}
targets:
  - project: web
    environments: [production, staging]
    store: redis-east
  - project: mobile
    environments: "*"           # every environment of the project, listed through the API
    store: dynamo-prod
  - project: data
    environments: {tags: [prod]}   # environments carrying all these tags
    store: dynamo-prod
"""

STORES = """\
version: 1
stores:
  cache:
    integration: redis
    config:
      host: redis.internal
      password: ${LD_REDIS_PASSWORD}
""" + TABLE_STORE


def load(text: str, **kwargs: Any) -> ManifestSet:
    kwargs.setdefault("file", "m.yaml")
    kwargs.setdefault("env", ENV)
    return loads_manifest(textwrap.dedent(text), **kwargs)


def problems(text: str | bytes, **kwargs: Any) -> list[str]:
    kwargs.setdefault("file", "m.yaml")
    kwargs.setdefault("env", ENV)
    if isinstance(text, str):
        text = textwrap.dedent(text)
    with pytest.raises(ManifestError) as info:
        loads_manifest(text, **kwargs)
    return [str(problem) for problem in info.value.problems]


def with_targets(targets: str, stores: str = STORES) -> str:
    return stores + "targets:\n" + textwrap.indent(textwrap.dedent(targets), "  ")


def store_problems(old: str, new: str) -> list[str]:
    """The problems of STORES with ``old`` replaced by ``new``, and one target of the cache."""
    text = STORES.replace(old, new)
    return problems(text + "targets: [{project: web, environments: [prod], store: cache}]\n")


# -- the format ----------------------------------------------------------------------------


def test_issue_example_loads_with_defaults_merged_and_secrets_resolved() -> None:
    loaded = load(ISSUE_EXAMPLE)
    redis, dynamo = loaded.stores
    assert redis.config == RedisConfig(
        host="redis.internal.example.com",
        port=6379,
        username="launchdarkly",
        password=REDIS_SECRET,
        tls_enabled=True,
    )
    assert dynamo.config == DynamoDBConfig(
        table_name="ld-big-segments",
        region="us-east-1",
        role_arn="arn:aws:iam::123456789012:role/launchdarkly-big-segments",
        external_id=EXTERNAL_SECRET,
    )
    assert (redis.on, redis.tags) == (True, ("managed-by-ldbulk",))
    assert redis.render_name("web", "production") == "Big segments for web/production"
    assert dynamo.render_name("web", "production") is None
    web, mobile, data = loaded.selectors
    assert isinstance(web.environments, EnvironmentKeys)
    assert web.environments.keys == ("production", "staging")
    assert web.store is redis
    assert isinstance(mobile.environments, AllEnvironments)
    assert isinstance(data.environments, TaggedEnvironments)
    assert data.environments.tags == ("prod",)
    assert (web.source.line, web.source.path) == (23, "targets[0]")
    assert web.environments.items[1].source.path == "targets[0].environments[1]"
    assert loaded.files == ("m.yaml",)
    assert loaded.store("dynamo-prod") is dynamo


def test_store_values_win_over_defaults_and_tags_combine_without_duplicates() -> None:
    loaded = load(
        """\
        version: 1
        defaults: {on: true, tags: [managed, shared]}
        stores:
          cache:
            integration: redis
            on: false
            tags: [shared, team-a]
            config: {host: redis.internal}
        targets:
          - {project: web, environments: [prod], store: cache}
        """
    )
    (store,) = loaded.stores
    assert (store.on, store.tags) == (False, ("managed", "shared", "team-a"))


def test_on_defaults_to_false_without_defaults() -> None:
    (store,) = load(with_targets("- {project: web, environments: [prod], store: cache}")).stores[:1]
    assert (store.on, store.tags) == (False, ())


def test_port_may_be_a_string_and_on_is_a_key_not_yaml_true() -> None:
    loaded = load(
        """\
        version: 1
        stores:
          cache:
            integration: redis
            on: yes
            config: {host: h, port: "6380", tlsEnabled: false}
        targets: [{project: web, environments: [prod], store: cache}]
        """
    )
    store = loaded.stores[0]
    assert isinstance(store.config, RedisConfig)
    assert (store.config.port, store.on) == (6380, True)


def test_merge_keys_and_anchors_work_and_own_keys_win() -> None:
    loaded = load(
        """\
        version: 1
        stores:
          a:
            integration: redis
            config: &base {host: one, port: 6379}
          b:
            integration: redis
            config:
              <<: *base
              host: two
        targets:
          - {project: web, environments: [prod], store: a}
          - {project: api, environments: [prod], store: b}
        """
    )
    hosts = [store.config for store in loaded.stores]
    assert [(c.host, c.port) for c in hosts if isinstance(c, RedisConfig)] == [
        ("one", 6379),
        ("two", 6379),
    ]


def test_name_template_allows_escaped_braces() -> None:
    loaded = load(
        """\
        version: 1
        stores:
          cache:
            integration: redis
            name: "{{big}} {environment} of {project}"
            config: {host: h}
        targets: [{project: web, environments: [prod], store: cache}]
        """
    )
    assert loaded.stores[0].render_name("web", "prod") == "{big} prod of web"


# -- exact messages -------------------------------------------------------------------------


def test_unknown_store_is_reported_exactly_as_the_issue_shows() -> None:
    text = ISSUE_EXAMPLE.replace("store: dynamo-prod\n", "store: elsewhere\n", 2)
    text = text.replace("store: elsewhere\n", "store: dynamo-prod\n", 1)
    assert problems(text, file="manifests/prod.yaml") == [
        'manifests/prod.yaml:31: targets[2].store: unknown store "elsewhere"'
    ]


def test_unknown_store_suggests_a_close_name() -> None:
    text = with_targets("- {project: web, environments: [prod], store: cahce}")
    assert problems(text) == [
        'm.yaml:16: targets[0].store: unknown store "cahce"; did you mean "cache"?'
    ]


def test_all_problems_are_reported_at_once_in_line_order() -> None:
    text = """\
        version: 1
        stores:
          cache:
            integration: redis
            config:
              host: redis.internal
              port: 70000
              password: plain-text
          table:
            integration: dynamodb
            config:
              tableName: segments
              region: mars-north-1
              roleArn: not-an-arn
              externalId: ${LD_DYNAMODB_EXTERNAL_ID}
        targets:
          - project: web
            environments: []
            store: cache
          - project: -bad
            environments: [prod]
            store: nowhere
        """
    found = problems(text)
    assert found == [
        "m.yaml:7: stores.cache.config.port: must be an integer from 1 to 65535, got 70000",
        "m.yaml:8: stores.cache.config.password: password must be a ${VAR} or ${file:PATH} "
        "reference: secrets do not belong in a manifest",
        "m.yaml:13: stores.table.config.region: 'mars-north-1' is not a region the dynamodb "
        "integration allows (one of ap-northeast-1, ap-northeast-2, ap-northeast-3, ap-south-1, "
        "ap-southeast-1, ap-southeast-2, ca-central-1, eu-central-1, eu-north-1, eu-west-1, "
        "eu-west-2, eu-west-3, sa-east-1, us-east-1, us-east-2, us-west-1, us-west-2)",
        "m.yaml:14: stores.table.config.roleArn: 'not-an-arn' is not an IAM role ARN "
        "(expected arn:aws:iam::<12-digit account id>:role/<name>)",
        "m.yaml:18: targets[0].environments: must list at least one environment",
        'm.yaml:20: targets[1].project: "-bad" is not a valid project key (letters, digits, '
        "'.', '_' and '-', starting with a letter or digit, at most 256 characters)",
    ]
    assert "plain-text" not in "\n".join(found)


def test_manifest_error_carries_problems_and_prints_each() -> None:
    with pytest.raises(ManifestError) as info:
        load("version: 1\nstores: []\ntargets: {}\n")
    error = info.value
    assert isinstance(error, LdbulkError)
    assert [p.path for p in error.problems] == ["stores", "targets"]
    assert str(error).splitlines() == [
        "2 problems in the manifests",
        "m.yaml:2: stores: must be a mapping, got a list",
        "m.yaml:3: targets: must be a list, got a mapping",
    ]


def test_problem_formats_with_and_without_line_and_path() -> None:
    problem = Problem(file="a.yaml", line=14, path="targets[2].store", message="boom")
    assert str(problem) == "a.yaml:14: targets[2].store: boom"
    assert str(Problem(file="a.yaml", line=0, path="", message="gone")) == "a.yaml: gone"
    assert str(Problem(file="a.yaml", line=3, path="", message="bad")) == "a.yaml:3: bad"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ('"1"', "version: must be 1, got a string"),
        ("true", "version: must be 1, got a boolean"),
        ("1.0", "version: must be 1, got a number"),
    ],
)
def test_version_must_be_the_integer_one(version: str, message: str) -> None:
    text = with_targets("- {project: web, environments: [prod], store: cache}")
    assert problems(text.replace("version: 1", f"version: {version}")) == [f"m.yaml:1: {message}"]


def test_other_versions_are_not_read_further() -> None:
    assert problems("version: 2\nstores: 12\n") == [
        'm.yaml:1: version: unsupported version "2" (this ldbulk reads version 1)'
    ]


def test_missing_version_is_reported_with_the_rest() -> None:
    assert problems("stores: {}\ntargets: []\n") == [
        'm.yaml:1: missing required key "version"',
        "m.yaml:1: stores: must define at least one store",
        "m.yaml:2: targets: must list at least one target",
    ]


def test_unknown_keys_everywhere_with_suggestions() -> None:
    text = """\
        version: 1
        stors: {}
        defaults: {enabled: true}
        stores:
          cache:
            integration: redis
            confg: {}
            config: {host: h, hostname: x}
        targets:
          - {project: web, environments: [prod], store: cache, env: x}
        """
    assert problems(text) == [
        'm.yaml:2: stors: unknown key (did you mean "stores"?)',
        "m.yaml:3: defaults.enabled: unknown key (expected on, tags, allowEnv, ownershipTag)",
        'm.yaml:7: stores.cache.confg: unknown key (did you mean "config"?)',
        'm.yaml:8: stores.cache.config.hostname: unknown key (did you mean "host"?)',
        "m.yaml:10: targets[0].env: unknown key (expected project, projects, environments, store)",
    ]


def test_wrong_types_are_named() -> None:
    text = """\
        version: 1
        defaults: {on: maybe, tags: managed}
        stores:
          cache:
            integration: [redis]
            name: 12
            config: {host: 12, port: true, tlsEnabled: "yes", username: null}
        targets:
          - {project: 2024, environments: [prod, 7], store: {}}
          - web
        """
    assert problems(text) == [
        "m.yaml:2: defaults.on: must be true or false, got a string",
        "m.yaml:2: defaults.tags: must be a list, got a string",
        "m.yaml:5: stores.cache.integration: must be a string, got a list",
        'm.yaml:6: stores.cache.name: must be a string, got an integer (quote it: "12")',
        'm.yaml:9: targets[0].project: must be a string, got an integer (quote it: "2024")',
        'm.yaml:9: targets[0].environments[1]: must be a string, got an integer (quote it: "7")',
        "m.yaml:9: targets[0].store: must be a string, got a mapping",
        "m.yaml:10: targets[1]: must be a mapping, got a string",
    ]


def test_wrong_config_types_are_all_reported() -> None:
    text = """\
        version: 1
        stores:
          cache:
            integration: redis
            config: {host: 12, port: true, tlsEnabled: "yes", username: null}
        targets: [{project: web, environments: [prod], store: cache}]
        """
    assert problems(text) == [
        "m.yaml:5: stores.cache.config.host: must be a string, got an integer",
        "m.yaml:5: stores.cache.config.port: must be a port number, got a boolean",
        "m.yaml:5: stores.cache.config.username: must be a string, got null",
        "m.yaml:5: stores.cache.config.tlsEnabled: must be true or false, got a string",
    ]


def test_missing_required_keys_and_config() -> None:
    text = """\
        version: 1
        stores:
          cache:
            integration: redis
            config: {port: 6379}
          table:
            integration: dynamodb
            config: {region: us-east-1}
          bare:
            name: x
        targets:
          - {environments: [prod]}
        """
    assert problems(text) == [
        'm.yaml:5: stores.cache.config: missing required key "host"',
        'm.yaml:8: stores.table.config: missing required key "tableName"',
        'm.yaml:8: stores.table.config: missing required key "roleArn"',
        'm.yaml:8: stores.table.config: missing required key "externalId"',
        'm.yaml:10: stores.bare: missing required key "integration"',
        'm.yaml:10: stores.bare: missing required key "config"',
        'm.yaml:12: targets[0]: missing required key "project" (or "projects")',
        'm.yaml:12: targets[0]: missing required key "store"',
    ]


def test_unknown_integration() -> None:
    assert store_problems("integration: redis", "integration: memcached") == [
        'm.yaml:4: stores.cache.integration: unknown integration "memcached" '
        "(expected redis or dynamodb; its config is checked as redis's)"
    ]


def test_an_unknown_integration_like_none_still_has_its_config_checked_in_the_same_pass() -> None:
    """Nothing is close to "mongo": the config's keys say it was meant for DynamoDB, and its
    misspelt key and missing fields are reported at once, not after the key is fixed."""
    text = STORES.replace("integration: dynamodb", "integration: mongo").replace(
        "      region: us-east-1\n", "      regoin: us-east-1\n"
    ) + "targets: [{project: web, environments: [prod], store: table}]\n"
    found = problems(text)
    assert found[0] == (
        'm.yaml:9: stores.table.integration: unknown integration "mongo" '
        "(expected redis or dynamodb; its config is checked as dynamodb's)"
    )
    assert 'm.yaml:12: stores.table.config.regoin: unknown key (did you mean "region"?)' in found
    assert any("stores.table.config" in line and "region" in line and "missing" in line
               for line in found), found


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("0", "must be an integer from 1 to 65535, got 0"),
        ("65536", "must be an integer from 1 to 65535, got 65536"),
        ('"abc"', "must be an integer from 1 to 65535, got 'abc'"),
        ("-1", "must be an integer from 1 to 65535, got -1"),
        ("6379.5", "must be a port number, got a number"),
    ],
)
def test_bad_ports(port: str, message: str) -> None:
    found = store_problems("host: redis.internal", f"host: redis.internal\n      port: {port}")
    assert found == [f"m.yaml:7: stores.cache.config.port: {message}"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('"{env}"', 'unknown placeholder "{env}" (use {project} and {environment})'),
        ('"{0}"', 'unknown placeholder "{0}" (use {project} and {environment})'),
        ('"{}"', 'unknown placeholder "{}" (use {project} and {environment})'),
        ('"{project.__class__}"', 'unknown placeholder "{project.__class__}"'),
        ('"{project!r}"', "placeholder {project} takes no conversion or format"),
        ('"{environment:>10}"', "placeholder {environment} takes no conversion or format"),
        ('"oops }"', "not a valid name template: Single '}' encountered in format string"),
    ],
)
def test_bad_name_templates(template: str, message: str) -> None:
    (found,) = store_problems("integration: redis", f"integration: redis\n    name: {template}")
    assert found.startswith(f"m.yaml:5: stores.cache.name: {message}")


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ("[]", "targets[0].environments: must list at least one environment"),
        (
            "production",
            'targets[0].environments: must be a list of environment keys, "*" or '
            "{tags: [...]}, got a string",
        ),
        ('[prod, "*"]', 'targets[0].environments[1]: "*" stands alone: write environments: "*"'),
        ("{tags: []}", "targets[0].environments.tags: must list at least one tag"),
        ("{labels: [prod]}", "targets[0].environments.labels: unknown key (expected tags)"),
        ("{tags: [prod], any: true}", "targets[0].environments.any: unknown key (expected tags)"),
        ("{tags: [pr od]}", 'targets[0].environments.tags[0]: "pr od" is not a valid tag'),
        ("[prod/eu]", 'targets[0].environments[0]: "prod/eu" is not a valid environment key'),
    ],
)
def test_bad_environment_selectors(environments: str, message: str) -> None:
    text = with_targets(f"- {{project: web, environments: {environments}, store: cache}}")
    found = problems(text)
    assert found[0].startswith(f"m.yaml:16: {message}")


def test_selector_without_tags_key_reports_it_missing() -> None:
    text = with_targets("- {project: web, environments: {labels: [x]}, store: cache}")
    assert 'm.yaml:16: targets[0].environments: missing required key "tags"' in problems(text)


@pytest.mark.parametrize("key", ["-web", "web app", "_web", "wéb", "", "a" * 257, "web\nx"])
def test_bad_project_keys(key: str) -> None:
    text = with_targets(f"- {{project: {json.dumps(key)}, environments: [prod], store: cache}}")
    (found,) = problems(text)
    assert found.startswith("m.yaml:16: targets[0].project: ")
    assert "is not a valid project key" in found
    assert "\n" not in found


@pytest.mark.parametrize("key", ["web", "Web.2", "a_b-c", "0day", "a" * 256])
def test_good_project_keys(key: str) -> None:
    loaded = load(with_targets(f"- {{project: {key}, environments: [prod], store: cache}}"))
    assert loaded.selectors[0].project == key


def test_duplicate_yaml_keys_are_problems() -> None:
    text = """\
        version: 1
        stores:
          cache: {integration: redis, config: {host: a, host: b}}
        targets: [{project: web, environments: [prod], store: cache}]
        version: 1
        """
    assert problems(text) == [
        "m.yaml:3: stores.cache.config.host: duplicate key (first at line 3)",
        "m.yaml:5: version: duplicate key (first at line 1)",
    ]


def test_store_names_are_checked() -> None:
    text = STORES.replace("  cache:", '  "bad name":') + (
        "targets: [{project: web, environments: [prod], store: table}]\n"
    )
    (found,) = problems(text)
    assert found.startswith('m.yaml:3: stores["bad name"]: store names use letters')


def test_a_file_with_nothing_to_do_and_a_set_without_targets() -> None:
    assert problems("version: 1\n") == ["m.yaml:1: defines no stores and no targets"]
    assert problems(STORES) == ["m.yaml: no targets in any manifest"]


# -- duplicates -----------------------------------------------------------------------------


def test_duplicate_environment_in_one_list() -> None:
    text = with_targets("- {project: web, environments: [prod, qa, prod], store: cache}")
    assert problems(text) == [
        "m.yaml:16: targets[0].environments[2]: duplicate target web/prod/redis: "
        "also at m.yaml:16 (targets[0].environments[0])"
    ]


def test_duplicate_across_lines_of_one_integration_key_even_through_two_stores() -> None:
    text = """\
        version: 1
        stores:
          cache: {integration: redis, config: {host: one}}
          cache2: {integration: redis, config: {host: two}}
        targets:
          - project: web
            environments: [prod]
            store: cache
          - project: web
            environments: [qa, prod]
            store: cache2
        """
    assert problems(text) == [
        "m.yaml:10: targets[1].environments[1]: duplicate target web/prod/redis: "
        "also at m.yaml:7 (targets[0].environments[0])"
    ]


def test_redis_and_dynamodb_may_share_an_environment() -> None:
    loaded = load(
        with_targets(
            """\
            - {project: web, environments: [prod], store: cache}
            - {project: web, environments: [prod], store: table}
            """
        )
    )
    assert len(loaded.selectors) == 2


def test_several_files_share_stores_and_duplicates_are_found_across_them(tmp_path: Path) -> None:
    (tmp_path / "stores.yaml").write_text(STORES)
    (tmp_path / "a.yaml").write_text(
        "version: 1\ntargets:\n  - {project: web, environments: [prod, qa], store: cache}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "version: 1\ntargets:\n"
        "  - {project: api, environments: [prod], store: cache}\n"
        "  - {project: web, environments: [qa], store: cache}\n"
    )
    paths = [tmp_path / name for name in ("stores.yaml", "a.yaml", "b.yaml")]
    with pytest.raises(ManifestError) as info:
        load_manifests(paths, env=ENV)
    a, b = (str(tmp_path / name) for name in ("a.yaml", "b.yaml"))
    assert [str(p) for p in info.value.problems] == [
        f"{b}:4: targets[1].environments[0]: duplicate target web/qa/redis: "
        f"also at {a}:3 (targets[0].environments[1])"
    ]
    loaded = load_manifests(paths[:2], env=ENV)
    assert loaded.files == (str(paths[0]), str(paths[1]))
    assert loaded.selectors[0].store is loaded.store("cache")


def test_store_names_belong_to_their_file(tmp_path: Path) -> None:
    # Two teams' files may both define "cache": each target uses its own file's.
    (tmp_path / "one.yaml").write_text(
        with_targets("- {project: web, environments: [prod], store: cache}")
    )
    (tmp_path / "two.yaml").write_text(
        with_targets(
            "- {project: api, environments: [prod], store: cache}",
            STORES.replace("redis.internal", "redis-two.internal"),
        )
    )
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    loaded = load_manifests([one, two], env=ENV)
    hosts = {s.project: s.store.config.host for s in loaded.selectors}
    assert hosts == {"web": "redis.internal", "api": "redis-two.internal"}

    # A file that defines none of that name cannot tell which of the two it means.
    (tmp_path / "three.yaml").write_text(
        "version: 1\ntargets:\n  - {project: ops, environments: [prod], store: cache}\n"
    )
    with pytest.raises(ManifestError) as info:
        load_manifests([one, two, tmp_path / "three.yaml"], env=ENV)
    (problem,) = info.value.problems
    assert 'store "cache" is defined in several other files' in problem.message
    assert str(one) in problem.message and str(two) in problem.message


def test_problems_of_several_files_come_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "z.yaml").write_text("version: 3\n")
    (tmp_path / "a.yaml").write_text("- not a mapping\n")
    found = [str(p) for p in _error(load_manifests, [tmp_path / "z.yaml", tmp_path / "a.yaml"])]
    assert found[0].startswith(f"{tmp_path / 'z.yaml'}:1: version: unsupported version")
    assert found[1].startswith(f"{tmp_path / 'a.yaml'}:1: the top level must be a mapping")


def _error(function: Any, *args: Any) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        function(*args, env=ENV)
    return info.value.problems


# -- secrets --------------------------------------------------------------------------------


def test_secret_from_a_file_relative_to_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "redis").write_text("from-file\n\n")
    (tmp_path / "secrets" / "ext").write_text("ext-from-file\n")
    text = STORES.replace("${LD_REDIS_PASSWORD}", "${file:secrets/redis}").replace(
        "${LD_DYNAMODB_EXTERNAL_ID}", "${file:secrets/ext}"
    )
    path = tmp_path / "m.yaml"
    path.write_text(with_targets("- {project: web, environments: [prod], store: cache}", text))
    cache, table = load_manifest(path, env={}).stores
    assert isinstance(cache.config, RedisConfig) and isinstance(table.config, DynamoDBConfig)
    assert cache.config.password == "from-file\n"  # only one trailing newline is stripped
    assert table.config.external_id == "ext-from-file"


def test_secret_file_absolute_path_under_a_secrets_dir(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(b"abs-pw-71c2\r\n")
    text = STORES.replace("${LD_REDIS_PASSWORD}", f"${{file:{secret}}}")
    loaded = load(
        with_targets("- {project: web, environments: [prod], store: cache}", text),
        secrets_dirs=[tmp_path],
    )
    config = loaded.stores[0].config
    assert isinstance(config, RedisConfig) and config.password == "abs-pw-71c2"


def test_missing_variable_and_file_are_named(tmp_path: Path) -> None:
    text = STORES.replace("${LD_DYNAMODB_EXTERNAL_ID}", "${file:nope/ext}")
    text = with_targets("- {project: web, environments: [prod], store: cache}", text)
    assert problems(text, env={}, base_dir=tmp_path) == [
        "m.yaml:7: stores.cache.config.password: environment variable LD_REDIS_PASSWORD is not set",
        'm.yaml:14: stores.table.config.externalId: secret file "nope/ext" cannot be read: '
        "No such file or directory",
    ]


def test_secret_file_that_is_not_text_or_too_big(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    (tmp_path / "big").write_bytes(b"x" * (manifest_module.MAX_SECRET_FILE_BYTES + 1))
    text = STORES.replace("${LD_REDIS_PASSWORD}", "${file:bin}").replace(
        "${LD_DYNAMODB_EXTERNAL_ID}", "${file:big}"
    )
    text = with_targets("- {project: web, environments: [prod], store: cache}", text)
    assert problems(text, base_dir=tmp_path) == [
        'm.yaml:7: stores.cache.config.password: secret file "bin" is not UTF-8 text',
        'm.yaml:14: stores.table.config.externalId: secret file "big" is larger than 65536 bytes',
    ]


@pytest.mark.parametrize("literal", ["hunter2", "12345", "true", "!!binary aGk="])
def test_literal_secrets_are_refused_without_being_repeated(literal: str) -> None:
    text = STORES.replace("${LD_REDIS_PASSWORD}", literal).replace(
        "${LD_DYNAMODB_EXTERNAL_ID}", literal
    )
    found = problems(with_targets("- {project: web, environments: [prod], store: cache}", text))
    assert found == [
        "m.yaml:7: stores.cache.config.password: password must be a ${VAR} or ${file:PATH} "
        "reference: secrets do not belong in a manifest",
        "m.yaml:14: stores.table.config.externalId: externalId must be a ${VAR} or "
        "${file:PATH} reference: secrets do not belong in a manifest",
    ]
    assert all(literal not in line.split(": ", 1)[1] for line in found)


def test_empty_redis_password_means_no_password() -> None:
    text = STORES.replace("${LD_REDIS_PASSWORD}", '""')
    loaded = load(with_targets("- {project: web, environments: [prod], store: cache}", text))
    config = loaded.stores[0].config
    assert isinstance(config, RedisConfig) and config.password == ""


def test_empty_external_id_is_refused() -> None:
    text = with_targets("- {project: web, environments: [prod], store: cache}")
    env = {**ENV, "LD_DYNAMODB_EXTERNAL_ID": ""}
    assert problems(text, env=env) == [
        "m.yaml:14: stores.table.config.externalId: must be a non-empty string "
        "(from ${LD_DYNAMODB_EXTERNAL_ID})"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"pre-${LD_REDIS_PASSWORD}"', "a ${...} reference must be the whole value"),
        ('"${LD_REDIS_PASSWORD}-post"', "a ${...} reference must be the whole value"),
        ('"${ LD_REDIS_PASSWORD }"', "malformed reference (expected ${VAR} or ${file:PATH})"),
        ('"${}"', "malformed reference (expected ${VAR} or ${file:PATH})"),
        ('"${file:}"', "malformed reference (expected ${VAR} or ${file:PATH})"),
        ('"${1VAR}"', "malformed reference (expected ${VAR} or ${file:PATH})"),
    ],
)
def test_malformed_references(value: str, message: str) -> None:
    text = STORES.replace("${LD_REDIS_PASSWORD}", value.strip('"'))
    text = text.replace("password: " + value.strip('"'), "password: " + value)
    (found,) = problems(with_targets("- {project: web, environments: [prod], store: cache}", text))
    assert found.startswith(f"m.yaml:7: stores.cache.config.password: {message}")


def test_references_work_in_any_config_field() -> None:
    text = STORES.replace("host: redis.internal", "host: ${HOST}\n      port: ${PORT}")
    text = text.replace(
        "password: ${LD_REDIS_PASSWORD}", "password: ${LD_REDIS_PASSWORD}\n      tlsEnabled: ${TLS}"
    )
    env = {**ENV, "HOST": "redis.from.env", "PORT": "6390", "TLS": "True"}
    loaded = load(
        with_targets("- {project: web, environments: [prod], store: cache}", text), env=env
    )
    config = loaded.stores[0].config
    assert isinstance(config, RedisConfig)
    assert (config.host, config.port, config.tls_enabled) == ("redis.from.env", 6390, True)


def test_a_secret_in_the_wrong_field_is_not_shown_in_the_error() -> None:
    text = STORES.replace("host: redis.internal", "host: h\n      port: ${LD_REDIS_PASSWORD}")
    text = text.replace("region: us-east-1", "region: ${LD_DYNAMODB_EXTERNAL_ID}")
    text = text.replace("tableName: segments", "tableName: segments\n      ")
    found = problems(with_targets("- {project: web, environments: [prod], store: cache}", text))
    joined = "\n".join(found)
    assert REDIS_SECRET not in joined and EXTERNAL_SECRET not in joined
    assert (
        "m.yaml:7: stores.cache.config.port: must be an integer from 1 to 65535, "
        "got ${LD_REDIS_PASSWORD}" in found
    )
    assert any(
        "stores.table.config.region: ${LD_DYNAMODB_EXTERNAL_ID} is not a region" in line
        for line in found
    )


def test_tls_reference_must_be_a_boolean_word() -> None:
    text = STORES.replace("host: redis.internal", "host: h\n      tlsEnabled: ${TLS}")
    found = problems(
        with_targets("- {project: web, environments: [prod], store: cache}", text),
        env={**ENV, "TLS": "sometimes"},
    )
    assert found == [
        "m.yaml:7: stores.cache.config.tlsEnabled: the value of ${TLS} must be true or false"
    ]


def test_secrets_never_appear_in_reprs() -> None:
    loaded = load(ISSUE_EXAMPLE)
    assert REDIS_SECRET not in repr(loaded) and EXTERNAL_SECRET not in repr(loaded)
    assert REDIS_SECRET not in str(loaded.selectors) and EXTERNAL_SECRET not in repr(loaded.stores)


# -- what a reference may name: the manifest's author is not trusted -----------------------

ACCESS_TOKEN = "api-0123-the-access-token"
REFUSED_CREDENTIAL = (
    "is named like another system's credential ({}): refused; the job that runs the manifest "
    "can allow it with --allow-env {} if the store needs it"
)
OUTSIDE = "is outside the manifest's directory (allow a directory with --secrets-dir)"


def one_redis(defaults: str = "", **config: str) -> str:
    """A manifest with one redis store, one config key a line (line 6 onwards, 7 with
    defaults)."""
    lines = ["version: 1", *([f"defaults: {defaults}"] if defaults else [])]
    lines += ["stores:", "  cache:", "    integration: redis", "    config:"]
    lines += [f"      {key}: {json.dumps(value)}" for key, value in config.items()]
    lines += ["targets:", "  - {project: web, environments: [prod], store: cache}"]
    return "\n".join(lines) + "\n"


def test_the_access_token_variable_is_always_refused() -> None:
    text = one_redis(host="${LD_ACCESS_TOKEN}", password="")
    found = problems(text, env={"LD_ACCESS_TOKEN": ACCESS_TOKEN}, allow_env=["MY_TOKEN"])
    assert found == [
        "m.yaml:6: stores.cache.config.host: ${LD_ACCESS_TOKEN} is ldbulk's own access token: "
        "no manifest may use it"
    ]


def test_the_access_token_can_never_be_allowed() -> None:
    with pytest.raises(ConfigError, match="cannot allow 'LD_ACCESS_TOKEN'"):
        load(one_redis(host="h", password=""), allow_env=["LD_ACCESS_TOKEN"])
    text = one_redis(
        defaults="{allowEnv: [LD_ACCESS_TOKEN]}", host="${LD_ACCESS_TOKEN}", password=""
    )
    assert problems(text, env={"LD_ACCESS_TOKEN": ACCESS_TOKEN}) == [
        'm.yaml:2: defaults.allowEnv[0]: cannot allow "LD_ACCESS_TOKEN": '
        "it is ldbulk's own access token",
        "m.yaml:7: stores.cache.config.host: ${LD_ACCESS_TOKEN} is ldbulk's own access token: "
        "no manifest may use it",
    ]


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("AWS_SECRET_ACCESS_KEY", "*_SECRET_ACCESS_KEY"),
        ("AWS_SESSION_TOKEN", "*_TOKEN"),
        ("AWS_ACCESS_KEY_ID", "*_ACCESS_KEY_ID"),
        ("GITHUB_TOKEN", "*_TOKEN"),
        ("github_token", "*_TOKEN"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_*"),
        ("DATADOG_API_KEY", "*_API_KEY"),
        ("AZURE_CLIENT_SECRET", "*_CLIENT_SECRET"),
        ("LD_SDK_KEY", "*_SDK_KEY"),
        ("CI_JOB_JWT", "*_JWT"),
    ],
)
def test_variables_named_like_other_credentials_are_refused(name: str, pattern: str) -> None:
    credential = "credential-value-5d2c"
    text = one_redis(host="h", username=f"${{{name}}}", password="")
    found = problems(text, env={**ENV, name: credential})
    assert found == [
        f"m.yaml:7: stores.cache.config.username: ${{{name}}} "
        + REFUSED_CREDENTIAL.format(pattern, name)
    ]


def test_a_credential_name_is_refused_whether_or_not_it_is_set() -> None:
    text = one_redis(host="${GITHUB_TOKEN}", password="")
    assert problems(text, env={}) == [
        "m.yaml:6: stores.cache.config.host: ${GITHUB_TOKEN} "
        + REFUSED_CREDENTIAL.format("*_TOKEN", "GITHUB_TOKEN")
    ]


def test_store_secrets_and_settings_named_as_usual_are_used_and_remembered() -> None:
    text = one_redis(host="${REDIS_HOST}", password="${LD_REDIS_PASSWORD}")
    env = {"REDIS_HOST": "redis.from.env", "LD_REDIS_PASSWORD": REDIS_SECRET}
    config = load(text, env=env).stores[0].config
    assert isinstance(config, RedisConfig)
    assert (config.host, config.password) == ("redis.from.env", REDIS_SECRET)
    assert config.references == {"host": "${REDIS_HOST}", "password": "${LD_REDIS_PASSWORD}"}


def test_a_token_name_is_allowed_by_the_run_and_never_by_the_manifest_itself() -> None:
    """Trust stays on the command line: a pull request's manifest that allows GITHUB_TOKEN for
    itself is refused, and so is its reference; the job's own --allow-env still allows it."""
    env = {"MY_TOKEN": "allowed-token-value"}
    by_run = load(one_redis(host="h", password="${MY_TOKEN}"), env=env, allow_env=["MY_TOKEN"])
    config = by_run.stores[0].config
    assert isinstance(config, RedisConfig) and config.password == "allowed-token-value"
    text = one_redis(defaults="{allowEnv: [MY_TOKEN]}", host="h", password="${MY_TOKEN}")
    assert problems(text, env=env) == [
        'm.yaml:2: defaults.allowEnv[0]: cannot allow "MY_TOKEN": it is named like a '
        "credential (*_TOKEN), and a manifest may not allow one for itself; the job that runs "
        "it can, with --allow-env MY_TOKEN",
        "m.yaml:8: stores.cache.config.password: ${MY_TOKEN} "
        + REFUSED_CREDENTIAL.format("*_TOKEN", "MY_TOKEN"),
    ]


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("GITHUB_TOKEN", "*_TOKEN"),
        ("github_token", "*_TOKEN"),
        ("AWS_SECRET_ACCESS_KEY", "*_SECRET_ACCESS_KEY"),
        ("ACTIONS_RUNTIME_URL", "ACTIONS_*"),
        ("CI_JOB_JWT_V2", "JWT"),
        ("REDIS_PASSWORD", "PASS"),
        ("DB_PASSWD", "PASS"),
        ("my_secret", "SECRET"),
        ("STRIPE_KEY", "KEY"),
        ("BASIC_AUTH_HEADER", "AUTH"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "CREDENTIAL"),
        ("AWS_REGION", "AWS_*"),
        ("GITHUB_WORKSPACE", "GITHUB_*"),
        ("LD_REDIS_HOST", "LD_*"),
        ("AZURE_TENANT_ID", "AZURE_*"),
    ],
)
def test_a_manifest_may_not_allow_a_credential_shaped_name(name: str, shape: str) -> None:
    text = one_redis(defaults=f"{{allowEnv: [{name}]}}", host="h", password="")
    assert problems(text) == [
        f'm.yaml:2: defaults.allowEnv[0]: cannot allow "{name}": it is named like a '
        f"credential ({shape}), and a manifest may not allow one for itself; the job that "
        f"runs it can, with --allow-env {name}"
    ]


def test_every_name_a_reference_refuses_is_credential_shaped_for_a_manifest() -> None:
    """So no manifest can ever allow what the references refuse, whatever is added later."""
    for pattern in CREDENTIAL_VARIABLES:
        name = pattern.replace("*", "SOME")
        assert credential_pattern(name) == pattern
        assert manifest_allow_refusal(name) is not None, name


def test_a_manifest_may_list_names_that_are_not_credential_shaped() -> None:
    text = one_redis(defaults="{allowEnv: [REDIS_HOST]}", host="${REDIS_HOST}", password="")
    config = load(text, env={"REDIS_HOST": "redis.internal"}).stores[0].config
    assert isinstance(config, RedisConfig) and config.host == "redis.internal"


def test_allow_list_entries_are_checked() -> None:
    text = one_redis(defaults="{allowEnv: [3x, 7, REDIS_HOST]}", host="h", password="")
    assert problems(text) == [
        'm.yaml:2: defaults.allowEnv[0]: cannot allow "3x": '
        "it is not an environment variable name",
        "m.yaml:2: defaults.allowEnv[1]: must be a string, got an integer (quote it: \"7\")",
    ]
    text = one_redis(defaults="{allowEnv: MY_TOKEN}", host="h", password="")
    assert problems(text) == ["m.yaml:2: defaults.allowEnv: must be a list, got a string"]
    with pytest.raises(ConfigError, match="one string"):
        load(one_redis(host="h", password=""), allow_env="MY_TOKEN")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest directory with secrets/external-id, next to outside/secret (also $HOME)."""
    (tmp_path / "repo" / "secrets").mkdir(parents=True)
    (tmp_path / "repo" / "secrets" / "external-id").write_text("ext-inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("outside-value-7a1f\n")
    monkeypatch.setenv("HOME", str(tmp_path / "outside"))
    return tmp_path / "repo"


def file_problems(repo: Path, written: str, **kwargs: Any) -> list[str]:
    path = repo / "m.yaml"
    path.write_text(one_redis(host="h", password=f"${{file:{written}}}"))
    with pytest.raises(ManifestError) as info:
        load_manifest(path, env={}, **kwargs)
    found = [str(problem) for problem in info.value.problems]
    assert all("outside-value" not in line and "ext-inside" not in line for line in found)
    return [line.split(": ", 2)[2] for line in found]


@pytest.mark.parametrize(
    "written", ["/etc/hostname", "../../../etc/hostname", "../outside/secret", "~/secret"]
)
def test_secret_files_outside_the_manifest_directory_are_refused(
    repo: Path, written: str
) -> None:
    assert file_problems(repo, written) == [f"secret file {json.dumps(written)} {OUTSIDE}"]


def test_symlinks_out_of_the_manifest_directory_are_refused(repo: Path) -> None:
    (repo / "secrets" / "link").symlink_to(repo.parent / "outside" / "secret")
    (repo / "linked-dir").symlink_to(repo.parent / "outside", target_is_directory=True)
    assert file_problems(repo, "secrets/link") == [f'secret file "secrets/link" {OUTSIDE}']
    assert file_problems(repo, "linked-dir/secret") == [
        f'secret file "linked-dir/secret" {OUTSIDE}'
    ]


def test_files_inside_a_git_directory_are_refused(repo: Path) -> None:
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[http]\n\textraheader = AUTHORIZATION: basic x\n")
    assert file_problems(repo, ".git/config") == [
        'secret file ".git/config" is inside a .git directory, where git keeps credentials'
    ]


def test_the_token_file_is_never_read_whatever_the_path(repo: Path) -> None:
    token = repo / "ld-token"
    token.write_text(ACCESS_TOKEN + "\n")
    (repo / "token-link").symlink_to(token)
    os.link(token, repo / "secrets" / "token-copy")
    for written in (
        "ld-token",
        "token-link",
        "secrets/../ld-token",
        str(token),
        "secrets/token-copy",
    ):
        found = file_problems(repo, written, deny_files=[token], secrets_dirs=[repo.parent])
        # Quoted as every message quotes a value: cut past 80 characters (long temp paths).
        assert found == [f"secret file {quote(written)} is the access token file"]


def test_a_path_that_resolves_to_no_file_is_a_problem(repo: Path) -> None:
    (repo / "loop").symlink_to(repo / "loop")
    path = repo / "m.yaml"
    path.write_text(one_redis(host="h", password="${file:loop}", username="${file:a\0b}"))
    with pytest.raises(ManifestError) as info:
        load_manifest(path, env={})
    assert [problem.message for problem in info.value.problems] == [
        'secret file "loop" cannot be resolved to a file',
        'secret file "a\\x00b" cannot be resolved to a file',
    ]


def test_only_regular_files_are_read(repo: Path) -> None:
    assert file_problems(repo, "secrets") == ['secret file "secrets" is not a regular file']


def test_legitimate_secret_files_are_read(repo: Path) -> None:
    run_secrets = repo.parent / "outside"
    (repo / "current").symlink_to(repo / "secrets" / "external-id")
    path = repo / "m.yaml"
    path.write_text(
        one_redis(
            host="${file:current}",
            username="${file:secrets/external-id}",
            password=f"${{file:{run_secrets / 'secret'}}}",
        )
    )
    config = load_manifest(path, env={}, secrets_dirs=[run_secrets]).stores[0].config
    assert isinstance(config, RedisConfig)
    assert (config.host, config.username, config.password) == (
        "ext-inside",
        "ext-inside",
        "outside-value-7a1f",
    )
    # ~ is expanded when it lands inside an allowed directory ($HOME is run_secrets here).
    path.write_text(one_redis(host="h", password="${file:~/secret}"))
    config = load_manifest(path, env={}, secrets_dirs=[run_secrets]).stores[0].config
    assert isinstance(config, RedisConfig) and config.password == "outside-value-7a1f"


def test_values_from_references_never_show_in_reprs() -> None:
    env = {
        **ENV,
        "REDIS_HOST": "10.20.30.40",
        "REDIS_USER": "user-from-env",
        "TABLE": "table-from-env",
        "ROLE": "arn:aws:iam::123456789012:role/from-env",
    }
    text = STORES.replace(
        "host: redis.internal", "host: ${REDIS_HOST}\n      username: ${REDIS_USER}"
    )
    text = text.replace("tableName: segments", "tableName: ${TABLE}")
    text = text.replace("roleArn: arn:aws:iam::123456789012:role/ld", "roleArn: ${ROLE}")
    loaded = load(
        with_targets("- {project: web, environments: [prod], store: cache}", text), env=env
    )
    redis, dynamo = (store.config for store in loaded.stores)
    shown = "\n".join(
        [repr(loaded), str(loaded.stores), str(redis), repr(dynamo), repr(loaded.selectors)]
    )
    for value in env.values():
        assert value not in shown
    assert "host='${REDIS_HOST}'" in repr(redis) and "username='${REDIS_USER}'" in repr(redis)
    assert "table_name='${TABLE}'" in repr(dynamo) and "role_arn='${ROLE}'" in repr(dynamo)
    assert "external_id='${LD_DYNAMODB_EXTERNAL_ID}'" in repr(dynamo)
    assert "region='us-east-1'" in repr(dynamo)


def test_configs_remember_their_references_and_send_the_real_values() -> None:
    text = STORES.replace("host: redis.internal", "host: ${REDIS_HOST}\n      port: ${PORT}")
    env = {**ENV, "REDIS_HOST": "10.20.30.40", "PORT": "6390"}
    loaded = load(
        with_targets("- {project: web, environments: [prod], store: cache}", text), env=env
    )
    redis, dynamo = (store.config for store in loaded.stores)
    assert redis.references == {
        "host": "${REDIS_HOST}",
        "port": "${PORT}",
        "password": "${LD_REDIS_PASSWORD}",
    }
    assert dynamo.references == {"external_id": "${LD_DYNAMODB_EXTERNAL_ID}"}
    assert redis.to_api()["host"] == "10.20.30.40" and redis.to_api()["port"] == "6390"
    assert redis.redact("no route to 10.20.30.40:6390") == "no route to ${REDIS_HOST}:${PORT}"


# -- files and hostile input ----------------------------------------------------------------


def test_unreadable_files_are_problems(tmp_path: Path) -> None:
    missing, directory = tmp_path / "missing.yaml", tmp_path
    found = [str(p) for p in _error(load_manifests, [missing, directory])]
    assert found[0] == f"{missing}: cannot read file: No such file or directory"
    assert found[1].startswith(f"{directory}: cannot read file: ")
    assert len(found) == 2


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")
    (found,) = _error(load_manifest, path)
    assert str(found) == f"{path}:2: not UTF-8 text (byte 0xe9)"


def test_utf8_bom_is_accepted() -> None:
    text = with_targets("- {project: web, environments: [prod], store: cache}")
    assert load_bytes(b"\xef\xbb\xbf" + text.encode()).selectors


def load_bytes(data: bytes) -> ManifestSet:
    return loads_manifest(data, file="m.yaml", env=ENV)


def test_yaml_syntax_error_gives_its_line_without_a_source_snippet() -> None:
    text = "version: 1\nstores:\n  cache: {integration: redis\n  password: hunter2\n"
    (found,) = problems(text)
    assert found.startswith("m.yaml:4: invalid YAML: while parsing a flow mapping")
    assert "hunter2" not in found and "\n" not in found


def test_tabs_and_other_scanner_errors() -> None:
    (found,) = problems("version: 1\n\tstores: {}\n")
    assert found.startswith("m.yaml:2: invalid YAML: ")


def test_several_documents_are_refused() -> None:
    (found,) = problems("version: 1\n---\nversion: 1\n")
    assert found == (
        "m.yaml:2: invalid YAML: expected a single document in the stream "
        "but found another document"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "m.yaml:1: empty manifest: expected a mapping with version, stores and targets"),
        ("# only a comment\n", "m.yaml:1: empty manifest"),
        (
            "[1, 2]",
            "m.yaml:1: the top level must be a mapping with version, stores and targets,"
            " got a list",
        ),
        ("just text", "m.yaml:1: the top level must be a mapping"),
        ("? [a]\n: b\n", "m.yaml:1: keys must be strings, got a list"),
    ],
)
def test_top_level_shapes(text: str, message: str) -> None:
    assert problems(text)[0].startswith(message)


def test_non_printable_characters() -> None:
    (found,) = problems("version: 1\nstores: \x07\n")
    assert found == "m.yaml:2: invalid YAML: character #x0007 is not allowed"


def test_unsafe_and_unknown_tags_are_never_constructed() -> None:
    text = with_targets("- {project: web, environments: [prod], store: cache}")
    text = text.replace("version: 1", "version: !!python/name:os.system ''")
    text = text.replace("host: redis.internal", "host: !!python/object/apply:os.system [id]")
    assert problems(text) == [
        "m.yaml:1: version: must be 1, got a value tagged "
        '"tag:yaml.org,2002:python/name:os.system"',
        "m.yaml:6: stores.cache.config.host: must be a string, got a list",
    ]


def test_unreadable_scalar_values() -> None:
    text = with_targets("- {project: web, environments: [prod], store: cache}")
    found = problems(text.replace("6379", "x").replace("version: 1", "version: !!int nope"))
    assert found[0].startswith("m.yaml:1: version: cannot read value: ")


def test_huge_files_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(nodes, "MAX_FILE_BYTES", 100)
    path = tmp_path / "big.yaml"
    path.write_text("#" * 101)
    assert str(_error(load_manifest, path)[0]) == f"{path}: larger than 100 bytes"
    assert problems("#" * 101)[0] == "m.yaml: larger than 100 bytes"


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_a_problem_not_a_recursion_error(opener: str) -> None:
    text = "\n".join("  " * i + opener for i in range(200)) if opener == "- " else opener * 5000
    (found, *_) = problems(text)
    assert "nested deeper than 64 levels" in found


def test_deep_json_nesting(tmp_path: Path) -> None:
    assert "nested" in problems("[" * 100_000 + "]" * 100_000, file="deep.json")[0]


def test_alias_expansion_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodes, "MAX_WORK", 10_000)
    environments = ", ".join(f"e{i}" for i in range(100))
    text = (
        "version: 1\nstores: {cache: {integration: redis, config: {host: h}}}\ntargets:\n"
        f"  - &t {{project: web, environments: [{environments}], store: cache}}\n"
        + "  - *t\n"
        * 200
    )
    found = problems(text)
    assert found[0] == "m.yaml:4: expands to more than 10000 items (aliases?)"


def test_recursive_aliases_do_not_loop() -> None:
    text = "version: 1\nstores: &s {cache: *s}\ntargets: &t [*t]\ndefaults: &d {<<: *d}\n"
    found = problems(text)
    assert found
    assert all("\n" not in line for line in found)


def test_too_many_problems_are_capped() -> None:
    targets = "\n".join("  - 1" for _ in range(300))
    found = problems(f"version: 1\ntargets:\n{targets}\n")
    assert len(found) == manifest_module.MAX_PROBLEMS_PER_FILE + 1
    assert found[-1] == "m.yaml: 100 more problems not shown"


def test_control_characters_and_long_values_are_escaped_in_messages() -> None:
    text = with_targets(
        '- {project: "evil\\x1b[31m\\u202e' + "x" * 200 + '", environments: [p], store: cache}'
    )
    (found,) = problems(text)
    assert "\x1b" not in found and "\u202e" not in found
    assert '"evil\\x1b[31m\\u202e' in found and "…" in found


# -- JSON ------------------------------------------------------------------------------------


def test_json_manifest_with_tabs_loads_with_line_numbers(tmp_path: Path) -> None:
    document = issue_document()
    document["targets"][2]["store"] = "redis-eu"
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(document, indent="\t"))
    (found,) = _error(load_manifest, path)
    lines = path.read_text().splitlines()
    assert '"store": "redis-eu"' in lines[found.line - 1]
    assert str(found) == (
        f'{path}:{found.line}: targets[2].store: unknown store "redis-eu"; '
        'did you mean "redis-east"?'
    )
    document["targets"][2]["store"] = "redis-east"
    path.write_text(json.dumps(document, indent="\t"))
    assert len(load_manifest(path, env=ENV).selectors) == 3


def test_json_syntax_errors_are_reported_as_json() -> None:
    text = '{\n  "version": 1,\n  "stores": {,\n}'
    assert problems(text, file="m.json") == [
        "m.json:3: invalid JSON: Expecting property name enclosed in double quotes (column 14)"
    ]
    assert problems("", file="m.json") == ["m.json:1: invalid JSON: Expecting value (column 1)"]


def test_json_content_in_a_yaml_file_is_read_as_yaml() -> None:
    assert len(load(json.dumps(issue_document(), indent=2)).selectors) == 3


# -- the shipped manifests ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["example.yaml", "redis-fleet.yaml", "dynamodb-prod.yaml"])
def test_shipped_manifests_are_valid(name: str) -> None:
    env = {**ENV, "LD_REDIS_EU_PASSWORD": "eu-secret"}
    loaded = load_manifest(MANIFESTS / name, env=env)
    assert loaded.selectors


def test_shipped_manifests_load_together_without_duplicates() -> None:
    env = {**ENV, "LD_REDIS_EU_PASSWORD": "eu-secret"}
    loaded = load_manifests(sorted(MANIFESTS.glob("*.yaml")), env=env)
    assert len(loaded.manifests) == 3


def test_shipped_manifests_name_their_missing_secrets() -> None:
    found = [str(p) for p in _error_env(MANIFESTS / "example.yaml")]
    assert [line.split(": ", 2)[2] for line in found] == [
        "environment variable LD_REDIS_PASSWORD is not set",
        "environment variable LD_DYNAMODB_EXTERNAL_ID is not set",
    ]


def _error_env(path: Path) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path, env={})
    return info.value.problems


# -- property-based: whatever comes in, a ManifestSet or a ManifestError -------------------

KEYS = st.sampled_from(
    [
        "version",
        "defaults",
        "stores",
        "targets",
        "on",
        "tags",
        "integration",
        "name",
        "config",
        "host",
        "port",
        "username",
        "password",
        "tlsEnabled",
        "tableName",
        "region",
        "roleArn",
        "externalId",
        "project",
        "projects",
        "environments",
        "store",
        "<<",
        "cache",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "redis",
            "dynamodb",
            "*",
            "${LD_REDIS_PASSWORD}",
            "${file:x}",
            "${NOPE}",
            "${",
            "{project}",
            "us-east-1",
            "arn:aws:iam::123456789012:role/x",
            "prod",
            "cache",
            "1",
            "6379",
            "{",
        ]
    ),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=30,
)


def check_outcome(text: str | bytes, file: str) -> None:
    try:
        loaded = loads_manifest(text, file=file, env=ENV)
    except ManifestError as error:
        assert error.problems
        for problem in error.problems:
            line = str(problem)
            assert "\n" not in line and "\r" not in line
            assert REDIS_SECRET not in line and EXTERNAL_SECRET not in line
            assert problem.line >= 0
    else:
        assert loaded.selectors


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=STRUCTURES, as_json=st.booleans())
def test_random_structures_end_in_a_manifest_or_a_manifest_error(
    document: Any, as_json: bool
) -> None:
    if isinstance(document, dict):
        document.setdefault("version", 1)
    if as_json:
        check_outcome(json.dumps(document, indent="\t"), "fuzz.json")
    else:
        check_outcome(yaml.safe_dump(document, allow_unicode=True), "fuzz.yaml")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("{}[]:,-*&!|>'\"\t\n #%@`?<.~\\x0a$")), max_size=80)
)
def test_random_yaml_punctuation_never_raises_anything_else(text: str) -> None:
    check_outcome(text, "fuzz.yaml")
    check_outcome(text, "fuzz.json")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    check_outcome(data, "fuzz.yaml")


def issue_document() -> dict[str, Any]:
    """The issue's example as data (PyYAML reads the key `on:` as True; the loader does not)."""
    document: dict[str, Any] = yaml.safe_load(ISSUE_EXAMPLE)
    document["defaults"]["on"] = document["defaults"].pop(True)
    return document


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None)
@given(data=st.data(), as_json=st.booleans())
def test_a_valid_manifest_with_one_value_replaced_never_raises_anything_else(
    data: st.DataObject, as_json: bool
) -> None:
    document = issue_document()
    path = data.draw(st.sampled_from(_paths(document)))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(STRUCTURES)
    if as_json:
        check_outcome(json.dumps(document), "fuzz.json")
    else:
        check_outcome(yaml.safe_dump(document, allow_unicode=True), "fuzz.yaml")


def test_a_misspelt_integration_still_has_its_config_checked_in_the_same_pass() -> None:
    text = with_targets(
        "- {project: web, environments: [prod], store: s}",
        "version: 1\nstores:\n  s:\n    integration: rediss\n"
        "    config: {host: h, prot: 6379, password: plain}\n",
    )
    messages = [problem.message for problem in _error(loads_manifest, text)]
    assert messages == [
        'unknown integration "rediss" (expected redis or dynamodb; did you mean "redis"?)',
        'unknown key (did you mean "port"?)',
        "password must be a ${VAR} or ${file:PATH} reference: secrets do not belong in a manifest",
    ]


# -- references not set, for what only reads -----------------------------------------------


UNSET_REFERENCES = """\
version: 1
stores:
  cache:
    integration: redis
    config: {host: '${REDIS_HOST}', password: '${LD_REDIS_PASSWORD}', tlsEnabled: '${TLS}'}
  table:
    integration: dynamodb
    config:
      tableName: segments
      region: ${AWS_REGION_OF_TABLE}
      roleArn: ${ROLE_ARN}
      externalId: ${LD_DYNAMODB_EXTERNAL_ID}
targets:
  - {project: web, environments: [prod], store: cache}
  - {project: web, environments: [prod], store: table}
"""


def test_unset_variables_are_named_not_refused_when_secrets_are_not_required() -> None:
    loaded = load(UNSET_REFERENCES, env={}, require_secrets=False)
    assert loaded.unset_references == {
        "${AWS_REGION_OF_TABLE}": ("table",),
        "${LD_DYNAMODB_EXTERNAL_ID}": ("table",),
        "${LD_REDIS_PASSWORD}": ("cache",),
        "${REDIS_HOST}": ("cache",),
        "${ROLE_ARN}": ("table",),
        "${TLS}": ("cache",),
    }
    cache = loaded.store("cache").config
    assert cache.unset == {"host", "password", "tls_enabled"}
    # A placeholder is never sent, nor shown: repr shows the reference.
    with pytest.raises(ConfigError, match=r"not set: \$\{LD_REDIS_PASSWORD\}"):
        cache.to_api()
    assert "host='${REDIS_HOST}'" in repr(cache)
    assert cache.known_values() == {"port": "6379", "username": ""}


def test_unset_variables_are_still_problems_by_default() -> None:
    assert problems(UNSET_REFERENCES, env={}) == [
        "m.yaml:5: stores.cache.config.host: environment variable REDIS_HOST is not set",
        "m.yaml:5: stores.cache.config.password: environment variable LD_REDIS_PASSWORD is not set",
        "m.yaml:5: stores.cache.config.tlsEnabled: environment variable TLS is not set",
        "m.yaml:10: stores.table.config.region: environment variable AWS_REGION_OF_TABLE is not "
        "set",
        "m.yaml:11: stores.table.config.roleArn: environment variable ROLE_ARN is not set",
        "m.yaml:12: stores.table.config.externalId: environment variable "
        "LD_DYNAMODB_EXTERNAL_ID is not set",
    ]


def test_references_must_be_well_formed_and_allowed_even_when_not_required() -> None:
    text = UNSET_REFERENCES.replace("${REDIS_HOST}", "${GITHUB_TOKEN}").replace(
        "${ROLE_ARN}", "${ROLE ARN}"
    )
    found = problems(text, env={}, require_secrets=False)
    assert len(found) == 2
    assert "${GITHUB_TOKEN} is named like another system's credential" in found[0]
    assert "malformed reference" in found[1]
