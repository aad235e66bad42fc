"""Structuring LaunchDarkly's JSON: recorded samples, extra fields, absent fields, wrong types."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldbulk import (
    Environment,
    Integration,
    Project,
    ResponseFormatError,
    StoreStatus,
)
from ldbulk.api import models as models_module
from ldbulk.api.converter import api_name, structure, unstructure
from ldbulk.api.models import Page
from ldbulk.api.resources import ErrorBody, IntegrationCollection

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# Every JSON key any model reads: random extra keys must not collide with these.
KNOWN_KEYS = frozenset(
    api_name(field)
    for value in vars(models_module).values()
    if isinstance(value, type) and attrs.has(value)
    for field in attrs.fields(value)
)

# -- the recorded samples ------------------------------------------------------------------


def test_created_redis_integration_structures_with_redacted_config() -> None:
    integration = structure(sample("integration_created_redis.json"), Integration)
    assert integration.id == "6650f1c2a9e4b71f0c3d8e21"
    assert integration.integration_key == "redis"
    assert (integration.project_key, integration.environment_key) == ("checkout", "production")
    assert integration.tags == ("ldbulk", "team-payments")
    assert integration.version == 1
    assert integration.on is False
    assert integration.config is not None
    assert integration.config["port"] == "6380"
    assert integration.config["tlsEnabled"] is True
    assert integration.status == StoreStatus(available=False, potentially_stale=True)
    assert integration.access is None
    assert integration.links["environment"].href == (
        "/api/v2/projects/checkout/environments/production"
    )
    assert integration.links["self"].type == "application/json"


def test_created_dynamodb_integration_reads_access_reason_role_name() -> None:
    integration = structure(sample("integration_created_dynamodb.json"), Integration)
    assert integration.integration_key == "dynamodb"
    assert integration.config is not None
    assert integration.config["roleArn"].startswith("arn:aws:iam::")
    assert integration.access is not None
    assert integration.access.denied == ()
    (allowed,) = integration.access.allowed
    assert allowed.action == "updateIntegrationConfiguration"
    assert allowed.reason.effect == "allow"
    assert allowed.reason.role_name == "Admin"
    assert allowed.reason.resources == ("proj/*:env/*",)
    assert allowed.reason.actions == ("*",)


def test_list_all_collection_structures_items_without_config() -> None:
    collection = structure(sample("integration_collection.json"), IntegrationCollection)
    assert [item.id for item in collection.items] == [
        "6650f1c2a9e4b71f0c3d8e21",
        "6650f3d08b17c2e54a9f0b77",
        "6651a04e5c3b2d19e8f7a610",
    ]
    assert all(item.config is None for item in collection.items)
    assert collection.links["self"].href == "/api/v2/integration-capabilities/big-segment-store"
    first, second, third = collection.items
    assert first.status == StoreStatus(
        available=True, potentially_stale=False, last_sync=1717263000000
    )
    assert second.status is not None
    assert second.status.last_error == 1717263060000
    assert third.status == StoreStatus()


def test_single_integration_structures_status_errors_and_access_reasons() -> None:
    integration = structure(sample("integration_single.json"), Integration)
    assert integration.version == 4
    status = integration.status
    assert status is not None
    assert status.available is False
    assert status.potentially_stale is True
    assert status.last_sync == 1717262400000
    assert [(e.status_code, e.timestamp) for e in status.errors] == [
        (403, 1717263060000),
        (400, 1717262940000),
    ]
    assert status.errors[0].message is not None
    assert status.errors[0].message.startswith("AccessDeniedException")
    access = integration.access
    assert access is not None
    (denied,) = access.denied
    assert denied.action == "deleteIntegrationConfiguration"
    assert denied.reason.effect == "deny"
    assert denied.reason.not_actions == ("updateIntegrationConfiguration",)
    assert denied.reason.role_name == "Writer"
    (allowed,) = access.allowed
    assert allowed.reason.actions == (
        "updateIntegrationConfiguration",
        "createIntegrationConfiguration",
    )


def test_single_integration_repr_does_not_show_redacted_config_values() -> None:
    integration = structure(sample("integration_single.json"), Integration)
    assert "launchdarkly-big-segments" not in repr(integration)
    assert "'externalId': ..." in repr(integration)


def test_projects_page_structures_items_total_and_next_link() -> None:
    page = structure(sample("projects_page1.json"), Page[Project])
    assert [project.key for project in page.items] == ["checkout", "mobile-app"]
    assert page.items[0] == Project(
        id="5f8a2b7c9d1e3f4a5b6c7d80", key="checkout", name="Checkout", tags=("payments",)
    )
    assert page.total_count == 3
    assert page.next_href == "/api/v2/projects?limit=2&offset=2"


def test_last_projects_page_has_no_next_link() -> None:
    page = structure(sample("projects_page2.json"), Page[Project])
    assert [project.key for project in page.items] == ["data-platform"]
    assert page.next_href is None


def test_environment_items_never_keep_the_sdk_keys() -> None:
    raw = sample("environments_page1.json")
    page = structure(raw, Page[Environment])
    assert [env.key for env in page.items] == ["production", "staging"]
    for raw_item, env in zip(raw["items"], page.items, strict=True):
        for secret in (raw_item["apiKey"], raw_item["mobileKey"]):
            assert secret not in repr(env)
            assert secret not in json.dumps(unstructure(env))
    assert {field.name for field in attrs.fields(Environment)} == {"id", "key", "name", "tags"}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("error_400.json", "invalid_request"),
        ("error_401.json", "unauthorized"),
        ("error_403.json", "forbidden"),
        ("error_404.json", "not_found"),
        ("error_409.json", "optimistic_locking_error"),
        ("error_429.json", "rate_limited"),
    ],
)
def test_error_bodies_structure_code_message_and_id(name: str, code: str) -> None:
    raw = sample(name)
    error = structure(raw, ErrorBody)
    assert error == ErrorBody(code=code, message=raw["message"], id=raw["id"])


def test_error_body_id_is_optional() -> None:
    assert structure({"code": "forbidden", "message": "no"}, ErrorBody).id is None


def test_unstructure_then_structure_round_trips_with_api_names() -> None:
    integration = structure(sample("integration_single.json"), Integration)
    data = unstructure(integration)
    assert {"_id", "_status", "_access", "_links", "integrationKey"} <= set(data)
    assert data["_access"]["allowed"][0]["reason"]["role_name"] == "Writer"
    assert structure(data, Integration) == integration


# -- absent optional fields ----------------------------------------------------------------


def test_integration_with_only_identity_fields_gets_defaults() -> None:
    minimal = {"_id": "i", "integrationKey": "redis", "projectKey": "p", "environmentKey": "e"}
    integration = structure(minimal, Integration)
    assert integration == Integration(
        id="i", integration_key="redis", project_key="p", environment_key="e"
    )
    assert integration.status is None
    assert integration.access is None
    assert integration.links == {}
    assert integration.tags == ()


def test_optional_fields_may_be_null() -> None:
    data = sample("integration_single.json")
    data["_status"]["lastSync"] = None
    data["_access"]["allowed"][0]["reason"]["role_name"] = None
    data["_links"]["self"]["type"] = None
    integration = structure(data, Integration)
    assert integration.status is not None
    assert integration.status.last_sync is None
    assert integration.links["self"].type is None


def test_empty_collection_and_empty_page_structure() -> None:
    assert structure({"_links": {}, "items": []}, IntegrationCollection).items == ()
    page = structure({"items": []}, Page[Environment])
    assert page.items == ()
    assert page.total_count is None
    assert page.next_href is None


# -- extra fields --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
extra_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda key: key not in KNOWN_KEYS),
    json_values,
    min_size=1,
    max_size=4,
)


def objects_in(data: Any) -> list[dict[str, Any]]:
    """Every JSON object inside ``data`` (itself included), where extra keys can be added."""
    found: list[dict[str, Any]] = []
    if isinstance(data, dict):
        found.append(data)
        for value in data.values():
            found.extend(objects_in(value))
    elif isinstance(data, list):
        for value in data:
            found.extend(objects_in(value))
    return found


def record_objects(data: Any) -> list[dict[str, Any]]:
    """Objects with fixed fields, where an extra key must be ignored.

    ``_links`` and ``config`` are open maps: an extra key there is data, not noise.
    """
    maps = {
        id(obj[key])
        for obj in objects_in(data)
        for key in ("_links", "config")
        if isinstance(obj.get(key), dict)
    }
    return [obj for obj in objects_in(data) if id(obj) not in maps]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("integration_single.json", Integration),
        ("integration_created_dynamodb.json", Integration),
        ("integration_collection.json", IntegrationCollection),
        ("projects_page1.json", Page[Project]),
        ("environments_page1.json", Page[Environment]),
    ],
)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_unknown_fields_at_any_level_are_ignored(
    name: str, cls: type[Any], data: st.DataObject
) -> None:
    original = sample(name)
    expected = structure(original, cls)
    noisy = copy.deepcopy(original)
    targets = record_objects(noisy)
    chosen = data.draw(st.lists(st.sampled_from(targets), min_size=1, max_size=len(targets)))
    for obj in chosen:
        obj.update(data.draw(extra_fields))
    assert structure(noisy, cls) == expected


# -- wrong types ---------------------------------------------------------------------------


def set_at(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(data)
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


SECRET = "SECRET-VALUE-9f8e7d"


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("_id",), 123, "$._id"),
        (("version",), True, "$.version"),
        (("version",), "4", "$.version"),
        (("on",), "false", "$.on"),
        (("tags",), "ldbulk", "$.tags"),
        (("tags",), {"a": 1}, "$.tags"),
        (("tags", 0), 7, "$.tags[0]"),
        (("config",), ["host"], "$.config"),
        (("_links",), ["self"], "$._links"),
        (("_status",), [1], "$._status"),
        (("_status", "lastSync"), "1717262400000", "$._status.lastSync"),
        (("_status", "available"), "true", "$._status.available"),
        (("_status", "errors"), "none", "$._status.errors"),
        (("_status", "errors", 1, "statusCode"), "400", "$._status.errors[1].statusCode"),
        (("_access", "allowed"), {}, "$._access.allowed"),
        (
            ("_access", "denied", 0, "reason", "role_name"),
            5,
            "$._access.denied[0].reason.role_name",
        ),
        (("_access", "allowed", 0, "reason", "effect"), None, "$._access.allowed[0].reason.effect"),
    ],
)
def test_wrong_type_raises_response_format_error_naming_the_json_path(
    path: tuple[Any, ...], value: Any, where: str
) -> None:
    data = set_at(sample("integration_single.json"), path, value)
    with pytest.raises(ResponseFormatError) as info:
        structure(data, Integration, what="GET /x")
    message = str(info.value)
    assert message.startswith("GET /x does not match Integration: ")
    problems = message.split(": ", 1)[1].split("; ")
    assert any(problem.endswith(f" @ {where}") for problem in problems), problems


def test_wrong_type_in_a_collection_item_names_its_index() -> None:
    data = set_at(sample("integration_collection.json"), ("items", 2, "projectKey"), None)
    with pytest.raises(ResponseFormatError, match=r"@ \$\.items\[2\]\.projectKey"):
        structure(data, IntegrationCollection)


def test_missing_required_field_is_named() -> None:
    data = sample("integration_single.json")
    del data["integrationKey"]
    with pytest.raises(ResponseFormatError, match=r"required field missing @ \$\.integrationKey"):
        structure(data, Integration)


def test_every_bad_field_is_reported_not_only_the_first() -> None:
    data = sample("integration_single.json")
    data["_id"] = 1
    data["version"] = "x"
    with pytest.raises(ResponseFormatError) as info:
        structure(data, Integration)
    assert "$._id" in str(info.value)
    assert "$.version" in str(info.value)


@pytest.mark.parametrize("top", [None, [], "text", 42, True])
def test_a_body_that_is_not_an_object_raises_response_format_error(top: Any) -> None:
    with pytest.raises(ResponseFormatError, match=r"does not match Integration: .* @ \$$"):
        structure(top, Integration)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("_id",), {"value": SECRET}),
        (("_id",), [SECRET]),
        (("version",), SECRET),
        (("on",), SECRET),
        (("tags",), SECRET),
        (("config",), SECRET),
        (("_status", "lastSync"), SECRET),
        (("_status", "errors"), {SECRET: SECRET}),
        (("_links",), SECRET),
        (("_links",), [SECRET]),
        (("_access", "allowed", 0, "reason"), [SECRET]),
    ],
)
def test_error_messages_never_quote_values(path: tuple[Any, ...], value: Any) -> None:
    data = set_at(sample("integration_single.json"), path, value)
    with pytest.raises(ResponseFormatError) as info:
        structure(data, Integration)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_response_format_error_hides_the_cattrs_cause() -> None:
    with pytest.raises(ResponseFormatError) as info:
        structure({"_id": 1}, Integration)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True


# -- nothing from cattrs escapes -----------------------------------------------------------


def paths_in(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found.extend(paths_in(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*prefix, index))
            found.extend(paths_in(value, (*prefix, index)))
    return found


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("integration_single.json", Integration),
        ("integration_collection.json", IntegrationCollection),
        ("environments_page1.json", Page[Environment]),
    ],
)
@settings(max_examples=150)
@given(data=st.data())
def test_any_corruption_gives_a_value_or_response_format_error(
    name: str, cls: type[Any], data: st.DataObject
) -> None:
    original = sample(name)
    path = data.draw(st.sampled_from(paths_in(original)))
    corrupted = set_at(original, path, data.draw(json_values))
    try:
        structure(corrupted, cls)
    except ResponseFormatError as exc:
        assert not isinstance(exc, cattrs.BaseValidationError)
        assert str(exc).startswith(f"response does not match {cls.__name__}: ")


@given(garbage=json_values)
def test_arbitrary_json_never_raises_anything_but_response_format_error(garbage: Any) -> None:
    for cls in (Integration, IntegrationCollection, ErrorBody, Page[Project]):
        with contextlib.suppress(ResponseFormatError):
            structure(garbage, cls)


# -- _links ---------------------------------------------------------------------------------


def test_links_that_are_not_link_shaped_are_dropped_not_fatal() -> None:
    """The spec leaves ``_links`` open to members of any type; ldbulk reads none but ``next``."""
    data = sample("integration_single.json")
    data["_links"].update({"ullamco_": 3, "docs": [{"href": "/x"}], "odd": {"href": 1}})
    data["_links"]["self"] = {"href": None, "type": False}
    integration = structure(data, Integration)
    assert set(integration.links) == {"parent", "project", "environment"}
    # Not a page: nothing follows an integration listing's `next`, so an odd one is dropped too.
    odd = {"self": "/x", "next": 5}
    listing = structure({"_links": odd, "items": [data]}, IntegrationCollection)
    assert listing.links == {}
    assert listing.items == (integration,)


@pytest.mark.parametrize(
    ("next_link", "where"),
    [(5, "$._links['next']"), ({"href": [SECRET]}, "$._links['next'].href")],
)
def test_a_malformed_next_link_stays_an_error_as_pagination_follows_it(
    next_link: Any, where: str
) -> None:
    body = {"items": [], "_links": {"next": next_link, "self": {"href": "/p"}}}
    with pytest.raises(ResponseFormatError) as info:
        structure(body, Page[Project])
    assert str(info.value).endswith(f" @ {where}")
    assert SECRET not in str(info.value)
