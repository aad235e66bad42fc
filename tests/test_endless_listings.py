"""A listing of environments that would never end is its own line's ``failed`` row, with the
reason, and never a hang: the other lines of the manifest resolve as usual."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from ldbulk.api.sansio import RawResponse
from ldbulk.engine.report import Outcome
from ldbulk.engine.resolve import resolve
from ldbulk.http.client import MAX_PAGES, Client
from ldbulk.http.transport import MemoryTransport, SentRequest, canned
from ldbulk.manifest import loads_manifest

pytestmark = pytest.mark.looptime

PROJECTS = "/api/v2/projects"
TOKEN = "api-7e3a9c41-5b2d-4f80-a6e1-0c9d8b7a6f52"
MANIFEST = """\
version: 1
stores:
  r: {integration: redis, config: {host: h}}
targets:
  - {project: endless, environments: "*", store: r}
  - {project: cycle, environments: "*", store: r}
  - {project: web, environments: "*", store: r}
"""


def _environment(key: str) -> dict[str, object]:
    return {"_id": f"id-{key}", "key": key, "name": key, "tags": [], "_links": {}}


def _page(project: str, offset: int) -> RawResponse:
    """``endless``: a next link that always advances; ``cycle``: one back to the first page;
    ``web``: one page, no next."""
    path = f"{PROJECTS}/{project}/environments"
    if project == "web":
        return canned(json={"items": [_environment("production")], "_links": {}})
    following = offset + 1 if project == "endless" else 0
    link = {"next": {"href": f"{path}?limit=100&offset={following}"}}
    return canned(json={"items": [_environment(f"e{offset}")], "_links": link})


def _answer(request: SentRequest) -> RawResponse:
    parts = urlsplit(request.path)
    project = parts.path.split("/")[4]
    offset = int(parse_qs(parts.query).get("offset", ["0"])[0])
    return _page(project, offset)


async def test_an_endless_or_cyclic_next_link_ends_its_line_failed_and_the_others_resolve() -> None:
    manifest = loads_manifest(MANIFEST, file="m.yaml")
    transport = MemoryTransport(_answer)
    client = Client(token=TOKEN, base_url="http://127.0.0.1:9", transport=transport)
    async with asyncio.timeout(3600), client:
        resolution = await resolve(manifest, client)
    rows = {line.result().project: line.result() for line in resolution.unresolved}
    assert sorted(rows) == ["cycle", "endless"]
    for row in rows.values():
        assert row.outcome is Outcome.FAILED
        assert row.error is not None
    assert f"{MAX_PAGES} pages" in rows["endless"].error.message
    assert "back to a page already read" in rows["cycle"].error.message
    assert [target.key for target in resolution.targets] == [("web", "production", "redis")]
    # The endless listing was given up at the cap; the cyclic one at its first repeat.
    listed = [urlsplit(request.path).path.split("/")[4] for request in transport.requests]
    assert listed.count("endless") == MAX_PAGES
    assert listed.count("cycle") == 1
