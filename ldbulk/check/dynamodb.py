"""Check a DynamoDB store from this machine: the table, and the role LaunchDarkly assumes.

The AWS calls use aiobotocore with the credential chain the AWS CLI uses (environment,
``~/.aws``, SSO, instance or task role) and the endpoints botocore picks, including
``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_DYNAMODB``; ``endpoint_url`` overrides them all (a
local emulator). ``DescribeTable`` proves the table exists in the store's region, is ACTIVE and
has the key schema LaunchDarkly requires. The role ARN is checked for form and, when the caller
may call ``iam:GetRole``, its trust policy for an ``sts:ExternalId`` condition naming the store's
external id. Whether LaunchDarkly can assume the role only LaunchDarkly can find out.

An answer that is not AWS's (no AWS error code, or a body botocore cannot parse: a proxy's page,
a wrong endpoint) is not quoted, only said to be no AWS answer: botocore would put its body in
the message, and check's output is read by people and kept by CI.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, Final

# aiobotocore and botocore ship no type information.
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import AioSession  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    NoCredentialsError,
)
from botocore.parsers import ResponseParserError  # type: ignore[import-untyped]

from ldbulk.api.models import DynamoDBConfig
from ldbulk.check.model import StepLog
from ldbulk.text import printable

# What LaunchDarkly requires of the table: partition key `namespace`, sort key `key`, strings.
REQUIRED_KEYS: Final = (("HASH", "namespace", "S"), ("RANGE", "key", "S"))

# arn:<partition>:iam::<account>:role/<optional path/><name>: groups account, path, name.
ROLE_ARN: Final = re.compile(
    r"arn:aws[a-zA-Z-]*:iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]+)"
)

# Errors that mean the caller may not make the call (not that the thing is wrong).
_DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def _config(timeout_s: float) -> AioConfig:
    # Two attempts: a throttled or dropped call is retried once, and the check's own timeout
    # bounds the whole store anyway.
    return AioConfig(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 2, "mode": "standard"},
    )


def _aws_error(config: DynamoDBConfig, exc: Exception) -> tuple[str, str]:
    """(error code, message in words) of a botocore exception, redacted; an answer that is
    not AWS's is said to be so, never quoted."""
    if isinstance(exc, ResponseParserError):
        return "NotAws", "not an AWS answer: its body could not be read as one"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if not code or code.isdigit():
            # botocore found no AWS error code, and then takes the body (or the status's
            # name) for the message: whatever answered is not AWS.
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return "NotAws", f"not an AWS answer: HTTP {status} without an AWS error code"
        message = str(error.get("Message", "")) or code
        return code, config.redact(printable(f"{code}: {message}"))
    if isinstance(exc, NoCredentialsError):
        return "NoCredentials", (
            "no AWS credentials found (looked where the AWS CLI looks: environment, "
            "~/.aws, SSO, instance or task role)"
        )
    return type(exc).__name__, config.redact(printable(str(exc)))


async def check_dynamodb(
    config: DynamoDBConfig,
    log: StepLog,
    *,
    timeout_s: float,
    session: AioSession,
    endpoint_url: str | None = None,
) -> None:
    """Run the DynamoDB steps against ``config``, recording each in ``log``. The table steps
    and the role steps are independent: both are checked, whatever the other found."""

    def connect(service: str) -> Any:
        """An AWS client of ``service`` in the store's region (an async context manager)."""
        return session.create_client(
            service, region_name=config.region, endpoint_url=endpoint_url,
            config=_config(timeout_s),
        )

    await _table(config, log, connect)
    await _role(config, log, connect)


# Makes an AWS client of a service, in the store's region, with the check's timeouts.
_Connect = Callable[[str], Any]


async def _table(config: DynamoDBConfig, log: StepLog, connect: _Connect) -> None:
    log.start("describe_table")
    async with connect("dynamodb") as dynamodb:
        try:
            answer = await dynamodb.describe_table(TableName=config.table_name)
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            code, words = _aws_error(config, exc)
            if code == "ResourceNotFoundException":
                words = f"table not found in {config.region}"
            elif code in _DENIED:
                words = f"the AWS credentials in use may not describe the table ({words})"
            return log.fail(words)
    table = answer.get("Table", {})
    log.ok(f"found in {config.region}")

    log.start("status")
    status = table.get("TableStatus")
    if status == "ACTIVE":
        log.ok("ACTIVE")
    else:
        log.fail(f"the table is {printable(str(status))}, not ACTIVE")

    log.start("key_schema")
    wanted = _describe_keys(REQUIRED_KEYS)
    found = _keys(table)
    if found == REQUIRED_KEYS:
        log.ok(wanted)
    else:
        log.fail(f"expected {wanted}; the table has {_describe_keys(found) or 'no keys'}")


def _keys(table: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """(key type, name, attribute type) of each key of a DescribeTable answer, HASH first."""
    types = {
        item.get("AttributeName"): item.get("AttributeType")
        for item in table.get("AttributeDefinitions", [])
    }
    keys = [
        (str(item.get("KeyType")), str(item.get("AttributeName")),
         str(types.get(item.get("AttributeName"), "?")))
        for item in table.get("KeySchema", [])
    ]
    return tuple(sorted(keys, key=lambda key: key[0] != "HASH"))


def _describe_keys(keys: tuple[tuple[str, str, str], ...]) -> str:
    kinds = {"HASH": "partition key", "RANGE": "sort key"}
    return ", ".join(
        f"{kinds.get(kind, kind)} {printable(name)!r} ({printable(type_)})"
        for kind, name, type_ in keys
    )


async def _role(config: DynamoDBConfig, log: StepLog, connect: _Connect) -> None:
    log.start("role_arn")
    match = ROLE_ARN.fullmatch(config.role_arn)
    if match is None:
        log.fail("not an IAM role ARN (arn:aws:iam::<12-digit account id>:role/<name>)")
        log.not_checked("not checked: the role ARN is not well formed", "trust_policy")
        return
    account, _, role_name = match.groups()
    log.ok(f"role {role_name!r} in account {account}")

    log.start("trust_policy")
    async with connect("sts") as sts:
        try:
            caller = (await sts.get_caller_identity()).get("Account")
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            code, words = _aws_error(config, exc)
            if code == "NoCredentials":
                return log.not_checked(f"not checked: {words}")
            caller = None
    if caller is not None and caller != account:
        return log.not_checked(
            f"not checked: the role is in account {account}, the AWS credentials in use are "
            f"of account {printable(str(caller))}, where iam:GetRole cannot read it"
        )
    async with connect("iam") as iam:
        try:
            role = (await iam.get_role(RoleName=role_name)).get("Role", {})
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            code, words = _aws_error(config, exc)
            if code in _DENIED or code == "NoCredentials":
                return log.not_checked(f"not checked: iam:GetRole is not allowed ({words})")
            if code == "NoSuchEntity":
                return log.fail(f"no role {role_name!r} in account {account}")
            return log.not_checked(f"not checked: iam:GetRole failed ({words})")
    _trust(config, role.get("AssumeRolePolicyDocument"), log)


def _trust(config: DynamoDBConfig, document: Any, log: StepLog) -> None:
    """Whether the trust policy lets a principal assume the role only with the store's external
    id (the ids are compared, never shown)."""
    if isinstance(document, str):
        try:
            document = json.loads(urllib.parse.unquote(document))
        except ValueError:
            return log.not_checked("not checked: the trust policy is not JSON")
    if not isinstance(document, dict):
        return log.not_checked("not checked: GetRole returned no trust policy")
    statements = _assume_statements(document)
    ids = [value for statement in statements for value in _external_ids(statement)]
    if not ids:
        return log.fail(
            "the trust policy has no sts:ExternalId condition on sts:AssumeRole: LaunchDarkly "
            "requires one"
        )
    if config.external_id not in ids:
        return log.fail(
            "the trust policy's sts:ExternalId condition names another external id than the "
            "store's"
        )
    log.ok("sts:AssumeRole requires the store's external id (sts:ExternalId condition)")


def _assume_statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if any(str(a).lower() in ("sts:assumerole", "sts:*", "*") for a in actions):
            yield statement


def _external_ids(statement: dict[str, Any]) -> Iterator[str]:
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        return
    for tests in condition.values():
        if not isinstance(tests, dict):
            continue
        for key, values in tests.items():
            if str(key).lower() == "sts:externalid":
                yield from (str(v) for v in (values if isinstance(values, list) else [values]))
