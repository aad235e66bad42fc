"""Preflight the stores themselves, before LaunchDarkly is told about them.

LaunchDarkly does not test a store when an integration is created: a wrong host, password, TLS
setting or key schema shows up hours later as an unsynced store. :func:`check_stores` checks each
distinct store from this machine, concurrently, each within a timeout:

- Redis: DNS, TCP, TLS (verified), AUTH, PING, ROLE (a replica fails: LaunchDarkly writes),
  server version.
- DynamoDB: DescribeTable in the store's region (exists, ACTIVE, key schema ``namespace`` (S) +
  ``key`` (S)), the role ARN's form, and its trust policy's ``sts:ExternalId`` condition when
  ``iam:GetRole`` is allowed.

A check never raises for what it finds: every failure is a step's result, in words. Secrets
(the Redis password, the DynamoDB external id) are used, never shown. The Redis and AWS clients
are the ``check`` extra (``pip install 'ldbulk[check]'``), imported only when a store of theirs
is checked.

For ``apply``: check the manifests' stores, then skip the targets whose store failed::

    checks = await check_stores(stores_in_use(manifests), timeout_s=5.0)
    go, skip = split_targets(targets, checks)   # skip: [(target, check)], check.reason says why
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from ldbulk.api.models import DynamoDBConfig, RedisConfig, StoreConfig
from ldbulk.check.model import (
    CHECK_VERSION,
    DYNAMODB_STEPS,
    NOTES,
    REDIS_STEPS,
    STEPS,
    TIMEOUT_HINTS,
    DistinctStore,
    Step,
    StepLog,
    StepResult,
    StoreCheck,
    check_for,
    checks_to_json,
    distinct_stores,
    same_store,
    shown,
)
from ldbulk.errors import ConfigError
from ldbulk.manifest import ManifestSet, Store
from ldbulk.text import printable

if TYPE_CHECKING:
    from aiobotocore.session import AioSession  # type: ignore[import-untyped]

DEFAULT_TIMEOUT: Final = 5.0
EXTRA_HINT: Final = "ldbulk check needs the check extra: pip install 'ldbulk[check]'"

__all__ = [
    "CHECK_VERSION",
    "DEFAULT_TIMEOUT",
    "DYNAMODB_STEPS",
    "REDIS_STEPS",
    "DistinctStore",
    "Step",
    "StepResult",
    "StoreCheck",
    "check_for",
    "check_stores",
    "checks_to_json",
    "distinct_stores",
    "same_store",
    "split_targets",
    "stores_in_use",
]


class _HasConfig(Protocol):
    """Anything with a store config: a :class:`~ldbulk.api.models.Target`, a manifest store."""

    @property
    def config(self) -> StoreConfig: ...


T = TypeVar("T", bound=_HasConfig)


async def check_stores(
    stores: Iterable[Store | StoreConfig],
    *,
    timeout_s: float = DEFAULT_TIMEOUT,
    cafile: str | None = None,
    aws_endpoint_url: str | None = None,
) -> list[StoreCheck]:
    """Check each distinct store of ``stores`` (manifest stores or bare configs), concurrently,
    each within ``timeout_s`` seconds; one :class:`StoreCheck` per distinct store, in the order
    first seen.

    ``cafile``: verify Redis TLS against this CA bundle instead of the system's (verification
    is never off). ``aws_endpoint_url``: send the AWS calls there (a local emulator) instead of
    where botocore would. Raises :class:`~ldbulk.errors.ConfigError` when a store's client
    library (the ``check`` extra) is not installed; nothing else.
    """
    if timeout_s <= 0:
        raise ConfigError(f"timeout: must be positive, got {timeout_s!r}")
    distinct = distinct_stores(stores)
    session = None
    try:
        if any(isinstance(store.config, RedisConfig) for store in distinct):
            import redis.asyncio  # noqa: F401
        if any(isinstance(store.config, DynamoDBConfig) for store in distinct):
            from aiobotocore.session import get_session

            session = get_session()
    except ImportError:
        raise ConfigError(EXTRA_HINT) from None
    return list(
        await asyncio.gather(
            *(
                _check_one(
                    store,
                    timeout_s=timeout_s,
                    cafile=cafile,
                    session=session,
                    aws_endpoint_url=aws_endpoint_url,
                )
                for store in distinct
            )
        )
    )


def stores_in_use(manifests: ManifestSet) -> list[Store]:
    """The stores the manifests' target lines use (a store no line names is never provisioned),
    in the order first used."""
    used: dict[str, Store] = {}
    for selector in manifests.selectors:
        used.setdefault(selector.store.name, selector.store)
    return list(used.values())


def split_targets(
    targets: Iterable[T], checks: Sequence[StoreCheck]
) -> tuple[list[T], list[tuple[T, StoreCheck]]]:
    """The targets whose store passed (or was not checked), and those whose store failed, each
    with its check (``check.reason`` says why, ready for a report)."""
    passed: list[T] = []
    failed: list[tuple[T, StoreCheck]] = []
    for target in targets:
        check = check_for(checks, target.config)
        if check is None or check.ok:
            passed.append(target)
        else:
            failed.append((target, check))
    return passed, failed


def _where(config: StoreConfig) -> str:
    if isinstance(config, RedisConfig):
        scheme = "rediss" if config.tls_enabled else "redis"
        user = f"{shown(config, 'username')}@" if config.username else ""
        return f"{scheme}://{user}{shown(config, 'host')}:{shown(config, 'port')}"
    return f"table {shown(config, 'table_name')} in {shown(config, 'region')}"


async def _check_one(
    store: DistinctStore,
    *,
    timeout_s: float,
    cafile: str | None,
    session: AioSession | None,
    aws_endpoint_url: str | None,
) -> StoreCheck:
    config = store.config
    key = config.integration_key
    log = StepLog(STEPS[key])
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await _run(config, log, timeout_s, cafile, session, aws_endpoint_url)
    except TimeoutError:
        log.fail_pending(f"timed out after {timeout_s:g} s", hints=TIMEOUT_HINTS)
    except Exception as exc:  # a check reports what it met; it never ends the others
        log.fail_pending(
            f"unexpected error: {type(exc).__name__}: {config.redact(printable(str(exc)))}"
        )
    return StoreCheck(
        names=store.names,
        integration=key,
        where=printable(_where(config)),
        steps=log.steps(),
        notes=NOTES[key],
        elapsed_s=time.monotonic() - started,
        config=config,
    )


async def _run(
    config: StoreConfig,
    log: StepLog,
    timeout_s: float,
    cafile: str | None,
    session: Any,
    aws_endpoint_url: str | None,
) -> None:
    if isinstance(config, RedisConfig):
        from ldbulk.check.redis import check_redis

        await check_redis(config, log, timeout_s=timeout_s, cafile=cafile)
    else:
        from ldbulk.check.dynamodb import check_dynamodb

        await check_dynamodb(
            config, log, timeout_s=timeout_s, session=session, endpoint_url=aws_endpoint_url
        )
