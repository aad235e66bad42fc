"""``ldbulk check`` end to end: ``python -m ldbulk check`` subprocesses against real redis-server
processes and moto in server mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from check_servers import (
    ACL_PASSWORD,
    ACL_USER,
    PASSWORD,
    REDIS_SERVER,
    SKIP_REASON,
    RedisServers,
    moto_endpoint,
    redis_servers,
)

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)

EXTERNAL_ID = "ext-id-c41f07"
WRONG_PASSWORD = "wrong-pw-8d02b6"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-a93e",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServers]:
    with redis_servers(tmp_path_factory.mktemp("redis")) as started:
        yield started


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    with moto_endpoint() as url:
        client = boto3.client(
            "dynamodb", endpoint_url=url, region_name="eu-west-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        client.create_table(
            TableName="ld-big-segments",
            KeySchema=[
                {"AttributeName": "namespace", "KeyType": "HASH"},
                {"AttributeName": "key", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "namespace", "AttributeType": "S"},
                {"AttributeName": "key", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="eu-west-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        iam.create_role(
            RoleName="ld-writer",
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::553246055064:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
                }],
            }),
        )
        yield url


def manifest(tmp_path: Path, servers: RedisServers, *, broken: bool) -> Path:
    """Two Redis stores (the second over TLS with an ACL user) and a DynamoDB store; when
    ``broken``, a wrong password, a replica and a missing table as well."""
    stores = f"""
  redis-main:
    integration: redis
    config: {{host: 127.0.0.1, port: {servers.primary_port}, password: "${{LD_REDIS_PASSWORD}}"}}
  redis-tls:
    integration: redis
    config:
      host: localhost
      port: {servers.tls_port}
      username: {ACL_USER}
      password: ${{LD_ACL_PASSWORD}}
      tlsEnabled: true
  dynamo:
    integration: dynamodb
    config:
      tableName: ld-big-segments
      region: eu-west-1
      roleArn: arn:aws:iam::123456789012:role/ld-writer
      externalId: ${{LD_DYNAMODB_EXTERNAL_ID}}
"""
    targets = ["redis-main", "redis-tls", "dynamo"]
    if broken:
        stores += f"""
  redis-wrong:
    integration: redis
    config: {{host: 127.0.0.1, port: {servers.primary_port}, password: "${{LD_WRONG}}"}}
  redis-replica:
    integration: redis
    config: {{host: 127.0.0.1, port: {servers.replica_port}}}
  dynamo-missing:
    integration: dynamodb
    config:
      tableName: ld-missing
      region: eu-west-1
      roleArn: arn:aws:iam::123456789012:role/ld-writer
      externalId: ${{LD_DYNAMODB_EXTERNAL_ID}}
"""
        targets += ["redis-wrong", "redis-replica", "dynamo-missing"]
    lines = "".join(
        f"  - {{project: p, environments: [e{i}], store: {name}}}\n"
        for i, name in enumerate(targets)
    )
    path = tmp_path / "stores.yaml"
    path.write_text(f"version: 1\nstores:{stores}targets:\n{lines}")
    return path


def ldbulk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    secrets = {
        "LD_REDIS_PASSWORD": PASSWORD,
        "LD_ACL_PASSWORD": ACL_PASSWORD,
        "LD_WRONG": WRONG_PASSWORD,
        "LD_DYNAMODB_EXTERNAL_ID": EXTERNAL_ID,
    }
    return subprocess.run(
        [sys.executable, "-m", "ldbulk", *args],
        env=os.environ | AWS_ENV | secrets | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_store_passing_exits_0_with_one_row_each(
    servers: RedisServers, aws: str, tmp_path: Path
) -> None:
    path = manifest(tmp_path, servers, broken=False)
    result = ldbulk(
        "check", str(path), "--ca-bundle", str(servers.ca_file), "--aws-endpoint-url", aws
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == [
        "store", "where", "dns", "tcp", "tls", "auth", "ping", "role", "version", "result"
    ]
    assert lines[2].split() == [
        "redis-main", f"redis://127.0.0.1:{servers.primary_port}",
        "ok", "ok", "-", "ok", "ok", "ok", "ok", "pass",
    ]
    assert lines[3].split()[-5:] == ["ok", "ok", "ok", "ok", "pass"]
    assert any(line.split()[:2] == ["dynamo", "table"] for line in lines)
    assert "3 of 3 store(s) passed." in result.stdout
    assert "LaunchDarkly can assume the role" in result.stdout


@pytest.fixture(scope="module")
def broken_runs(
    servers: RedisServers, aws: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """``check`` of stores with failures, as text and as JSON, with debug logs as JSON; the AWS
    endpoint from the environment, as the AWS CLI takes it."""
    path = manifest(tmp_path_factory.mktemp("broken"), servers, broken=True)
    return {
        output: ldbulk(
            "-vv", "--log-format", "json", "check", str(path),
            "--ca-bundle", str(servers.ca_file), "-o", output, env={"AWS_ENDPOINT_URL": aws},
        )
        for output in ("text", "json")
    }


def test_failures_exit_1_and_json_names_each_one(
    broken_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    result = broken_runs["json"]
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["counts"] == {"total": 6, "passed": 3, "failed": 3}
    reasons = {
        store["names"][0]: next(
            (f"{s['step']}: {s['message']}" for s in store["steps"] if s["result"] == "failed"),
            None,
        )
        for store in document["stores"]
    }
    assert reasons["redis-main"] is None
    assert reasons["redis-wrong"] == "auth: WRONGPASS: the server refused the password"
    assert reasons["redis-replica"] is not None
    assert reasons["redis-replica"].startswith("role: read-only replica")
    assert reasons["dynamo-missing"] == "describe_table: table not found in eu-west-1"
    assert sorted(document["stores"][0]) == [
        "elapsed_s", "integration", "names", "notes", "ok", "steps", "where"
    ]
    assert broken_runs["text"].returncode == 1
    assert "3 of 6 store(s) passed." in broken_runs["text"].stdout


def test_stores_used_twice_are_checked_once(servers: RedisServers, tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    port = servers.primary_port
    config = f'{{host: 127.0.0.1, port: {port}, password: "${{LD_REDIS_PASSWORD}}"}}'
    path.write_text(
        "version: 1\nstores:\n"
        f"  a: {{integration: redis, config: {config}}}\n"
        f"  b: {{integration: redis, config: {config}}}\n"
        "  unused: {integration: redis, config: {host: unused.invalid}}\n"
        "targets:\n  - {project: p, environments: [x], store: a}\n"
        "  - {project: p, environments: [y], store: b}\n"
    )
    result = ldbulk("check", str(path), "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [store["names"] for store in json.loads(result.stdout)["stores"]] == [["a", "b"]]


def test_no_secret_in_any_output_or_log(
    broken_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    everything = "".join(result.stdout + result.stderr for result in broken_runs.values())
    for secret in (PASSWORD, ACL_PASSWORD, WRONG_PASSWORD, EXTERNAL_ID,
                   AWS_ENV["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in everything


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("missing.yaml",), "cannot read file"),
        (("{manifest}", "--timeout", "0"), "--timeout"),
        (("{manifest}", "-o", "xml"), "--output"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    servers: RedisServers, tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    path = manifest(tmp_path, servers, broken=False)
    result = ldbulk("check", *(arg.format(manifest=path) for arg in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stderr
