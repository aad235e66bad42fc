"""While a run is under way the process' young generation is collected less often; after the
last run ends, the process has the collector it had."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from conftest import target

import ldbulk
from ldbulk import Provisioner
from ldbulk.engine.collector import RUN_YOUNG_THRESHOLD, collected_less
from ldbulk.engine.report import TargetResult
from ldbulk.http.client import Client
from ldbulk.sandbox import Sandbox

DEFAULT = (700, 10, 10)


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    """Each test starts from CPython's default and leaves the process' own collector."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(*DEFAULT)
    yield
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def test_the_threshold_is_raised_within_and_put_back_after() -> None:
    with collected_less():
        assert gc.get_threshold() == (RUN_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == DEFAULT


def test_overlapping_runs_put_it_back_after_the_last_ends() -> None:
    first, second = collected_less(), collected_less()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (RUN_YOUNG_THRESHOLD, 10, 10)
    second.__exit__(None, None, None)
    assert gc.get_threshold() == DEFAULT


def test_a_threshold_changed_during_the_run_is_kept() -> None:
    with collected_less():
        gc.set_threshold(2_000, 20, 20)
    assert gc.get_threshold() == (2_000, 20, 20)


def test_a_run_that_fails_puts_it_back() -> None:
    with pytest.raises(RuntimeError), collected_less():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == DEFAULT


@pytest.mark.parametrize(
    "setting", ["disabled", "higher", "zero", "opted out"], ids=lambda setting: setting
)
def test_a_collector_set_apart_is_left_alone(setting: str) -> None:
    expected = {"higher": (100_000, 10, 10), "zero": (0, 10, 10)}.get(setting, DEFAULT)
    gc.set_threshold(*expected)
    if setting == "disabled":
        gc.disable()
    with collected_less(enabled=setting != "opted out"):
        assert gc.get_threshold() == expected
    assert gc.get_threshold() == expected


MANIFEST = """
version: 1
stores:
  cache: {integration: redis, config: {host: redis.internal}}
targets:
  - {project: proj-001, environments: [env-001, env-002], store: cache}
"""


@pytest.mark.parametrize("collect_less", [True, False])
@pytest.mark.parametrize("entry", ["Provisioner", "apply"])
async def test_a_run_holds_it_while_its_targets_settle(
    sandbox: Sandbox, collect_less: bool, entry: str
) -> None:
    during: list[tuple[int, int, int]] = []

    def note(result: TargetResult) -> None:
        during.append(gc.get_threshold())

    async with Client(token=sandbox.token, base_url=sandbox.url) as client:
        if entry == "apply":
            manifests = ldbulk.loads_manifest(MANIFEST)
            report = await ldbulk.apply(
                client, manifests, on_result=note, collect_less=collect_less
            )
        else:
            provisioner = Provisioner(client, collect_less=collect_less)
            targets = [target("env-001", "proj-001"), target("env-002", "proj-001")]
            report = await provisioner.run(targets, on_result=note)
    assert [result.outcome.ok for result in report.results] == [True, True]
    raised = (RUN_YOUNG_THRESHOLD, 10, 10) if collect_less else DEFAULT
    assert during == [raised, raised]
    assert gc.get_threshold() == DEFAULT
