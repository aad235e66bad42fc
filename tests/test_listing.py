"""The account's listing read as it arrives: whole or lean, at any size, errors named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import SandboxFactory

from ldbulk import Client, Outcome, RedisConfig, ResponseFormatError, Target, provision
from ldbulk.api.listing import MAX_DEPTH, ListingReader, lean_integration

WHAT = "GET /api/v2/integration-capabilities/big-segment-store"


def item(index: int, **changes: Any) -> dict[str, Any]:
    """A listed integration as LaunchDarkly sends it (links, status, no config)."""
    data: dict[str, Any] = {
        "_links": {"self": {"href": f"/x/{index}", "type": "application/json"}},
        "_id": f"{index:024x}",
        "integrationKey": "redis",
        "projectKey": "proj",
        "environmentKey": f"env-{index}",
        "on": index % 2 == 0,
        "tags": ["managed-by-ldbulk"],
        "name": f"store {index}",
        "version": index + 1,
        "_status": {"available": True, "potentiallyStale": False, "lastSync": 1, "errors": []},
        "_access": {"allowed": [], "denied": []},
    }
    data.update(changes)
    return data


def body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"_links": {"self": {"href": "/x"}}, "items": list(items)}).encode()


def read(data: bytes, *, lean: bool = True, chunk: int = 4096) -> list[Any]:
    reader = ListingReader(WHAT, lean=lean)
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
    return reader.close()


@pytest.mark.parametrize("chunk", [1, 7, 100, 1 << 20])
def test_every_item_is_read_wherever_the_chunks_split_the_body(chunk: int) -> None:
    listed = read(body(*(item(i) for i in range(20))), chunk=chunk)
    assert [i.environment_key for i in listed] == [f"env-{i}" for i in range(20)]
    first_two = [(i.on, i.version, i.name) for i in listed[:2]]
    assert first_two == [(True, 1, "store 0"), (False, 2, "store 1")]


def test_a_lean_item_keeps_ids_keys_and_what_a_run_compares_and_nothing_else() -> None:
    (lean,) = read(body(item(3)))
    (whole,) = read(body(item(3)), lean=False)
    assert (lean.id, lean.project_key, lean.tags) == (whole.id, whole.project_key, whole.tags)
    assert lean.status is None and lean.access is None and not lean.links
    assert whole.status is not None and whole.status.available and whole.links


def test_lean_records_share_their_keys() -> None:
    first, second = read(body(item(1), item(2)))
    assert first.project_key is second.project_key
    assert first.tags[0] is second.tags[0]


def test_a_lean_item_is_checked_as_strictly_as_the_model() -> None:
    wrong = r"items\[1\] does not match Integration: .*\$\.version"
    with pytest.raises(ResponseFormatError, match=wrong):
        read(body(item(0), item(1, version="2")))
    with pytest.raises(ResponseFormatError, match=r"items\[0\] .*\$\.projectKey"):
        read(body({k: v for k, v in item(0).items() if k != "projectKey"}))
    with pytest.raises(ResponseFormatError, match=r"items\[0\] does not match Integration"):
        read(body("not an item"))  # type: ignore[arg-type]


def test_the_same_item_reads_the_same_lean_directly_or_through_the_converter() -> None:
    data = item(5, tags=("a",))  # a tuple: the converter's array, not the fast path's list
    assert lean_integration(data, what=WHAT) == lean_integration(item(5, tags=["a"]), what=WHAT)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"[]", r"expected an object, got array @ \$$"),
        (b'{"items": {"item": {}}}', r"expected an array, got object @ \$\.items"),
        (b'{"items": "many"}', r"expected an array, got str @ \$\.items"),
        (b"", "empty body"),
    ],
)
def test_a_body_that_is_not_a_listing_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(ResponseFormatError, match=problem):
        read(data)


def nested(depth: int) -> Any:
    """A value ``depth`` levels deep: objects and arrays in turn."""
    value: Any = 1
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_nesting_is_read_up_to_the_bound_and_refused_past_it(chunk: int) -> None:
    # The envelope, the items array and the item are three levels; the extra field the rest.
    (deep,) = read(body(item(0, extra=nested(MAX_DEPTH - 3))), chunk=chunk)
    assert deep.environment_key == "env-0"
    with pytest.raises(ResponseFormatError, match=f"nested deeper than {MAX_DEPTH} levels"):
        read(body(item(0, extra=nested(MAX_DEPTH - 2))), chunk=chunk)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        b'{"items":[{"a":' + b'{"a":' * 200_000 + b"1" + b"}" * 200_001 + b"]}",
    ],
    ids=["arrays", "objects", "in-an-item"],
)
def test_a_body_nested_without_end_is_refused_on_its_first_chunk(data: bytes) -> None:
    # Read as it came, a body 200,000 levels deep held tens of GB of path strings.
    reader = ListingReader(WHAT, lean=True)
    with pytest.raises(ResponseFormatError, match="nested deeper") as refused:
        reader.feed(data[:65536])
    assert "{" not in str(refused.value)  # named, never quoted


def test_long_keys_nested_inside_an_item_are_refused_before_their_paths_are_built() -> None:
    # 400 levels of 10 KB keys: the item parser's paths alone would have taken 800 MB.
    key = '"' + "k" * 10_000 + '":'
    data = ('{"items":[{' + (key + "{") * 400 + "}" * 401 + "]}").encode()
    with pytest.raises(ResponseFormatError, match="levels deep over") as refused:
        read(data, chunk=1 << 20)
    assert "kkk" not in str(refused.value)


@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_a_large_item_at_a_listings_depth_is_read(chunk: int) -> None:
    big = item(1, name="n" * 500_000, tags=[f"t{i}" for i in range(5_000)])
    listed = read(body(item(0), big, item(2)), chunk=chunk)
    assert [len(i.name) for i in listed] == [7, 500_000, 7]
    assert len(listed[1].tags) == 5_000


def test_a_listing_without_items_is_empty() -> None:
    assert read(b'{"_links": {}}') == []


@pytest.mark.parametrize("cut", [1, 100, -1])
def test_a_body_cut_short_or_broken_is_named_never_quoted(cut: int) -> None:
    data = body(item(0, name="secret-looking-name"), item(1))
    with pytest.raises(ResponseFormatError, match="not a complete JSON body") as caught:
        read(data[:cut])
    assert "secret-looking-name" not in str(caught.value)
    broken = data.replace(b"\"store 1\"", b"xyzzy 1")
    with pytest.raises(ResponseFormatError, match="not a complete JSON body") as caught:
        read(broken)
    assert "xyzzy" not in str(caught.value)


async def test_an_account_larger_than_the_body_cap_is_listed_whole(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=4, environments=60, seed_integrations=240)
    async with Client(sandbox.token, base_url=sandbox.url, max_body_bytes=16 * 1024) as client:
        whole = await client.list_integrations()
        lean = await client.list_integrations(lean=True)
    assert len(whole) == len(lean) == 240
    assert {i.id for i in whole} == {i.id for i in lean}
    assert all(i.status is not None for i in whole)


async def test_a_run_against_an_account_larger_than_the_body_cap_finds_every_target(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(projects=4, environments=60, seed_integrations=240)
    config = RedisConfig(host="redis.internal")
    targets = [
        Target(project=f"proj-{p:03d}", environment=f"env-{e:03d}", config=config)
        for p in range(1, 5)
        for e in range(1, 61)
    ]
    async with Client(sandbox.token, base_url=sandbox.url, max_body_bytes=16 * 1024) as client:
        report = await provision(client, targets, create_only=True)
    assert {result.outcome for result in report.results} == {Outcome.EXISTS}
    assert report.stats.requests == 1  # one listing, nothing else


def test_a_listing_past_its_item_cap_is_refused_as_it_arrives() -> None:
    item = json.dumps({"_id": "i", "integrationKey": "redis", "projectKey": "p",
                       "environmentKey": "e"}).encode()  # fmt: skip
    reader = ListingReader("GET /x", lean=True, max_items=3)
    reader.feed(b'{"items": [' + b",".join([item] * 3) + b",")
    with pytest.raises(ResponseFormatError, match="more than 3 items"):
        reader.feed(item + b"," + item)
