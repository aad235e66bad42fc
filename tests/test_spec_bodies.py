"""Bodies generated from LaunchDarkly's published schemas: every decoder of the client reads them.

The schemas leave room a hand-written sample never uses: members the spec does not name may be
present with any value (``_links`` of an integration may carry ``{"ullamco_": 3}``), optional
fields come and go, strings hold anything. hypothesis-jsonschema generates such bodies from the
vendored OpenAPI subsets, and each must structure into the model the client decodes it into.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from multidict import CIMultiDict

from ldbulk.api import sansio
from ldbulk.api.models import Environment, Integration, IntegrationCollection, Page, Project
from ldbulk.text import printable

SPEC_DIR = Path(__file__).parent / "spec"
SCHEMAS_PREFIX = "#/components/schemas/"

# Keywords OpenAPI 3.0 adds to JSON Schema that only annotate (hypothesis-jsonschema knows no
# "int64" format, and examples and descriptions constrain nothing).
ANNOTATIONS = frozenset({"description", "example", "format"})

# The maps whose extra members are the point: the spec names some links and leaves the rest
# open, to members of any type. Every other component is closed: the converter ignores unknown
# fields by construction (test_converter shows it), and open objects cost much time here, as
# hypothesis-jsonschema rebuilds an object's strategy at each draw.
OPEN_COMPONENTS = frozenset(
    {"BigSegmentStoreIntegrationLinks", "BigSegmentStoreIntegrationCollectionLinks"}
)

# Arrays of two items exercise an item decoder as well as arrays of twenty, in far less time.
MAX_ITEMS = 1

# Bounded: the whole file runs in seconds, yet each decoder meets dozens of odd bodies a run.
BOUNDED = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def inline(schema: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` made self-contained for hypothesis-jsonschema: each ``$ref`` to a component
    replaced by the component (OpenAPI 3.0 ignores a ``$ref``'s siblings), annotations left out,
    components other than the open maps closed, arrays bounded."""
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith(SCHEMAS_PREFIX), ref
        name = ref.removeprefix(SCHEMAS_PREFIX)
        resolved = inline(components[name], components)  # the vendored specs have no cycle
        if "properties" in resolved and name not in OPEN_COMPONENTS:
            resolved.setdefault("additionalProperties", False)
        return resolved
    resolved = {}
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword == "properties":
            resolved[keyword] = {name: inline(sub, components) for name, sub in value.items()}
        elif keyword in ("items", "additionalProperties") and isinstance(value, Mapping):
            resolved[keyword] = inline(value, components)
        else:
            resolved[keyword] = value
    if resolved.get("type") == "array":
        resolved.setdefault("maxItems", MAX_ITEMS)
    return resolved


def component(spec_file: str, name: str) -> dict[str, Any]:
    spec = json.loads((SPEC_DIR / spec_file).read_text())
    return inline({"$ref": SCHEMAS_PREFIX + name}, spec["components"]["schemas"])


BSS = "big-segment-store-openapi.json"
PROJECTS = "projects-environments-openapi.json"

INTEGRATION = component(BSS, "BigSegmentStoreIntegration")
COLLECTION = component(BSS, "BigSegmentStoreIntegrationCollection")
# The spec marks `config` required on every BigSegmentStoreIntegration, yet its own description
# says it is "only included when requesting a single integration by ID", and LaunchDarkly's
# list-all answer carries none: the list's items follow that behaviour, not the `required`.
COLLECTION["properties"]["items"]["items"]["required"].remove("config")
PROJECTS_PAGE = component(PROJECTS, "Projects")
# A project's `environments` is "omitted unless expanded by the client", and ldbulk never
# expands: its listing never carries one (and generating a page inside each project is slow).
del PROJECTS_PAGE["properties"]["items"]["items"]["properties"]["environments"]
ENVIRONMENTS_PAGE = component(PROJECTS, "Environments")
ERRORS = [
    (status, component(spec, name))
    for status, spec, name in [
        (400, BSS, "InvalidRequestErrorRep"),
        (401, BSS, "UnauthorizedErrorRep"),
        (403, BSS, "ForbiddenErrorRep"),
        (404, BSS, "NotFoundErrorRep"),
        (405, PROJECTS, "MethodNotAllowedErrorRep"),
        (409, BSS, "StatusConflictErrorRep"),
        (429, BSS, "RateLimitedErrorRep"),
    ]
]
for _, error_schema in ERRORS:
    # LaunchDarkly's error bodies carry an `id` (the request id), a member the spec does not
    # name and so allows of any type. Named here with the same freedom, so generation tries it.
    error_schema["properties"]["id"] = {}


def answer(body: Any, status: int = 200) -> sansio.RawResponse:
    headers = CIMultiDict({"Content-Type": "application/json"})
    return sansio.RawResponse(status=status, headers=headers, body=json.dumps(body).encode())


@BOUNDED
@given(from_schema(INTEGRATION))
def test_every_integration_the_spec_allows_is_read(body: dict[str, Any]) -> None:
    integration = sansio.decode("GET", "/one", answer(body), Integration)
    assert integration.id == body["_id"]
    assert integration.integration_key == body["integrationKey"]
    assert integration.environment_key == body["environmentKey"]


@BOUNDED
@given(from_schema(COLLECTION))
def test_every_integration_listing_the_spec_allows_is_read(body: dict[str, Any]) -> None:
    listing = sansio.decode("GET", "/list", answer(body), IntegrationCollection)
    assert [item.id for item in listing.items] == [item["_id"] for item in body["items"]]


@BOUNDED
@given(from_schema(PROJECTS_PAGE))
def test_every_page_of_projects_the_spec_allows_is_read(body: dict[str, Any]) -> None:
    page = sansio.decode("GET", "/projects", answer(body), Page[Project])
    assert [project.key for project in page.items] == [item["key"] for item in body["items"]]
    assert page.next_href == body["_links"].get("next", {}).get("href")


@BOUNDED
@given(from_schema(ENVIRONMENTS_PAGE))
def test_every_page_of_environments_the_spec_allows_is_read(body: dict[str, Any]) -> None:
    page = sansio.decode("GET", "/environments", answer(body), Page[Environment])
    assert [env.key for env in page.items] == [item["key"] for item in body["items"]]
    assert page.next_href == body.get("_links", {}).get("next", {}).get("href")


@BOUNDED
@given(st.one_of([st.tuples(st.just(status), from_schema(schema)) for status, schema in ERRORS]))
def test_every_error_body_the_spec_allows_keeps_its_code_and_message(
    error: tuple[int, dict[str, Any]],
) -> None:
    status, body = error
    exc = sansio.error_from_response("GET", "/p", answer(body, status))
    assert exc.status == status
    assert exc.code == printable(body["code"])
    assert exc.message == body["message"][: sansio.MAX_MESSAGE_CHARS]  # raw until redacted
    request_id = body.get("id")
    assert exc.request_id == (printable(request_id) if isinstance(request_id, str) else None)
