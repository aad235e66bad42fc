"""Every JSON output has a versioned JSON Schema shipped in the package, and the outputs of
real runs match them: the apply report, plan, status, validate and export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import sandbox_server
from test_cli import EXAMPLE, SandboxProcess, ldbulk

from ldbulk.cli.export import EXPORT_JSON_VERSION
from ldbulk.cli.plan import PLAN_JSON_VERSION
from ldbulk.cli.status import STATUS_JSON_VERSION
from ldbulk.cli.validate import VALIDATE_JSON_VERSION
from ldbulk.engine.report import REPORT_VERSION
from ldbulk.schemas import NAMES, schema

MANIFEST_SCHEMA = Path(__file__).parent.parent / "ldbulk" / "manifest" / "manifest.schema.json"


def check(name: str, document: Any) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(document)


@pytest.mark.parametrize(
    ("name", "version"),
    [("report", REPORT_VERSION), ("plan", PLAN_JSON_VERSION), ("status", STATUS_JSON_VERSION),
     ("validate", VALIDATE_JSON_VERSION), ("export", EXPORT_JSON_VERSION)],
)
def test_each_schema_is_valid_and_names_the_version_the_code_writes(name: str,
                                                                    version: int) -> None:
    assert name in NAMES
    document = schema(name)
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["properties"]["version"] == {"const": version}
    assert document["$id"] == f"urn:ldbulk:schema:{name}:{version}"
    assert document["title"] and document["description"]


def test_an_unknown_schema_name_is_refused() -> None:
    with pytest.raises(ValueError, match="one of export, plan"):
        schema("journal")


server = sandbox_server()


def test_the_outputs_of_real_runs_match_their_schemas(
    server: SandboxProcess, tmp_path: Path
) -> None:
    server.reset()
    missing = tmp_path / "m.yaml"
    missing.write_text("version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\n"
                       "targets:\n  - {project: nope, environments: '*', store: r}\n")
    for manifests in ([str(EXAMPLE)], [str(EXAMPLE), str(missing)]):
        plan = ldbulk("plan", *manifests, "-o", "json", sandbox=server)
        check("plan", json.loads(plan.stdout))
    report = tmp_path / "r.json"
    ldbulk("apply", str(EXAMPLE), str(missing), "--report", str(report), sandbox=server)
    check("report", json.loads(report.read_text()))
    status = ldbulk("status", str(EXAMPLE), str(missing), "-o", "json", sandbox=server)
    check("status", json.loads(status.stdout))
    plan = ldbulk("plan", str(EXAMPLE), "-o", "json", sandbox=server)
    check("plan", json.loads(plan.stdout))

    exported = ldbulk("export", "--format", "json", sandbox=server)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    check("export", document)
    assert document["variables"] and len(document["manifest"]["targets"]) > 0
    manifest_schema = json.loads(MANIFEST_SCHEMA.read_text())
    jsonschema.Draft202012Validator(manifest_schema).validate(document["manifest"])


def test_validate_json_says_ok_or_every_problem_with_its_place_and_hint(tmp_path: Path) -> None:
    good = ldbulk("validate", str(EXAMPLE), "-o", "json", secrets=False)
    assert good.returncode == 0, good.stderr
    document = json.loads(good.stdout)
    check("validate", document)
    assert document["ok"] and document["problems"] == [] and document["target_lines"] == 4
    assert set(document["unset_references"]) == {"${LD_REDIS_PASSWORD}",
                                                 "${LD_DYNAMODB_EXTERNAL_ID}"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\n"
                   "targets:\n  - {project: web, environments: [prod], store: rr}\n")
    failed = ldbulk("validate", str(bad), "-o", "json")
    assert failed.returncode == 2
    document = json.loads(failed.stdout)
    check("validate", document)
    assert not document["ok"]
    assert document["problems"] == [{"file": str(bad), "line": 5, "path": "targets[0].store",
                                     "message": 'unknown store "rr"',
                                     "hint": 'did you mean "r"?'}]
