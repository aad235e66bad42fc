"""``check_stores`` against real redis-server processes on loopback: each failure kind named in
words, and the passing cases (password, ACL user, verified TLS)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from check_servers import (
    ACL_PASSWORD,
    ACL_USER,
    PASSWORD,
    REDIS_SERVER,
    SKIP_REASON,
    RedisServers,
    free_port,
    redis_servers,
)

from ldbulk.api.models import RedisConfig, Target
from ldbulk.check import StepResult, StoreCheck, check_stores, split_targets

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServers]:
    with redis_servers(tmp_path_factory.mktemp("redis")) as started:
        yield started


async def check(config: RedisConfig, servers: RedisServers, **options: object) -> StoreCheck:
    options.setdefault("cafile", str(servers.ca_file))
    (result,) = await check_stores([config], timeout_s=3, **options)  # type: ignore[arg-type]
    return result


def results(check: StoreCheck) -> dict[str, str]:
    return {step.name: step.result.value for step in check.steps}


async def test_a_primary_with_its_password_passes_every_step(servers: RedisServers) -> None:
    config = RedisConfig(host="127.0.0.1", port=servers.primary_port, password=PASSWORD)
    result = await check(config, servers)
    assert result.ok, result
    assert results(result) == {
        "dns": "ok", "tcp": "ok", "tls": "not_checked", "auth": "ok", "ping": "ok",
        "role": "ok", "version": "ok",
    }
    assert result.step("version").message.startswith("Redis ")
    assert result.step("role").message == "primary (writable)"
    assert result.reason is None


async def test_an_acl_user_with_its_password_passes(servers: RedisServers) -> None:
    config = RedisConfig(
        host="127.0.0.1", port=servers.primary_port, username=ACL_USER, password=ACL_PASSWORD
    )
    result = await check(config, servers)
    assert result.ok, result
    assert result.step("auth").message == f"accepted user {ACL_USER}"


async def test_tls_is_verified_against_the_given_ca(servers: RedisServers) -> None:
    config = RedisConfig(
        host="localhost", port=servers.tls_port, password=PASSWORD, tls_enabled=True
    )
    result = await check(config, servers)
    assert result.ok, result
    assert result.step("tls").message.startswith("certificate verified")


async def test_a_certificate_from_another_ca_fails_verification(servers: RedisServers) -> None:
    config = RedisConfig(
        host="127.0.0.1", port=servers.tls_port, password=PASSWORD, tls_enabled=True
    )
    result = await check(config, servers, cafile=str(servers.other_ca_file))
    assert not result.ok
    assert result.step("tls").result is StepResult.FAILED
    assert result.step("tls").message.startswith("TLS: certificate verify failed")
    # Nothing after a failed handshake is tried, and the output says so.
    assert result.step("auth").message == "not checked: an earlier step failed"


async def test_tls_against_a_plain_port_fails_with_a_hint(servers: RedisServers) -> None:
    config = RedisConfig(host="127.0.0.1", port=servers.primary_port, tls_enabled=True)
    (result,) = await check_stores([config], timeout_s=0.5, cafile=str(servers.ca_file))
    assert result.reason == (
        "tls: timed out after 0.5 s (does the port speak TLS? A plain Redis port waits for more)"
    )


async def test_a_name_that_does_not_exist_is_name_not_found(servers: RedisServers) -> None:
    config = RedisConfig(host="no-such-redis.invalid", port=6379)
    result = await check(config, servers)
    assert result.reason == "dns: name not found: no-such-redis.invalid"
    assert results(result)["tcp"] == "not_checked"


async def test_a_closed_port_is_connection_refused(servers: RedisServers) -> None:
    port = free_port()
    result = await check(RedisConfig(host="127.0.0.1", port=port), servers)
    assert result.reason == f"tcp: connection refused (port {port})"


async def test_a_wrong_password_is_wrongpass(servers: RedisServers) -> None:
    config = RedisConfig(host="127.0.0.1", port=servers.primary_port, password="not-it-3c9a1e")
    result = await check(config, servers)
    assert result.reason == "auth: WRONGPASS: the server refused the password"


async def test_a_wrong_acl_password_is_wrongpass(servers: RedisServers) -> None:
    config = RedisConfig(
        host="127.0.0.1", port=servers.primary_port, username=ACL_USER, password="not-it-77f0"
    )
    result = await check(config, servers)
    assert result.reason == "auth: WRONGPASS: the server refused the username and password"


async def test_no_password_where_one_is_required_is_noauth(servers: RedisServers) -> None:
    result = await check(RedisConfig(host="127.0.0.1", port=servers.primary_port), servers)
    assert result.reason == "ping: NOAUTH: the server requires a password and the store gives none"


async def test_a_replica_is_a_read_only_replica(servers: RedisServers) -> None:
    result = await check(RedisConfig(host="127.0.0.1", port=servers.replica_port), servers)
    assert not result.ok
    assert result.step("role").message.startswith("read-only replica")
    assert results(result)["ping"] == "ok"


async def test_plain_tcp_to_a_tls_port_says_it_may_expect_tls(servers: RedisServers) -> None:
    result = await check(RedisConfig(host="127.0.0.1", port=servers.tls_port), servers)
    assert result.step("auth").result is StepResult.FAILED
    assert "does the port expect TLS?" in result.step("auth").message


async def test_each_distinct_store_is_checked_once_whatever_its_references(
    servers: RedisServers,
) -> None:
    port = servers.primary_port
    same = [
        RedisConfig(host="127.0.0.1", port=port, password=PASSWORD),
        RedisConfig(
            host="127.0.0.1", port=str(port), password=PASSWORD,  # type: ignore[arg-type]
            references={"password": "${OTHER_NAME}"},
        ),
    ]
    other = RedisConfig(host="127.0.0.1", port=port, password="not-it-3c9a1e")
    checks = await check_stores([*same, other], timeout_s=3)
    assert [check.ok for check in checks] == [True, False]
    targets = [
        Target(project="p", environment=env, config=config)
        for env, config in (("a", same[1]), ("b", other), ("c", same[0]))
    ]
    passed, failed = split_targets(targets, checks)
    assert [t.environment for t in passed] == ["a", "c"]
    assert [(t.environment, c.reason) for t, c in failed] == [
        ("b", "auth: WRONGPASS: the server refused the password")
    ]


async def test_no_secret_in_any_result_repr_or_json(servers: RedisServers, tmp_path: Path) -> None:
    wrong = "wrong-pw-5e2d81"
    configs = [
        RedisConfig(host="127.0.0.1", port=servers.primary_port, password=PASSWORD),
        RedisConfig(host="127.0.0.1", port=servers.primary_port, password=wrong),
        RedisConfig(
            host="127.0.0.1", port=servers.tls_port, username=ACL_USER, password=ACL_PASSWORD,
            tls_enabled=True,
        ),
        RedisConfig(host="127.0.0.1", port=servers.tls_port, password=wrong),
    ]
    checks = await check_stores(configs, timeout_s=3, cafile=str(servers.ca_file))
    everything = repr(checks) + str(checks) + json.dumps([c.to_json() for c in checks])
    for secret in (PASSWORD, ACL_PASSWORD, wrong):
        assert secret not in everything
