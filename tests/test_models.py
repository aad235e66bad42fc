"""Store configs validate at construction, serialise as the API expects, and hide secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from ldbulk import (
    ConfigError,
    CreateIntegrationRequest,
    DynamoDBConfig,
    Integration,
    RedisConfig,
    Target,
)
from ldbulk.api.models import (
    DYNAMODB_REGIONS,
    api_name,
    check_field,
    form_fields,
    is_required,
    is_secret,
    redacted_on_read,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/launchdarkly-big-segments"
PASSWORD = "s3cr3t-redis-p4ss"
EXTERNAL_ID = "ext-7f3a9c2e1b"

# The `allowedValues` of the dynamodb manifest's `region` formVariable, copied by hand so the
# test does not read the list it checks.
MANIFEST_REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
]


def dynamodb(**overrides: Any) -> DynamoDBConfig:
    fields: dict[str, Any] = {
        "table_name": "ld-big-segments",
        "region": "us-east-1",
        "role_arn": ROLE_ARN,
        "external_id": EXTERNAL_ID,
    }
    fields.update(overrides)
    return DynamoDBConfig(**fields)


# -- RedisConfig ---------------------------------------------------------------------------


def test_redis_defaults_match_the_manifest() -> None:
    config = RedisConfig(host="redis.example.com")
    assert config.port == 6379
    assert config.username == ""
    assert config.password == ""
    assert config.tls_enabled is False
    assert config.integration_key == "redis"


def test_redis_host_is_required() -> None:
    with pytest.raises(TypeError):
        RedisConfig()  # type: ignore[call-arg]


@pytest.mark.parametrize("host", ["", "   ", None, 42])
def test_redis_rejects_an_empty_or_non_string_host_naming_the_field(host: object) -> None:
    with pytest.raises(ConfigError, match=r"^host: must be a non-empty string"):
        RedisConfig(host=host)  # type: ignore[arg-type]


@pytest.mark.parametrize("port", [1, 6379, 65535])
def test_redis_accepts_ports_in_range(port: int) -> None:
    assert RedisConfig(host="h", port=port).port == port


@pytest.mark.parametrize(("given", "expected"), [("6379", 6379), (" 6380 ", 6380), ("1", 1)])
def test_redis_accepts_a_port_given_as_a_string_like_the_api_stores_it(
    given: str, expected: int
) -> None:
    assert RedisConfig(host="h", port=given).port == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "port", [0, -1, 65536, 70000, "0", "65536", "", "-1", "abc", "1e3", "²", 6379.0, True, None]
)
def test_redis_rejects_a_port_out_of_range_or_not_an_integer(port: object) -> None:
    with pytest.raises(ConfigError, match=r"^port: must be an integer from 1 to 65535"):
        RedisConfig(host="h", port=port)  # type: ignore[arg-type]


@pytest.mark.parametrize("tls", ["true", 1, 0, None, "yes"])
def test_redis_tls_enabled_must_be_a_real_boolean(tls: object) -> None:
    with pytest.raises(ConfigError, match=r"^tls_enabled: must be true or false"):
        RedisConfig(host="h", tls_enabled=tls)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["username", "password"])
def test_redis_username_and_password_must_be_strings(field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: must be a string"):
        RedisConfig(host="h", **{field: 123})


def test_redis_to_api_sends_port_as_string_and_tls_as_tlsEnabled() -> None:
    config = RedisConfig(
        host="redis.example.com", port=6380, username="ld", password=PASSWORD, tls_enabled=True
    )
    assert config.to_api() == {
        "host": "redis.example.com",
        "port": "6380",
        "username": "ld",
        "password": PASSWORD,
        "tlsEnabled": True,
    }


def test_redis_password_is_absent_from_repr_and_str() -> None:
    config = RedisConfig(host="redis.example.com", password=PASSWORD)
    for text in (repr(config), str(config)):
        assert PASSWORD not in text
        assert "password='***'" in text
        assert "redis.example.com" in text


def test_redis_repr_tells_an_unset_password_from_a_set_one() -> None:
    assert "password=''" in repr(RedisConfig(host="h"))


def test_redis_config_is_frozen_and_keyword_only() -> None:
    config = RedisConfig(host="h")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.host = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RedisConfig("h")  # type: ignore[misc]


# -- DynamoDBConfig ------------------------------------------------------------------------


def test_dynamodb_allows_exactly_the_17_manifest_regions() -> None:
    assert sorted(DYNAMODB_REGIONS) == sorted(MANIFEST_REGIONS)
    assert len(DYNAMODB_REGIONS) == 17


@pytest.mark.parametrize("region", MANIFEST_REGIONS)
def test_dynamodb_accepts_every_manifest_region(region: str) -> None:
    assert dynamodb(region=region).region == region


@pytest.mark.parametrize("region", ["us-east-3", "US-EAST-1", "eu-south-1", "", "af-south-1"])
def test_dynamodb_rejects_a_region_outside_the_manifest_naming_the_field(region: str) -> None:
    with pytest.raises(ConfigError, match=r"^region: .* is not a region the dynamodb integration"):
        dynamodb(region=region)


@pytest.mark.parametrize(
    "arn",
    [
        ROLE_ARN,
        "arn:aws:iam::123456789012:role/path/to/ld-role",
        "arn:aws-us-gov:iam::123456789012:role/ld",
        "arn:aws-cn:iam::123456789012:role/ld+role=x,y.z@a_b-c",
    ],
)
def test_dynamodb_accepts_iam_role_arns(arn: str) -> None:
    assert dynamodb(role_arn=arn).role_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "role/ld",
        "arn:aws:iam::12345678901:role/ld",  # 11-digit account
        "arn:aws:iam::123456789012:user/ld",  # a user, not a role
        "arn:aws:iam::123456789012:role/",  # no role name
        "arn:aws:s3:::bucket",
        "arn:aws:iam::123456789012:role/ld role",  # space is not allowed in IAM names
        f"{ROLE_ARN}\n",
        None,
    ],
)
def test_dynamodb_rejects_a_role_arn_that_is_not_an_iam_role(arn: object) -> None:
    with pytest.raises(ConfigError, match=r"^role_arn: .* is not an IAM role ARN"):
        dynamodb(role_arn=arn)


@pytest.mark.parametrize("external_id", ["", "  ", None])
def test_dynamodb_external_id_must_be_non_empty(external_id: object) -> None:
    with pytest.raises(ConfigError, match=r"^external_id: must be a non-empty string"):
        dynamodb(external_id=external_id)


@pytest.mark.parametrize("table_name", ["", " ", None])
def test_dynamodb_table_name_must_be_non_empty(table_name: object) -> None:
    with pytest.raises(ConfigError, match=r"^table_name: must be a non-empty string"):
        dynamodb(table_name=table_name)


@pytest.mark.parametrize("missing", ["table_name", "region", "role_arn", "external_id"])
def test_dynamodb_requires_all_four_fields(missing: str) -> None:
    fields = {
        "table_name": "t",
        "region": "us-east-1",
        "role_arn": ROLE_ARN,
        "external_id": EXTERNAL_ID,
    }
    del fields[missing]
    with pytest.raises(TypeError, match=missing):
        DynamoDBConfig(**fields)


def test_dynamodb_to_api_uses_the_manifest_keys() -> None:
    assert dynamodb(region="eu-west-1").to_api() == {
        "tableName": "ld-big-segments",
        "region": "eu-west-1",
        "roleArn": ROLE_ARN,
        "externalId": EXTERNAL_ID,
    }
    assert dynamodb().integration_key == "dynamodb"


def test_dynamodb_external_id_is_absent_from_repr_and_str() -> None:
    config = dynamodb()
    for text in (repr(config), str(config)):
        assert EXTERNAL_ID not in text
        assert "external_id='***'" in text
        assert ROLE_ARN in text


def test_config_errors_never_quote_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        dynamodb(external_id="   ")
    assert "external_id" in str(info.value)
    with pytest.raises(ConfigError) as info:
        RedisConfig(host="h", password=b"bytes-secret")  # type: ignore[arg-type]
    assert "bytes-secret" not in str(info.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# -- values from references ----------------------------------------------------------------

HOST = "10.1.2.3"


def test_repr_shows_the_reference_of_any_field_instead_of_its_value() -> None:
    redis = RedisConfig(
        host=HOST,
        username="ld-user",
        password=PASSWORD,
        references={"host": "${REDIS_HOST}", "username": "${file:secrets/user}"},
    )
    dynamo = dynamodb(
        table_name="table-from-env", references={"table_name": "${TABLE}", "role_arn": "${ROLE}"}
    )
    for text in (repr(redis), str(redis), repr(Target(project="p", environment="e", config=redis))):
        assert HOST not in text and "ld-user" not in text and PASSWORD not in text
        assert "host='${REDIS_HOST}'" in text and "username='${file:secrets/user}'" in text
        assert "password='***'" in text and "port=6379" in text
    assert "table-from-env" not in repr(dynamo) and ROLE_ARN not in repr(dynamo)
    assert "table_name='${TABLE}'" in repr(dynamo) and "role_arn='${ROLE}'" in repr(dynamo)


def test_references_change_neither_equality_nor_what_is_sent() -> None:
    plain = RedisConfig(host=HOST, password=PASSWORD)
    referenced = RedisConfig(host=HOST, password=PASSWORD, references={"host": "${REDIS_HOST}"})
    assert plain == referenced and hash(plain) == hash(referenced)
    assert referenced.to_api() == plain.to_api()
    assert referenced.to_api()["host"] == HOST


def test_references_must_name_fields_of_the_config() -> None:
    with pytest.raises(ConfigError, match=r"^references: 'hostname' is not a field"):
        RedisConfig(host="h", references={"hostname": "${H}"})
    with pytest.raises(ConfigError, match=r"^references: the reference of host"):
        RedisConfig(host="h", references={"host": ""})
    with pytest.raises(ConfigError, match=r"^references: must map"):
        RedisConfig(host="h", references=["host"])  # type: ignore[arg-type]


def test_references_are_a_copy_of_what_was_given() -> None:
    given = {"host": "${REDIS_HOST}"}
    config = RedisConfig(host=HOST, references=given)
    given["host"] = "${OTHER}"
    assert config.references == {"host": "${REDIS_HOST}"}


def test_redact_replaces_referenced_values_and_secrets_in_any_text() -> None:
    redis = RedisConfig(
        host=HOST,
        port=6390,
        username="ld",
        password=PASSWORD,
        tls_enabled=True,
        references={"host": "${REDIS_HOST}", "port": "${PORT}", "tls_enabled": "${TLS}"},
    )
    message = f"cannot connect to {HOST}:6390 as ld with {PASSWORD} (tls true)"
    assert redis.redact(message) == (
        "cannot connect to ${REDIS_HOST}:${PORT} as ld with *** (tls true)"
    )
    dynamo = dynamodb(references={"role_arn": "${ROLE}"})
    assert dynamo.redact(f"AssumeRole {ROLE_ARN} with {EXTERNAL_ID} denied") == (
        "AssumeRole ${ROLE} with *** denied"
    )


def test_redact_prefers_the_longest_value_and_never_rewrites_a_replacement() -> None:
    config = RedisConfig(
        host="ab",
        username="abc",
        password="$",
        references={"host": "${H}", "username": "${U}"},
    )
    # "abc" wins over its prefix "ab"; the "$" of an inserted ${H} is not redacted again.
    assert config.redact("abc ab $") == "${U} ${H} ***"


def test_redact_leaves_text_alone_when_nothing_is_sensitive() -> None:
    assert RedisConfig(host="h").redact("h is down") == "h is down"


# -- the field table -----------------------------------------------------------------------


def field_facts(cls: type, fact: Callable[[attrs.Attribute[Any]], bool]) -> set[str]:
    return {api_name(field) for field in form_fields(cls) if fact(field)}


def test_field_table_keeps_both_secrets_apart_from_what_launchdarkly_redacts() -> None:
    # ldbulk hides both; the formVariables mark only the redis password isSecret.
    assert field_facts(RedisConfig, is_secret) == {"password"}
    assert field_facts(DynamoDBConfig, is_secret) == {"externalId"}
    assert field_facts(RedisConfig, redacted_on_read) == {"password"}
    assert field_facts(DynamoDBConfig, redacted_on_read) == set()


def test_field_table_requires_what_the_manifests_do_not_mark_optional() -> None:
    assert field_facts(RedisConfig, is_required) == {"host"}
    every = {"tableName", "region", "roleArn", "externalId"}
    assert field_facts(DynamoDBConfig, is_required) == every


def test_check_field_converts_and_gives_the_reason_without_the_field_name() -> None:
    port = attrs.fields(RedisConfig).port
    assert check_field(port, "6390") == (6390, None)
    assert check_field(port, "70000") == (70000, "must be an integer from 1 to 65535, got 70000")
    assert check_field(attrs.fields(DynamoDBConfig).table_name, " ")[1] == (
        "must be a non-empty string"
    )


# -- Create request ------------------------------------------------------------------------


def test_create_request_leaves_out_unset_optional_fields() -> None:
    body = CreateIntegrationRequest(config=RedisConfig(host="h")).to_api()
    assert body == {"config": RedisConfig(host="h").to_api(), "on": False}


def test_create_request_sends_tags_as_a_list_and_name() -> None:
    body = CreateIntegrationRequest(
        config=dynamodb(), on=True, tags=("a", "b"), name="store"
    ).to_api()
    assert body["on"] is True
    assert body["tags"] == ["a", "b"]
    assert body["name"] == "store"
    assert body["config"]["tableName"] == "ld-big-segments"


def test_create_request_repr_hides_the_config_secret() -> None:
    request = CreateIntegrationRequest(config=RedisConfig(host="h", password=PASSWORD))
    assert PASSWORD not in repr(request)


# -- Integration ---------------------------------------------------------------------------


def test_integration_repr_shows_config_keys_but_never_values() -> None:
    integration = Integration(
        id="abc",
        integration_key="redis",
        project_key="p",
        environment_key="e",
        config={"host": "redis.internal", "password": PASSWORD},
    )
    text = repr(integration)
    assert PASSWORD not in text
    assert "redis.internal" not in text
    assert "'password': ..." in text
    assert "'host': ..." in text
    assert str(integration) == text


def test_integration_repr_without_config_says_none() -> None:
    integration = Integration(id="i", integration_key="redis", project_key="p", environment_key="e")
    assert "config=None" in repr(integration)


# -- Target --------------------------------------------------------------------------------


def test_target_key_is_project_environment_and_integration_key() -> None:
    redis = Target(project="p", environment="e", config=RedisConfig(host="h"))
    dynamo = Target(project="p", environment="e", config=dynamodb())
    assert redis.key == ("p", "e", "redis")
    assert dynamo.key == ("p", "e", "dynamodb")
    assert redis.integration_key == "redis"


def test_targets_with_different_configs_for_the_same_store_share_a_key() -> None:
    first = Target(project="p", environment="e", config=RedisConfig(host="a"))
    second = Target(project="p", environment="e", config=RedisConfig(host="b", port=6380))
    assert first != second
    assert first.key == second.key


def test_target_repr_hides_the_store_secret() -> None:
    target = Target(project="p", environment="e", config=RedisConfig(host="h", password=PASSWORD))
    assert PASSWORD not in repr(target)


@pytest.mark.parametrize("bad", ["", ".", "..", "-lead", "has/slash", "sp ace", "x" * 257, 7])
@pytest.mark.parametrize("field", ["project", "environment"])
def test_target_refuses_a_key_launchdarkly_cannot_have(field: str, bad: Any) -> None:
    fields: dict[str, Any] = {"project": "p", "environment": "e", field: bad}
    with pytest.raises(ConfigError, match=f"^{field}: "):
        Target(config=RedisConfig(host="h"), **fields)


def test_target_accepts_every_character_a_key_may_have() -> None:
    target = Target(project="a.B_9-z", environment="0" * 256, config=RedisConfig(host="h"))
    assert target.project == "a.B_9-z"
