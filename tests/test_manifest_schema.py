"""The manifest's JSON Schema, shipped for editors: the file in the package is the schema the
field table gives, it is a valid schema, the example manifests pass it, and it refuses what the
loader refuses for shape."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ldbulk.api.models import KEY_PATTERN, PORT_RANGE
from ldbulk.manifest import ManifestError, loads_manifest
from ldbulk.manifest.jsonschema import SCHEMA_FILE, manifest_schema

MANIFESTS = sorted((Path(__file__).parent.parent / "manifests").glob("*.yaml"))


class _Yaml12Loader(yaml.SafeLoader):
    """Booleans as YAML 1.2 (and editors) read them: only true and false, so `on:` is a key."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def as_an_editor_reads(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    shipped = json.loads(resources.files("ldbulk.manifest").joinpath(SCHEMA_FILE).read_text())
    assert shipped == manifest_schema(), "regenerate: python -m ldbulk.manifest.jsonschema"
    jsonschema.Draft202012Validator.check_schema(shipped)
    return jsonschema.Draft202012Validator(shipped)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_the_example_manifests_pass_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    document = as_an_editor_reads(path.read_text())
    assert [error.message for error in validator.iter_errors(document)] == []


@pytest.mark.parametrize(
    "text",
    [
        "version: 2\n",
        "version: 1\nstores: {s: {integration: rediss, config: {host: h}}}\n",
        "version: 1\nstores: {s: {integration: redis, config: {host: h, password: plain}}}\n",
        "version: 1\nstores: {s: {integration: redis, config: {hots: h}}}\n",
        "version: 1\ntargets: [{project: p, environments: [], store: s}]\n",
        "version: 1\ndefaults: {ownershipTag: 'not a tag'}\n",
    ],
)
def test_shapes_the_loader_refuses_are_refused(
    validator: jsonschema.Draft202012Validator, text: str
) -> None:
    assert list(validator.iter_errors(as_an_editor_reads(text)))


def test_the_schema_takes_its_facts_from_the_models() -> None:
    schema = manifest_schema()
    target = schema["properties"]["targets"]["items"]["properties"]
    assert target["project"]["anyOf"][0]["pattern"] == f"^{KEY_PATTERN.pattern}$"
    assert target["projects"]["anyOf"][0]["items"]["pattern"] == f"^{KEY_PATTERN.pattern}$"
    redis = schema["properties"]["stores"]["patternProperties"]
    (alternatives,) = redis.values()
    port = alternatives["anyOf"][0]["properties"]["config"]["properties"]["port"]["anyOf"][0]
    assert (port["minimum"], port["maximum"]) == PORT_RANGE


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            '{project: "web\\n", environments: [prod], store: cache}',
            'targets[0].project: "web\\x0a" is not a valid project key',
        ),
        ("{project: web, environments: [prod], store: cache, stores: x}", 'did you mean "store"?'),
    ],
)
def test_the_loader_judges_by_the_same_schema(target: str, message: str) -> None:
    text = (
        "version: 1\nstores: {cache: {integration: redis, config: {host: h, port: 6379.0}}}\n"
        f"targets: [{target}]\n"
    )
    with pytest.raises(ManifestError) as info:
        loads_manifest(text, file="m.yaml", env={})
    found = [str(problem) for problem in info.value.problems]
    assert found[0] == "m.yaml:2: stores.cache.config.port: must be a port number, got a number"
    assert found[1].startswith("m.yaml:3: ") and message in found[1]
