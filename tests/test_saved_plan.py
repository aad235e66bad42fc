"""Saved plans end to end: ``plan --out PLAN`` then ``apply PLAN`` does what was reviewed and
nothing else (``python -m ldbulk`` subprocesses against a sandbox subprocess)."""

from __future__ import annotations

import json
import stat
import urllib.request
from pathlib import Path
from typing import Any

from conftest import sandbox_process_fixtures
from test_cli import EXAMPLE, SECRETS, SandboxProcess, ldbulk

from ldbulk.engine.saved import is_plan_file

STORE = "/api/v2/integration-capabilities/big-segment-store"


server, sandbox = sandbox_process_fixtures()


def call(sandbox: SandboxProcess, method: str, path: str, body: Any = None) -> Any:
    """One request of someone else's, through the API."""
    request = urllib.request.Request(
        sandbox.url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": sandbox.token, "LD-API-Version": "beta",
                 "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def patch_by_hand(sandbox: SandboxProcess, key: tuple[str, str, str], ops: list[Any]) -> None:
    """Someone else's change, through the API."""
    found = [
        item for item in call(sandbox, "GET", STORE)["items"]
        if (item["projectKey"], item["environmentKey"], item["integrationKey"]) == key
    ]
    call(sandbox, "PATCH", f"{STORE}/{'/'.join(key)}/{found[0]['_id']}", ops)


def requests(sandbox: SandboxProcess, route: str, status: int) -> int:
    return int(sandbox.get("/_sandbox/stats")["requests"].get(route, {}).get(str(status), 0))


PATCH = f"PATCH {STORE}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}/{{id}}"


def moved_manifest(tmp_path: Path) -> Path:
    """The example with the Redis store moved to another host: six integrations to update."""
    text = EXAMPLE.read_text().replace("host: redis.demo.internal", "host: redis.moved.internal")
    path = tmp_path / "stores.yaml"
    path.write_text(text)
    return path


def test_apply_of_a_saved_plan_writes_what_was_reviewed_and_not_what_moved_since(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    assert ldbulk("apply", str(EXAMPLE), sandbox=sandbox).returncode == 0
    manifest, saved = moved_manifest(tmp_path), tmp_path / "reviewed.plan"
    # A pull request's plan: no secret in its environment.
    planned = ldbulk("plan", str(manifest), "--out", str(saved), sandbox=sandbox, secrets=False)
    assert planned.returncode == 0, planned.stderr
    text = saved.read_text()
    for secret in SECRETS.values():
        assert secret not in text
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    document = json.loads(text)
    assert [a["action"] for a in document["actions"]] == ["update"] * 6
    # After the review, someone renames one of the six by hand.
    by_hand = ("proj-002", "env-002", "redis")
    patch_by_hand(sandbox, by_hand, [{"op": "replace", "path": "/name", "value": "by hand"}])
    patched_before = requests(sandbox, PATCH, 200)

    applied = ldbulk("apply", str(saved), "--report", str(tmp_path / "r.json"), sandbox=sandbox)

    assert applied.returncode == 1, applied.stderr
    assert "Traceback" not in applied.stderr
    assert requests(sandbox, PATCH, 200) - patched_before == 5
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    outcomes = {(r["project"], r["environment"], r["integration"]): r["outcome"] for r in rows}
    assert outcomes.pop(by_hand) == "conflict"
    assert set(outcomes.values()) == {"updated"} and len(outcomes) == 5
    [conflict] = [r for r in rows if r["outcome"] == "conflict"]
    assert conflict["error"]["code"] == "changed_since_plan"
    assert conflict["error"]["message"].startswith("changed since the plan")
    hosts = {
        (i["projectKey"], i["environmentKey"]): i
        for i in sandbox.get("/_sandbox/integrations")["integrations"]
        if i["integrationKey"] == "redis"
    }
    left = hosts[by_hand[:2]]
    assert left["name"] == "by hand" and left["config"]["host"] == "redis.demo.internal"
    assert hosts[("proj-001", "env-001")]["config"]["host"] == "redis.moved.internal"


def test_a_saved_plan_is_refused_before_any_request_when_it_cannot_be_trusted(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest, saved = moved_manifest(tmp_path), tmp_path / "p.plan"
    assert ldbulk("plan", str(manifest), "--out", str(saved), sandbox=sandbox).returncode == 0
    document = json.loads(saved.read_text())
    total = sandbox.get("/_sandbox/stats")["total"]

    other_url = tmp_path / "other.plan"
    other_url.write_text(json.dumps({**document, "base_url": "https://app.launchdarkly.com"}))
    newer = tmp_path / "newer.plan"
    newer.write_text(json.dumps({**document, "format": 99}))
    forged = tmp_path / "forged.plan"
    actions = [{**document["actions"][0], "patch": [{"op": "remove", "path": "/config"}]}]
    forged.write_text(json.dumps({**document, "actions": actions}))
    # Files that are no whole plan: cut short in transfer, or missing what a plan records.
    truncated = tmp_path / "truncated.plan"
    truncated.write_text(saved.read_text()[:300])
    undigested = tmp_path / "undigested.plan"
    undigested.write_text(json.dumps({k: v for k, v in document.items() if k != "digest"}))
    for path, said in (
        (other_url, "was made against https://app.launchdarkly.com"),
        (newer, "format 99"),
        (forged, "not an operation ldbulk sends"),
        (truncated, "cannot read it"),
        (undigested, "malformed"),
    ):
        refused = ldbulk("apply", str(path), sandbox=sandbox)
        assert refused.returncode == 2, (path, refused.stderr)
        assert said in refused.stderr and "Traceback" not in refused.stderr

    # The manifest edited after the review: the plan no longer says what apply would write.
    manifest.write_text(manifest.read_text().replace("port: 6379", "port: 6380"))
    changed = ldbulk("apply", str(saved), sandbox=sandbox)
    assert changed.returncode == 2
    assert "the manifests changed since this plan was made" in changed.stderr

    flags = ldbulk("apply", str(saved), "--prune", sandbox=sandbox)
    assert flags.returncode == 2 and "drop --prune" in flags.stderr
    assert sandbox.get("/_sandbox/stats")["total"] == total


def test_a_plan_made_with_the_secrets_at_hand_holds_none_of_them(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    # Both plans are made with the store secrets set: the creates, then a rotation of the
    # Redis password (masked on read) with a new DynamoDB external id (compared on read).
    creating, rotating = tmp_path / "create.plan", tmp_path / "rotate.plan"
    assert ldbulk("plan", str(EXAMPLE), "--out", str(creating), sandbox=sandbox).returncode == 0
    assert ldbulk("apply", str(creating), sandbox=sandbox).returncode == 0
    new_id = {"LD_DYNAMODB_EXTERNAL_ID": "ext-id-rotated-e41d07"}
    planned = ldbulk("plan", str(EXAMPLE), "--rotate-secrets", "--out", str(rotating),
                     sandbox=sandbox, env=new_id)
    assert planned.returncode == 0, planned.stderr
    for path in (creating, rotating):
        text = path.read_text()
        for secret in (*SECRETS.values(), *new_id.values()):
            assert secret not in text, path
    actions = json.loads(rotating.read_text())["actions"]
    assert {tuple(op["path"] for op in action["patch"]) for action in actions} == {
        ("/config/password",), ("/config/externalId",)
    }
    patched_before = requests(sandbox, PATCH, 200)

    applied = ldbulk("apply", str(rotating), "--report", str(tmp_path / "r.json"),
                     sandbox=sandbox, env=new_id)

    assert applied.returncode == 0, applied.stderr
    assert requests(sandbox, PATCH, 200) - patched_before == len(actions) == 9
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {(row["outcome"], tuple(row["changed"])) for row in rows} == {
        ("updated", ("config.password",)), ("updated", ("config.externalId",))
    }
    again = ldbulk("plan", str(EXAMPLE), "--detailed-exitcode", sandbox=sandbox, env=new_id)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_plan_applied_twice_writes_nothing_the_second_time(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    saved = tmp_path / "first.plan"
    assert ldbulk("plan", str(EXAMPLE), "--out", str(saved), sandbox=sandbox).returncode == 0
    first = ldbulk("apply", str(saved), sandbox=sandbox)
    assert first.returncode == 0, first.stderr
    creates = sandbox.get("/_sandbox/stats")["integrations"]

    again = ldbulk("apply", str(saved), "--report", str(tmp_path / "r.json"), sandbox=sandbox)

    assert again.returncode == 1
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {row["outcome"] for row in rows} == {"conflict"}
    assert sandbox.get("/_sandbox/stats")["integrations"] == creates


def test_a_planned_delete_spares_an_integration_changed_since_the_plan(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    assert ldbulk("apply", str(EXAMPLE), sandbox=sandbox).returncode == 0
    # proj-002's "*" line gone: its four redis integrations are left over.
    manifest = tmp_path / "smaller.yaml"
    text = EXAMPLE.read_text()
    manifest.write_text(text.replace(
        '  - project: proj-002\n    environments: "*"\n    store: redis-demo\n', ""
    ).replace("    environments: [env-003]\n    store: dynamo-demo",
              "    environments: [env-003]\n    store: dynamo-demo\n"
              "  - project: proj-002\n    environments: [env-001]\n    store: redis-demo"))
    saved = tmp_path / "prune.plan"
    planned = ldbulk("plan", str(manifest), "--prune", "--out", str(saved), sandbox=sandbox)
    assert planned.returncode == 0, planned.stderr
    deletes = [a for a in json.loads(saved.read_text())["actions"] if a["action"] == "delete"]
    assert {a["environment"] for a in deletes} == {"env-002", "env-003", "env-004"}
    by_hand = ("proj-002", "env-003", "redis")
    patch_by_hand(sandbox, by_hand, [{"op": "replace", "path": "/on", "value": False}])

    capped = ldbulk("apply", str(saved), "--max-deletes", "2", sandbox=sandbox)
    assert capped.returncode == 2 and "more than the 2 allowed" in capped.stderr
    # The review was the consent: no question, no --yes, though no terminal is here.
    applied = ldbulk("apply", str(saved), "--report", str(tmp_path / "r.json"), sandbox=sandbox)

    assert applied.returncode == 1, applied.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    outcomes = {(r["project"], r["environment"], r["integration"]): r["outcome"] for r in rows}
    assert outcomes == {
        ("proj-002", "env-002", "redis"): "deleted",
        by_hand: "conflict",
        ("proj-002", "env-004", "redis"): "deleted",
    }
    left = {
        (i["projectKey"], i["environmentKey"], i["integrationKey"])
        for i in sandbox.get("/_sandbox/integrations")["integrations"]
    }
    assert by_hand in left and ("proj-002", "env-002", "redis") not in left


def test_a_plan_file_is_known_as_one_however_a_tool_reformatted_it(tmp_path: Path) -> None:
    """A reviewer's tools may rewrite the plan (``jq -c``, ``jq -S``): ``apply`` still takes it
    as a plan, and refuses it as one when it is cut short, never as a broken manifest."""
    document = {
        "kind": "ldbulk-plan", "format": 1, "created_at": "2026-01-01T00:00:00Z",
        "base_url": "https://app.launchdarkly.com", "manifests": ["m.yaml"], "digest": "d",
        "ownership_tags": ["managed-by-ldbulk"], "rotate_secrets": False,
        "actions": [{"action": "delete", "project": "p" * 60, "environment": "e" * 60,
                     "integration": "redis", "manifest": None, "store": None,
                     "integration_id": "0" * 24, "version": 3, "patch": [], "changes": []}],
    }
    shapes = {
        "written.plan": json.dumps(document, indent=1),
        "compact.plan": json.dumps(document, separators=(",", ":")),
        "sorted.plan": json.dumps(document, indent=2, sort_keys=True),
        "cut-short.plan": json.dumps(document, sort_keys=True)[:-40],
    }
    for name, text in shapes.items():
        (tmp_path / name).write_text(text)
        assert is_plan_file(tmp_path / name), name
    manifests = {
        "m.yaml": "version: 1\nstores: {}\ntargets: []\n",
        "m.json": json.dumps({"version": 1, "stores": {"kind": {"integration": "redis"}}}),
        "report.json": json.dumps({"version": 2, "results": []}),
    }
    for name, text in manifests.items():
        (tmp_path / name).write_text(text)
        assert not is_plan_file(tmp_path / name), name
    assert not is_plan_file(tmp_path / "absent.plan")
