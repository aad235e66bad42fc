"""``check_stores`` against moto in server mode (a real HTTP endpoint on loopback): a correct
table, a wrong key schema, a missing table, a table still CREATING, and the role's trust policy.

moto always describes a table as ACTIVE; the CREATING table is made by changing what moto's
backend answers for that one table (its ``describe``), so the check still reads it over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from check_servers import moto_endpoint

from ldbulk.api.models import DynamoDBConfig
from ldbulk.check import StepResult, StoreCheck, check_stores

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
EXTERNAL_ID = "ext-id-6f19c4"
LAUNCHDARKLY = "arn:aws:iam::553246055064:root"
KEYS = [
    {"AttributeName": "namespace", "KeyType": "HASH"},
    {"AttributeName": "key", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "namespace", "AttributeType": "S"},
    {"AttributeName": "key", "AttributeType": "S"},
]


def trust(condition: dict[str, Any] | None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": LAUNCHDARKLY},
        "Action": "sts:AssumeRole",
    }
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env, moto_endpoint() as url:
        # Fake credentials and nothing else of this machine's AWS setup.
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                     "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", "/nonexistent")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name=REGION)
        for name in ("ld-big-segments", "ld-creating"):
            dynamodb.create_table(
                TableName=name, KeySchema=KEYS, AttributeDefinitions=ATTRIBUTES,
                BillingMode="PAY_PER_REQUEST",
            )
        dynamodb.create_table(
            TableName="ld-wrong-keys",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        _still_creating("ld-creating")
        iam = boto3.client("iam", endpoint_url=url, region_name=REGION)
        iam.create_role(
            RoleName="ld-writer",
            AssumeRolePolicyDocument=trust({"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}),
        )
        iam.create_role(RoleName="ld-no-condition", AssumeRolePolicyDocument=trust(None))
        yield url


def _still_creating(name: str) -> None:
    """Make moto describe one table as CREATING (it creates every table ACTIVE)."""
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[ACCOUNT][REGION].get_table(name)
    describe = table.describe

    def creating(*args: Any, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = describe(*args, **kwargs)
        for body in answer.values():
            body["TableStatus"] = "CREATING"
        return answer

    table.describe = creating  # type: ignore[method-assign]


def store(
    table: str = "ld-big-segments", role: str = "ld-writer", external_id: str = EXTERNAL_ID,
    account: str = ACCOUNT,
) -> DynamoDBConfig:
    return DynamoDBConfig(
        table_name=table, region=REGION, role_arn=f"arn:aws:iam::{account}:role/{role}",
        external_id=external_id,
    )


# Generous: the moto server answers in milliseconds, but on a loaded shared machine a call
# has taken over 5 s. The tests judge what each step concludes, never how fast.
MOTO_TIMEOUT_S = 30


async def check(config: DynamoDBConfig, endpoint: str) -> StoreCheck:
    (result,) = await check_stores([config], timeout_s=MOTO_TIMEOUT_S, aws_endpoint_url=endpoint)
    return result


# The stores checked together, once for the module (concurrently, as ``ldbulk check`` does).
STORES = {
    "correct": store(),
    "wrong keys": store("ld-wrong-keys"),
    "missing": store("ld-nothing-here"),
    "creating": store("ld-creating"),
    "other external id": store(external_id="ext-id-other-0d5e"),
    "no condition": store(role="ld-no-condition"),
    "no role": store(role="ld-nobody"),
    "other account": store(account="210987654321"),
}


@pytest.fixture(scope="module")
def checked(endpoint: str) -> dict[str, StoreCheck]:
    checks = asyncio.run(
        check_stores(STORES.values(), timeout_s=MOTO_TIMEOUT_S, aws_endpoint_url=endpoint)
    )
    assert len(checks) == len(STORES)
    return dict(zip(STORES, checks, strict=True))


def results(check: StoreCheck) -> dict[str, str]:
    return {step.name: step.result.value for step in check.steps}


def test_a_correct_table_and_role_pass_every_step(checked: dict[str, StoreCheck]) -> None:
    result = checked["correct"]
    assert result.ok, result
    assert set(results(result).values()) == {"ok"}
    assert result.step("key_schema").message == (
        "partition key 'namespace' (S), sort key 'key' (S)"
    )
    # What only LaunchDarkly can prove is said, not left out.
    assert any("LaunchDarkly can assume the role" in note for note in result.notes)
    assert result.where == "table ld-big-segments in us-east-1"


def test_a_wrong_key_schema_fails_naming_what_the_table_has(
    checked: dict[str, StoreCheck],
) -> None:
    assert checked["wrong keys"].reason == (
        "key_schema: expected partition key 'namespace' (S), sort key 'key' (S); "
        "the table has partition key 'id' (S)"
    )


def test_a_missing_table_is_not_found_and_the_role_is_still_checked(
    checked: dict[str, StoreCheck],
) -> None:
    result = checked["missing"]
    assert result.reason == "describe_table: table not found in us-east-1"
    assert results(result) == {
        "describe_table": "failed", "status": "not_checked", "key_schema": "not_checked",
        "role_arn": "ok", "trust_policy": "ok",
    }


def test_a_table_still_creating_fails_saying_so(checked: dict[str, StoreCheck]) -> None:
    result = checked["creating"]
    assert result.reason == "status: the table is CREATING, not ACTIVE"
    assert results(result)["key_schema"] == "ok"


def test_a_trust_policy_for_another_external_id_fails(checked: dict[str, StoreCheck]) -> None:
    assert checked["other external id"].reason == (
        "trust_policy: the trust policy's sts:ExternalId condition names another external id "
        "than the store's"
    )


def test_a_trust_policy_without_the_condition_fails(checked: dict[str, StoreCheck]) -> None:
    step = checked["no condition"].step("trust_policy")
    assert step.result is StepResult.FAILED
    assert "no sts:ExternalId condition" in step.message


def test_a_role_that_does_not_exist_fails(checked: dict[str, StoreCheck]) -> None:
    assert checked["no role"].reason == f"trust_policy: no role 'ld-nobody' in account {ACCOUNT}"


def test_a_role_in_another_account_is_not_checked_and_says_why(
    checked: dict[str, StoreCheck],
) -> None:
    result = checked["other account"]
    assert result.ok
    step = result.step("trust_policy")
    assert step.result is StepResult.NOT_CHECKED
    assert step.message.startswith("not checked: the role is in account 210987654321")


def test_the_external_id_never_appears_in_results(checked: dict[str, StoreCheck]) -> None:
    checks = list(checked.values())
    everything = repr(checks) + json.dumps([check.to_json() for check in checks])
    assert EXTERNAL_ID not in everything
    assert "ext-id-other-0d5e" not in everything


async def test_without_get_role_permission_the_trust_policy_is_not_checked(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    iam.create_user(UserName="preflight")
    iam.put_user_policy(
        UserName="preflight",
        PolicyName="describe-only",
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeTable", "sts:GetCallerIdentity"],
                "Resource": "*",
            }],
        }),
    )
    key = iam.create_access_key(UserName="preflight")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with _enforced_iam(endpoint):
        result = await check(store(), endpoint)
    assert result.ok, result
    step = result.step("trust_policy")
    assert step.result is StepResult.NOT_CHECKED
    assert step.message.startswith("not checked: iam:GetRole is not allowed (AccessDenied")
    assert results(result)["describe_table"] == "ok"


async def test_without_credentials_the_table_fails_and_the_role_is_not_checked(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = await check(store(), endpoint)
    assert result.reason is not None
    assert result.reason.startswith("describe_table: no AWS credentials found")
    assert result.step("trust_policy").result is StepResult.NOT_CHECKED


class _enforced_iam:
    """moto checks IAM permissions while inside (it does not by default)."""

    def __init__(self, endpoint: str) -> None:
        self.url = endpoint + "/moto-api/reset-auth"

    def _set(self, value: str) -> None:
        request = urllib.request.Request(
            self.url, data=value.encode(), method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=5).close()

    def __enter__(self) -> None:
        self._set("0")

    def __exit__(self, *exc: object) -> None:
        self._set("inf")
