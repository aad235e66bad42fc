"""One decision for plan and apply: the pure steps, and a property that what a plan says is
what an apply started at the same moment sends (real client, real sandbox on loopback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_cli import EXAMPLE, SandboxProcess, ldbulk, start_sandbox

from ldbulk.api import sansio
from ldbulk.api.models import Integration, RedisConfig, Target
from ldbulk.engine.decide import Action, after_read, before_read
from ldbulk.engine.plan import plan
from ldbulk.engine.provision import Provisioner
from ldbulk.engine.report import Outcome, TargetResult
from ldbulk.engine.seen import Seen
from ldbulk.http.client import Client
from ldbulk.sandbox import Sandbox, SandboxOptions
from ldbulk.sandbox.masking import DEFAULT_MASKED

PROJECT, ENVIRONMENT = "proj-001", "env-001"


def target(**fields: Any) -> Target:
    config = fields.pop("config", RedisConfig(host="redis.internal"))
    return Target(project=PROJECT, environment=ENVIRONMENT, config=config, **fields)


def listed(wish: Target, version: int = 3) -> Integration:
    return Integration(id="i-1", integration_key="redis", project_key=PROJECT,
                       environment_key=ENVIRONMENT, version=version, tags=wish.written_tags)


def settled(result_of: Target, version: int) -> TargetResult:
    return TargetResult(project=PROJECT, environment=ENVIRONMENT, integration="redis",
                        outcome=Outcome.CREATED, integration_id="i-1", version=version)


def test_nothing_listed_is_a_create_whatever_the_flags() -> None:
    for create_only in (False, True):
        assert before_read(target(), None, create_only=create_only) is Action.CREATE


def test_create_only_leaves_what_is_listed_unread() -> None:
    assert before_read(target(), listed(target()), create_only=True) is Action.EXISTS


def test_the_state_spares_the_read_of_what_an_earlier_run_left_at_that_version() -> None:
    wish, seen = target(), Seen(key=b"k" * 32, base_url="https://app.launchdarkly.com")
    seen.record(wish, settled(wish, version=3))
    assert before_read(wish, listed(wish, version=3), seen=seen) is Action.UNCHANGED
    # Moved since, another wish, or rotating (no read can compare a secret): read it.
    assert before_read(wish, listed(wish, version=4), seen=seen) is None
    assert before_read(target(on=True), listed(wish, version=3), seen=seen) is None
    assert before_read(wish, listed(wish, version=3), seen=seen, rotate_secrets=True) is None


def test_the_read_decides_unchanged_or_the_fields_an_update_writes() -> None:
    wish = target(on=True)
    current = attrs_read(wish, host="redis.internal", on=True)
    assert after_read(wish, current).action is Action.UNCHANGED
    moved = attrs_read(wish, host="elsewhere", on=False)
    decision = after_read(wish, moved)
    assert decision.action is Action.UPDATE
    assert decision.fields == ("config.host", "on")
    assert decision.update is not None
    assert decision.update.operations[0] == {"op": "test", "path": "/version", "value": 3}


def attrs_read(wish: Target, *, host: str, on: bool) -> Integration:
    config = {"host": host, "port": "6379", "username": "", "password": "", "tlsEnabled": False}
    return Integration(id="i-1", integration_key="redis", project_key=PROJECT,
                       environment_key=ENVIRONMENT, version=3, on=on, tags=wish.written_tags,
                       config=config)


# -- plan and apply agree, against the sandbox -------------------------------------------------

configs = st.builds(
    RedisConfig,
    host=st.sampled_from(["redis-a.internal", "redis-b.internal"]),
    port=st.sampled_from([6379, 6380]),
    username=st.sampled_from(["", "svc"]),
    password=st.sampled_from(["", "pw-one", "pw-two"]),
    tls_enabled=st.booleans(),
)
wishes = st.builds(
    target,
    config=configs,
    on=st.booleans(),
    tags=st.sampled_from([(), ("cache",), ("cache", "eu")]),
    name=st.sampled_from([None, "store a", "store b"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The nightly re-run, every time: the integration as the state file left it.
@example(before=target(), wish=target(), again=True, rotate=False, state=True, touched=False,
         masked=frozenset())
# A server that masks more than the password: what it masks plans as apply does, not compared.
@example(before=target(), wish=target(), again=True, rotate=False, state=False, touched=False,
         masked=frozenset({"host", "username", "port"}))
@given(
    before=st.one_of(st.none(), wishes),
    wish=wishes,
    again=st.booleans(),
    rotate=st.booleans(),
    state=st.booleans(),
    touched=st.booleans(),
    masked=st.frozensets(st.sampled_from(["host", "username", "port"])),
)
def test_what_a_plan_says_is_what_apply_sends(
    before: Target | None,
    wish: Target,
    again: bool,
    rotate: bool,
    state: bool,
    touched: bool,
    masked: frozenset[str],
) -> None:
    """For any integration (or none) and any wish, under any flags: a create is planned exactly
    when apply creates, an update with fields F exactly when apply sends one patch writing F,
    and 'unchanged' exactly when apply writes nothing. ``again``: the wish is the one the
    integration was made from (the nightly re-run). ``masked``: the config keys the server masks
    on read besides the password."""
    if again and before is not None:
        before = wish
    asyncio.run(_plan_then_apply(before, wish, rotate=rotate, state=state, touched=touched,
                                 masked=masked))


async def _plan_then_apply(
    before: Target | None,
    wish: Target,
    *,
    rotate: bool,
    state: bool,
    touched: bool,
    masked: frozenset[str],
) -> None:
    options = SandboxOptions(projects=1, environments=1, masked_fields=DEFAULT_MASKED | masked)
    async with Sandbox(options) as sandbox:
        async with Client(sandbox.token, base_url=sandbox.url) as client:
            seen = Seen(key=b"k" * 32, base_url=client.base_url) if state else None
            if before is not None:
                report = await Provisioner(client).run([before])
                if seen is not None:
                    seen.record(before, report.results[0])
                if touched:  # changed by hand since: the state no longer vouches for it
                    integration = sandbox.integration(*wish.key)
                    assert integration is not None
                    await client.update_integration(
                        *wish.key, integration.id,
                        [{"op": "replace", "path": "/name", "value": "by hand"}],
                    )
            reads = sandbox.stats.count(sansio.ROUTE_GET, 200)
            [item] = await plan(client, [wish], rotate_secrets=rotate, seen=seen)
            planned_reads = sandbox.stats.count(sansio.ROUTE_GET, 200) - reads
            reads = sandbox.stats.count(sansio.ROUTE_GET, 200)
            patches = sandbox.stats.count(sansio.ROUTE_PATCH, 200)
            creates = sandbox.stats.count(sansio.ROUTE_CREATE, 201)
            applied = await Provisioner(client, rotate_secrets=rotate, seen=seen).run([wish])
            [result] = applied.results
            applied_reads = sandbox.stats.count(sansio.ROUTE_GET, 200) - reads
            patched = sandbox.stats.count(sansio.ROUTE_PATCH, 200) - patches
            created = sandbox.stats.count(sansio.ROUTE_CREATE, 201) - creates
    expected = {
        Action.CREATE: (Outcome.CREATED, 0, 1),
        Action.UPDATE: (Outcome.UPDATED, 1, 0),
        Action.UNCHANGED: (Outcome.UNCHANGED, 0, 0),
    }[item.action]
    assert (result.outcome, patched, created) == expected
    assert result.changed == item.fields
    # And it knows what apply knows the same way: a read where apply reads, none where the
    # state vouches for the integration.
    assert planned_reads == applied_reads


def test_plan_with_the_state_file_decides_as_the_nightly_apply_and_leaves_the_file(
    tmp_path: Path,
) -> None:
    """The nightly job's apply --state says 'unchanged' without a read; plan --state with
    the same file says the same, with the same (no) reads, and never writes the file."""
    state = tmp_path / "seen.json"
    with start_sandbox("--projects", "3", "--environments", "4") as sandbox:
        assert ldbulk("apply", str(EXAMPLE), "--state", str(state),
                      sandbox=sandbox).returncode == 0
        written = state.read_bytes()
        reads = _gets(sandbox)
        planned = ldbulk("plan", str(EXAMPLE), "--state", str(state), "-o", "json",
                         "--detailed-exitcode", sandbox=sandbox)
        plan_reads = _gets(sandbox) - reads
        assert state.read_bytes() == written  # plan reads the state file, never writes it
        applied = ldbulk("apply", str(EXAMPLE), "--state", str(state), sandbox=sandbox)
        apply_reads = _gets(sandbox) - reads - plan_reads
    assert planned.returncode == 0, planned.stderr
    summary = json.loads(planned.stdout)["summary"]
    assert summary["unchanged"] == 9 and summary["update"] == 0
    assert plan_reads == apply_reads == 0
    assert applied.returncode == 0


def _gets(sandbox: SandboxProcess) -> int:
    stats = sandbox.get("/_sandbox/stats")["requests"]
    return int(stats.get(sansio.ROUTE_GET, {}).get("200", 0))
