"""The async client against recorded responses, in memory: every operation, every status."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from ldbulk import (
    BadRequest,
    Client,
    ConfigError,
    Conflict,
    DynamoDBConfig,
    Environment,
    Forbidden,
    HTTPStatusError,
    Integration,
    LdbulkError,
    NotFound,
    Project,
    RateLimited,
    RedisConfig,
    RequestTimeout,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransportError,
    Unauthorized,
    __version__,
)
from ldbulk.api.sansio import RawResponse
from ldbulk.http.client import MAX_PAGES
from ldbulk.http.pacer import Pacer
from ldbulk.http.transport import MemoryTransport, SentRequest, canned

SAMPLES = Path(__file__).parent / "samples"
TOKEN = "api-7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
BASE = "https://app.launchdarkly.com"
STORE = "/api/v2/integration-capabilities/big-segment-store"
INTEGRATION_ID = "6650f3d08b17c2e54a9f0b77"
ONE = f"{STORE}/mobile-app/staging/dynamodb/{INTEGRATION_ID}"
PROJECTS = "/api/v2/projects"
ENVIRONMENTS = "/api/v2/projects/checkout/environments"
FIRST_PAGE = "?limit=100&offset=0"

FAST = RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.001)
REDIS = RedisConfig(host="redis.example.com", port=6380, password="redis-pw-do-not-log")
DYNAMODB = DynamoDBConfig(table_name="ld-big-segments-staging", region="eu-west-1",
                          role_arn="arn:aws:iam::210987654321:role/launchdarkly-big-segments",
                          external_id="ext-id-do-not-log")
PATCH = [{"op": "replace", "path": "/on", "value": True}]
HTML = {"Content-Type": "text/html"}


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def sent(mock: MemoryTransport, method: str, path: str) -> list[SentRequest]:
    """The requests the transport received for one method and path (with query)."""
    return mock.sent(method, path)


def all_calls(mock: MemoryTransport) -> list[SentRequest]:
    return mock.requests


def quick_pacer() -> Pacer:
    # No jitter: a 429 whose headers say "now" closes the gate for (almost) no time.
    return Pacer(jitter_s=0.0)


@pytest.fixture
def mock() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
async def client(mock: MemoryTransport) -> AsyncIterator[Client]:
    async with Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock) as ld:
        yield ld


def rate_limit_now() -> dict[str, str]:
    """Headers of a 429 whose window resets right now."""
    return {"X-Ratelimit-Reset": str(int(time.time() * 1000)), "Retry-After": "0"}


# -- the operations, as a table ------------------------------------------------------------


@attrs.frozen
class Operation:
    name: str
    method: str
    path: str
    call: Callable[[Client], Awaitable[Any]]
    idempotent: bool
    beta: bool
    # Statuses the spec lists for the operation, besides its success.
    errors: tuple[int, ...]


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


# name, method, path, call, idempotent, beta, errors
OPERATIONS = [
    Operation("create", "POST", f"{STORE}/mobile-app/staging/dynamodb",
              lambda c: c.create_integration("mobile-app", "staging", DYNAMODB),
              idempotent=False, beta=True, errors=(400, 401, 403, 404, 409, 429)),
    Operation("list", "GET", STORE, lambda c: c.list_integrations(),
              idempotent=True, beta=True, errors=(401, 403, 404, 429)),
    Operation("get", "GET", ONE,
              lambda c: c.get_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID),
              idempotent=True, beta=True, errors=(401, 403, 404, 429)),
    Operation("update", "PATCH", ONE,
              lambda c: c.update_integration(
                  "mobile-app", "staging", "dynamodb", INTEGRATION_ID, PATCH),
              idempotent=False, beta=True, errors=(400, 401, 403, 404, 409, 429)),
    Operation("delete", "DELETE", ONE,
              lambda c: c.delete_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID),
              idempotent=True, beta=True, errors=(401, 403, 404, 409, 429)),
    Operation("projects", "GET", PROJECTS + FIRST_PAGE, lambda c: collect(c.projects()),
              idempotent=True, beta=False, errors=(400, 401, 403, 429)),
    Operation("environments", "GET", ENVIRONMENTS + FIRST_PAGE,
              lambda c: collect(c.environments("checkout")),
              idempotent=True, beta=False, errors=(400, 401, 403, 404, 429)),
]
BY_NAME = {operation.name: operation for operation in OPERATIONS}

EXCEPTIONS: dict[int, type[HTTPStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), repr(exc.args)):
        for secret in (TOKEN, REDIS.password, DYNAMODB.external_id):
            assert secret not in text


# -- success of every operation ------------------------------------------------------------


async def test_create_redis_posts_the_config_and_returns_the_integration(
    mock: MemoryTransport, client: Client
) -> None:
    url = f"{STORE}/checkout/production/redis"
    mock.add("POST", url, status=201, json=sample("integration_created_redis.json"))
    integration = await client.create_integration(
        "checkout", "production", REDIS, on=True, tags=["ldbulk", "team-payments"], name="n"
    )
    assert isinstance(integration, Integration)
    assert integration.id == "6650f1c2a9e4b71f0c3d8e21"
    assert integration.integration_key == "redis"
    (call,) = sent(mock, "POST", url)
    assert call.json() == {
        "config": {
            "host": "redis.example.com",
            "port": "6380",
            "username": "",
            "password": REDIS.password,
            "tlsEnabled": False,
        },
        "on": True,
        "tags": ["ldbulk", "team-payments"],
        "name": "n",
    }


async def test_create_dynamodb_uses_the_dynamodb_integration_key(
    mock: MemoryTransport, client: Client
) -> None:
    url = f"{STORE}/mobile-app/staging/dynamodb"
    mock.add("POST", url, status=201, json=sample("integration_created_dynamodb.json"))
    integration = await client.create_integration("mobile-app", "staging", DYNAMODB)
    assert integration.integration_key == "dynamodb"
    assert integration.access is not None
    (call,) = sent(mock, "POST", url)
    body = call.json()
    assert body == {"config": DYNAMODB.to_api(), "on": False}


async def test_a_lean_create_reads_the_ids_keys_and_version_and_nothing_else(
    mock: MemoryTransport, client: Client
) -> None:
    url = f"{STORE}/checkout/production/redis"
    answer = sample("integration_created_redis.json")
    # Parts a lean read never looks at: a whole read fails on them.
    answer["_status"] = "not a status"
    answer["_links"] = []
    mock.add("POST", url, status=201, json=answer)
    mock.add("POST", url, status=201, json=answer)
    lean = await client.create_integration("checkout", "production", REDIS, lean=True)
    assert (lean.id, lean.project_key) == ("6650f1c2a9e4b71f0c3d8e21", "checkout")
    assert (lean.environment_key, lean.integration_key) == ("production", "redis")
    assert lean.version == answer["version"]
    assert lean.status is None and lean.access is None and not lean.links
    with pytest.raises(ResponseFormatError, match=r"\$\._status"):
        await client.create_integration("checkout", "production", REDIS)


async def test_a_lean_create_still_refuses_an_answer_without_an_id(
    mock: MemoryTransport, client: Client
) -> None:
    url = f"{STORE}/checkout/production/redis"
    answer = sample("integration_created_redis.json")
    del answer["_id"]
    mock.add("POST", url, status=201, json=answer)
    with pytest.raises(ResponseFormatError, match=r"does not match Integration: .*\$\._id"):
        await client.create_integration("checkout", "production", REDIS, lean=True)


@attrs.frozen(kw_only=True, repr=False)
class CountedRedis(RedisConfig):
    """A store config that counts how often its body is built."""

    built: ClassVar[list[int]] = []

    def to_api(self) -> dict[str, Any]:
        self.built.append(1)
        return super().to_api()


async def test_one_store_is_encoded_once_for_all_its_targets(
    mock: MemoryTransport, client: Client
) -> None:
    config = CountedRedis(host="redis.example.com", password="redis-pw-do-not-log")
    other = CountedRedis(host="other.example.com")
    mock.add("POST", re.compile(f"{STORE}/checkout/.*/redis"), status=201, repeat=True,
             json=sample("integration_created_redis.json"))
    for index in range(5):
        await client.create_integration("checkout", f"env-{index}", config, tags=["t"], lean=True)
    await client.create_integration("checkout", "env-9", other, tags=["t"], lean=True)
    await client.create_integration("checkout", "env-8", config, tags=["u"], lean=True)
    assert len(CountedRedis.built) == 3
    bodies = [call.json() for call in mock.requests]
    assert bodies[0] == bodies[4] and bodies[0]["config"]["host"] == "redis.example.com"
    assert (bodies[5]["config"]["host"], bodies[6]["tags"]) == ("other.example.com", ["u"])


async def test_list_integrations_returns_every_item(mock: MemoryTransport, client: Client) -> None:
    mock.add("GET", STORE, status=200, json=sample("integration_collection.json"))
    integrations = await client.list_integrations()
    assert [i.project_key for i in integrations] == ["checkout", "mobile-app", "checkout"]
    assert all(i.config is None for i in integrations)


async def test_get_integration_returns_redacted_config_and_status(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", ONE, status=200, json=sample("integration_single.json"))
    integration = await client.get_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)
    assert integration.id == INTEGRATION_ID
    assert integration.status is not None
    assert len(integration.status.errors) == 2


async def test_update_integration_sends_the_json_patch(
    mock: MemoryTransport, client: Client
) -> None:
    updated = sample("integration_single.json") | {"on": True, "version": 5}
    mock.add("PATCH", ONE, status=200, json=updated)
    integration = await client.update_integration(
        "mobile-app", "staging", "dynamodb", INTEGRATION_ID, PATCH
    )
    assert (integration.on, integration.version) == (True, 5)
    (call,) = sent(mock, "PATCH", ONE)
    assert call.json() == PATCH
    assert call.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "patch", [[{"path": "/on"}], [{"op": "replace"}], [{"op": 1, "path": "/on"}]]
)
async def test_update_with_a_malformed_patch_is_refused_before_sending(
    mock: MemoryTransport, client: Client, patch: list[dict[str, Any]]
) -> None:
    with pytest.raises(ConfigError, match=r"patch\[0\]: needs string 'op' and 'path'"):
        await client.update_integration("p", "e", "redis", "id", patch)
    assert all_calls(mock) == []


async def test_delete_integration_accepts_204(mock: MemoryTransport, client: Client) -> None:
    mock.add("DELETE", ONE, status=204, body=b"")
    result = await client.delete_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)
    assert result is None
    (call,) = sent(mock, "DELETE", ONE)
    assert call.body is None
    assert "Content-Type" not in call.headers


async def test_a_delete_retried_after_a_lost_answer_that_finds_nothing_is_deleted(
    mock: MemoryTransport, client: Client
) -> None:
    # The first answer is lost after LaunchDarkly applied the delete; the retry finds it gone.
    mock.add("DELETE", ONE, error=TransportError)
    mock.add("DELETE", ONE, status=404, json={"code": "not_found", "message": "gone", "id": "r"})
    await client.delete_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)
    assert len(sent(mock, "DELETE", ONE)) == 2


async def deleting_raises_not_found(mock: MemoryTransport, client: Client) -> None:
    """The next answer to the delete is a 404, and the delete raises NotFound."""
    mock.add("DELETE", ONE, status=404, json={"code": "not_found", "message": "no", "id": "r"})
    with pytest.raises(NotFound):
        await client.delete_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)


async def test_a_delete_answered_404_at_once_still_raises(
    mock: MemoryTransport, client: Client
) -> None:
    await deleting_raises_not_found(mock, client)


async def test_a_404_after_a_refused_429_is_not_taken_for_a_lost_delete(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add(
        "DELETE", ONE, status=429, json={"code": "rate_limited", "message": "slow", "id": "r"},
        headers={"Retry-After": "0"},
    )
    await deleting_raises_not_found(mock, client)


async def test_projects_follow_links_next_across_pages(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", PROJECTS + FIRST_PAGE, json=sample("projects_page1.json"))
    mock.add("GET", PROJECTS + "?limit=2&offset=2", json=sample("projects_page2.json"))
    projects = [project async for project in client.projects()]
    assert all(isinstance(project, Project) for project in projects)
    assert [project.key for project in projects] == ["checkout", "mobile-app", "data-platform"]
    assert len(sent(mock, "GET", PROJECTS + "?limit=2&offset=2")) == 1


async def test_environments_follow_links_next_and_drop_sdk_keys(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", ENVIRONMENTS + FIRST_PAGE, json=sample("environments_page1.json"))
    mock.add("GET", ENVIRONMENTS + "?limit=2&offset=2", json=sample("environments_page2.json"))
    environments = [env async for env in client.environments("checkout")]
    assert all(isinstance(env, Environment) for env in environments)
    assert [env.key for env in environments] == ["production", "staging", "test"]
    keys = [
        item[field]
        for name in ("environments_page1.json", "environments_page2.json")
        for item in sample(name)["items"]
        for field in ("apiKey", "mobileKey")
    ]
    text = repr(environments)
    assert not any(key in text for key in keys)


async def test_environments_escape_the_project_key(mock: MemoryTransport, client: Client) -> None:
    url = f"/api/v2/projects/my%20proj/environments{FIRST_PAGE}"
    mock.add("GET", url, json={"items": [], "_links": {}})
    assert [env async for env in client.environments("my proj")] == []
    assert len(sent(mock, "GET", url)) == 1


async def test_pagination_stops_on_an_empty_page_even_with_a_next_link(
    mock: MemoryTransport, client: Client
) -> None:
    page = {"items": [], "_links": {"next": {"href": "/api/v2/projects?limit=100&offset=100"}}}
    mock.add("GET", PROJECTS + FIRST_PAGE, json=page)
    assert [p async for p in client.projects()] == []
    assert len(all_calls(mock)) == 1


@pytest.mark.parametrize(
    "href",
    ["https://evil.example.com/api/v2/projects?offset=2", "//evil.example.com/x", "/other/path"],
)
async def test_a_next_link_off_the_api_is_refused(
    mock: MemoryTransport, client: Client, href: str
) -> None:
    page = sample("projects_page1.json")
    page["_links"]["next"]["href"] = href
    mock.add("GET", PROJECTS + FIRST_PAGE, json=page)
    with pytest.raises(ResponseFormatError, match=r"unusable _links\.next"):
        await collect(client.projects())
    assert len(all_calls(mock)) == 1


async def test_a_next_link_back_to_the_first_page_is_a_loop(
    mock: MemoryTransport, client: Client
) -> None:
    page = sample("projects_page1.json")
    page["_links"]["next"]["href"] = PROJECTS + FIRST_PAGE
    mock.add("GET", PROJECTS + FIRST_PAGE, json=page, repeat=True)
    with pytest.raises(ResponseFormatError, match="back to a page already read"):
        await collect(client.projects())
    assert len(all_calls(mock)) == 1


async def test_a_next_link_that_always_advances_ends_past_the_page_cap(client: Client) -> None:
    def endless(request: SentRequest) -> RawResponse:
        offset = int(request.path.rsplit("offset=", 1)[1])
        item = {"key": f"p{offset}", "name": "P", "_id": str(offset), "tags": [],
                "_links": {}}  # fmt: skip
        href = f"{PROJECTS}?limit=1&offset={offset + 1}"
        return canned(json={"items": [item], "_links": {"next": {"href": href}}})

    transport = MemoryTransport(endless)
    endless_client = Client(TOKEN, base_url="http://127.0.0.1:9", transport=transport)
    async with endless_client:
        with pytest.raises(ResponseFormatError, match=f"after {MAX_PAGES} pages"):
            await collect(endless_client.projects())
    assert len(transport.requests) == MAX_PAGES


async def test_a_next_link_loop_is_detected(mock: MemoryTransport, client: Client) -> None:
    page = sample("projects_page1.json")
    mock.add("GET", PROJECTS + FIRST_PAGE, json=page)
    mock.add("GET", PROJECTS + "?limit=2&offset=2", json=page, repeat=True)
    with pytest.raises(ResponseFormatError, match=r"unusable _links\.next"):
        await collect(client.projects())
    assert len(sent(mock, "GET", PROJECTS + "?limit=2&offset=2")) == 1


# -- every listed error status of every operation ------------------------------------------


@pytest.mark.parametrize(
    ("operation", "status"),
    [(operation, status) for operation in OPERATIONS for status in operation.errors],
    ids=lambda value: value.name if isinstance(value, Operation) else str(value),
)
async def test_every_listed_error_status_raises_its_exception(
    mock: MemoryTransport, operation: Operation, status: int
) -> None:
    headers = rate_limit_now() if status == 429 else {}
    mock.add(
        operation.method,
        operation.path,
        status,
        json=sample(f"error_{status}.json"),
        headers=headers,
        repeat=True,
    )
    # A zero throttle deadline makes the client give a 429 back instead of waiting it out.
    policy = attrs.evolve(FAST, throttle_deadline_s=0.0)
    async with Client(TOKEN, pacer=quick_pacer(), retry=policy, transport=mock) as ld:
        with pytest.raises(EXCEPTIONS[status]) as info:
            await operation.call(ld)
    error = info.value
    expected = sample(f"error_{status}.json")
    assert error.status == status
    assert (error.code, error.message, error.request_id) == (
        expected["code"],
        expected["message"],
        expected["id"],
    )
    assert error.method == operation.method
    if status == 429:
        assert error.rate_limit is not None
        assert error.rate_limit.retry_after_s == 0.0
    assert_no_secret(error)
    # A status answer is final: nothing but a 5xx or transport error is retried.
    assert len(all_calls(mock)) == 1


async def test_environments_405_is_an_http_status_error(mock: MemoryTransport) -> None:
    operation = BY_NAME["environments"]
    mock.add("GET", operation.path, 405, json={"code": "method_not_allowed", "message": "no"})
    async with Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock) as ld:
        with pytest.raises(HTTPStatusError) as info:
            await operation.call(ld)
    assert type(info.value) is HTTPStatusError
    assert info.value.status == 405


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_raises_server_error_after_retrying_only_what_is_idempotent(
    mock: MemoryTransport, operation: Operation, status: int
) -> None:
    mock.add(
        operation.method,
        operation.path,
        status,
        body=(SAMPLES / "error_502.html").read_bytes(),
        headers=HTML,
        repeat=True,
    )
    async with Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock) as ld:
        with pytest.raises(ServerError) as info:
            await operation.call(ld)
    assert info.value.status == status
    assert info.value.message.startswith("non-JSON body (text/html")
    assert_no_secret(info.value)
    expected_calls = FAST.max_attempts if operation.idempotent else 1
    assert len(all_calls(mock)) == expected_calls


# -- headers actually sent -----------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
async def test_headers_sent_by_every_operation(
    mock: MemoryTransport, client: Client, operation: Operation
) -> None:
    # Any answer will do: the request has been recorded by then.
    mock.add(operation.method, operation.path, 404, json=sample("error_404.json"))
    with pytest.raises(NotFound):
        await operation.call(client)
    (call,) = sent(mock, operation.method, operation.path)
    headers = call.headers
    names = [name.lower() for name in headers]
    assert len(names) == len(set(names)), "a header is sent twice"
    assert headers["Authorization"] == TOKEN
    assert headers["User-Agent"] == f"ldbulk/{__version__}"
    assert names.count("ld-api-version") == (1 if operation.beta else 0)
    if operation.beta:
        assert headers["LD-API-Version"] == "beta"
    has_body = operation.method in ("POST", "PATCH")
    assert ("content-type" in names) is has_body
    assert (call.body is not None) is has_body


async def test_a_redirect_is_an_unusable_answer_not_followed(
    mock: MemoryTransport, client: Client
) -> None:
    # The transport does not follow it (tests/test_transport_aiohttp.py): the token must not
    # go wherever a redirect points.
    mock.add("GET", STORE, 302, headers={"Location": "https://elsewhere.example.com/"})
    with pytest.raises(ResponseFormatError, match="-> 302: empty body"):
        await client.list_integrations()
    assert len(all_calls(mock)) == 1


# -- rate limits ---------------------------------------------------------------------------


async def test_429_then_200_is_retried_transparently(mock: MemoryTransport, client: Client) -> None:
    mock.add("GET", STORE, status=429, json=sample("error_429.json"), headers=rate_limit_now())
    mock.add("GET", STORE, status=200, json=sample("integration_collection.json"))
    integrations = await client.list_integrations()
    assert len(integrations) == 3
    assert len(sent(mock, "GET", STORE)) == 2
    assert client.stats.throttled == 1
    assert client.stats.retries == 0


async def test_429_on_a_create_is_retried_because_nothing_was_applied(
    mock: MemoryTransport, client: Client
) -> None:
    url = f"{STORE}/mobile-app/staging/dynamodb"
    mock.add("POST", url, status=429, json=sample("error_429.json"), headers={"Retry-After": "0"})
    mock.add("POST", url, status=201, json=sample("integration_created_dynamodb.json"))
    integration = await client.create_integration("mobile-app", "staging", DYNAMODB)
    assert integration.integration_key == "dynamodb"
    assert len(sent(mock, "POST", url)) == 2


async def test_429s_do_not_spend_retry_attempts(mock: MemoryTransport, client: Client) -> None:
    for _ in range(FAST.max_attempts + 2):
        mock.add("GET", STORE, status=429, json=sample("error_429.json"), headers=rate_limit_now())
    mock.add("GET", STORE, status=200, json=sample("integration_collection.json"))
    assert len(await client.list_integrations()) == 3
    assert len(sent(mock, "GET", STORE)) == FAST.max_attempts + 3


# -- retries on 5xx and transport errors ---------------------------------------------------


async def test_get_is_retried_on_5xx_until_it_succeeds(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", ONE, status=503, body=b"")
    mock.add("GET", ONE, 502, body=b"<html>bad gateway</html>", headers=HTML)
    mock.add("GET", ONE, status=200, json=sample("integration_single.json"))
    integration = await client.get_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)
    assert integration.id == INTEGRATION_ID
    assert len(sent(mock, "GET", ONE)) == 3
    assert client.stats.retries == 2


# Which failures of aiohttp and the socket are transport errors: test_transport_aiohttp.py.
@pytest.mark.parametrize("error", [TransportError, RequestTimeout])
async def test_get_is_retried_on_transport_errors(
    mock: MemoryTransport, client: Client, error: type[TransportError]
) -> None:
    mock.add("GET", STORE, error=error)
    mock.add("GET", STORE, status=200, json=sample("integration_collection.json"))
    assert len(await client.list_integrations()) == 3
    assert len(sent(mock, "GET", STORE)) == 2


async def test_get_gives_up_after_max_attempts_transport_errors(
    mock: MemoryTransport, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ldbulk")
    mock.add("GET", STORE, error=TransportError, repeat=True)
    with pytest.raises(TransportError) as info:
        await client.list_integrations()
    assert not isinstance(info.value, HTTPStatusError)
    assert (info.value.method, info.value.path) == (
        "GET",
        "/api/v2/integration-capabilities/big-segment-store",
    )
    assert len(sent(mock, "GET", STORE)) == FAST.max_attempts
    assert_no_secret(info.value)
    assert TOKEN not in caplog.text
    # Each failure's line has the request's fields, its time included, as an answer's has.
    failures = [r for r in caplog.records if getattr(r, "error", None)]
    assert len(failures) == FAST.max_attempts
    assert all(isinstance(getattr(r, "ms", None), float) and r.route and r.attempt
               for r in failures)


@pytest.mark.parametrize("operation", ["create", "update"])
async def test_non_idempotent_writes_are_not_retried_on_transport_errors(
    mock: MemoryTransport, client: Client, operation: str
) -> None:
    op = BY_NAME[operation]
    mock.add(op.method, op.path, error=TransportError, repeat=True)
    with pytest.raises(TransportError):
        await op.call(client)
    assert len(all_calls(mock)) == 1


async def test_max_attempts_one_means_no_retry(mock: MemoryTransport) -> None:
    mock.add("GET", STORE, status=500, body=b"", repeat=True)
    policy = attrs.evolve(FAST, max_attempts=1)
    async with Client(TOKEN, pacer=quick_pacer(), retry=policy, transport=mock) as ld:
        with pytest.raises(ServerError):
            await ld.list_integrations()
    assert len(all_calls(mock)) == 1


async def test_an_exhausted_retry_budget_stops_retrying(mock: MemoryTransport) -> None:
    mock.add("GET", STORE, status=500, body=b"", repeat=True)
    # Every retry charged: these failures come back to back, which is otherwise one outage.
    policy = attrs.evolve(FAST, max_attempts=10, budget=2.0, refund=0.0, outage_s=0.0)
    async with Client(TOKEN, pacer=quick_pacer(), retry=policy, transport=mock) as ld:
        with pytest.raises(ServerError):
            await ld.list_integrations()
        assert ld.stats.retries == 2
        with pytest.raises(ServerError):
            await ld.list_integrations()
    assert len(all_calls(mock)) == 3 + 1


async def test_one_outage_of_timeouts_leaves_the_retry_budget_for_later_failures() -> None:
    """200 reads in flight time out together, twice each (a link down for a moment), then
    the link is back. Charged per retry, that outage spent the whole budget of 100, and the
    next transient failure failed its request; one outage costs one charge now."""
    policy = attrs.evolve(FAST, max_attempts=3, refund=0.0)
    tries: dict[str, int] = {}
    body = sample("integration_single.json")

    def link(request: SentRequest) -> RawResponse:
        tries[request.url] = tries.get(request.url, 0) + 1
        if tries[request.url] <= 2:
            raise RequestTimeout("timed out")
        return canned(200, json=body)

    transport = MemoryTransport(link)
    async with Client(TOKEN, pacer=quick_pacer(), retry=policy, transport=transport) as ld:
        await asyncio.gather(
            *(ld.get_integration("p", f"env-{i}", "redis", INTEGRATION_ID) for i in range(200))
        )
        assert ld.stats.retries == 400
        tries.clear()  # every read fails twice again: still retried
        await ld.get_integration("p", "env-0", "redis", INTEGRATION_ID)
        assert ld.stats.retries == 402


async def test_a_timeout_raises_request_timeout_after_the_retries(
    mock: MemoryTransport, client: Client
) -> None:
    # aiohttp's timeouts become RequestTimeout in the transport (tests/test_transport_aiohttp.py).
    mock.add("GET", ONE, error=RequestTimeout, repeat=True)
    with pytest.raises(RequestTimeout) as info:
        await client.get_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)
    assert isinstance(info.value, TransportError)
    assert "timed out" in str(info.value)
    assert len(all_calls(mock)) == FAST.max_attempts


async def test_a_timeout_on_create_is_not_retried(mock: MemoryTransport, client: Client) -> None:
    url = f"{STORE}/checkout/production/redis"
    mock.add("POST", url, error=RequestTimeout, repeat=True)
    with pytest.raises(RequestTimeout):
        await client.create_integration("checkout", "production", REDIS)
    assert len(all_calls(mock)) == 1


# -- response bodies -----------------------------------------------------------------------


# The body cap is the transport's read: tests/test_transport_aiohttp.py.


async def test_a_success_body_of_the_wrong_shape_raises_response_format_error(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", ONE, status=200, json={"_id": 5})
    with pytest.raises(ResponseFormatError, match=r"does not match Integration: .*\$\._id"):
        await client.get_integration("mobile-app", "staging", "dynamodb", INTEGRATION_ID)


async def test_a_non_json_success_body_raises_response_format_error(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", STORE, 200, body=b"<html>maintenance</html>", headers=HTML)
    # The listing is read as it arrives, never held: its length is not known at the fault.
    with pytest.raises(ResponseFormatError, match=r"-> 200: non-JSON body \(text/html\)"):
        await client.list_integrations()


# -- token, base URL, lifecycle ------------------------------------------------------------


def test_missing_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="no access token: pass token= or set LD_ACCESS_TOKEN"):
        Client()


@pytest.mark.parametrize("token", ["", "   "])
def test_blank_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    monkeypatch.delenv("LD_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="no access token"):
        Client(token)


async def test_token_comes_from_ld_access_token_when_not_given(
    monkeypatch: pytest.MonkeyPatch, mock: MemoryTransport
) -> None:
    env_token = "api-from-the-environment"
    monkeypatch.setenv("LD_ACCESS_TOKEN", env_token)
    mock.add("GET", STORE, json=sample("integration_collection.json"))
    async with Client(pacer=quick_pacer(), retry=FAST, transport=mock) as ld:
        await ld.list_integrations()
    (call,) = sent(mock, "GET", STORE)
    assert call.headers["Authorization"] == env_token


async def test_an_explicit_token_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, mock: MemoryTransport
) -> None:
    monkeypatch.setenv("LD_ACCESS_TOKEN", "api-from-the-environment")
    mock.add("GET", STORE, json=sample("integration_collection.json"))
    async with Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock) as ld:
        await ld.list_integrations()
    (call,) = sent(mock, "GET", STORE)
    assert call.headers["Authorization"] == TOKEN


def test_repr_of_client_never_shows_the_token() -> None:
    ld = Client(TOKEN)
    assert TOKEN not in repr(ld)
    assert TOKEN not in str(ld)
    assert repr(ld) == f"Client(base_url={BASE!r})"


@pytest.mark.parametrize(
    ("kwargs", "origin"),
    [
        ({"instance": "federal"}, "https://app.launchdarkly.us"),
        ({"instance": "eu"}, "https://app.eu.launchdarkly.com"),
        ({"base_url": "http://127.0.0.1:8765/"}, "http://127.0.0.1:8765"),
        ({"base_url": "http://localhost:8765", "instance": "eu"}, "http://localhost:8765"),
    ],
)
async def test_requests_go_to_the_chosen_instance(
    mock: MemoryTransport, kwargs: dict[str, Any], origin: str
) -> None:
    mock.add("GET", STORE, json=sample("integration_collection.json"))
    async with Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock, **kwargs) as ld:
        assert ld.base_url == origin
        await ld.list_integrations()
    assert [request.url for request in all_calls(mock)] == [origin + STORE]


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="plain http is only allowed for loopback"):
        Client(TOKEN, base_url="http://app.launchdarkly.com")


async def test_using_the_client_outside_async_with_is_an_error(mock: MemoryTransport) -> None:
    outside = Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock)
    with pytest.raises(RuntimeError, match="async with Client"):
        await outside.list_integrations()
    async with outside:
        pass
    with pytest.raises(RuntimeError, match="async with Client"):
        await outside.list_integrations()
    assert all_calls(mock) == []


async def test_entering_an_open_client_again_is_an_error_that_leaves_it_open(
    mock: MemoryTransport,
) -> None:
    mock.add("GET", STORE, json=sample("integration_collection.json"), repeat=True)
    shared = Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock)
    async with shared:
        # A second handler's `async with` on the shared client: refused at once, and the
        # first one's client is not closed under it.
        with pytest.raises(RuntimeError, match="open already"):
            async with shared:
                pass
        await shared.list_integrations()
    assert len(all_calls(mock)) == 1


async def test_a_request_after_close_says_the_client_is_closed(mock: MemoryTransport) -> None:
    closed = Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock)
    async with closed:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await closed.list_integrations()
    assert all_calls(mock) == []


async def test_the_base_url_comes_from_ld_base_uri_when_not_given(
    monkeypatch: pytest.MonkeyPatch, mock: MemoryTransport
) -> None:
    monkeypatch.setenv("LD_BASE_URI", "http://127.0.0.1:8765")
    assert Client(TOKEN, transport=mock).base_url == "http://127.0.0.1:8765"
    given = Client(TOKEN, base_url="https://app.launchdarkly.us", transport=mock)
    assert given.base_url == "https://app.launchdarkly.us"


async def test_the_account_size_is_what_the_last_listing_found(mock: MemoryTransport) -> None:
    mock.add("GET", STORE, json=sample("integration_collection.json"))
    async with Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock) as ld:
        assert ld.account_size is None
        listed = await ld.list_integrations()
    assert ld.account_size == len(listed)


async def test_closing_twice_is_harmless_and_the_client_stays_closed(
    mock: MemoryTransport,
) -> None:
    mock.add("GET", STORE, json=sample("integration_collection.json"))
    ld = Client(TOKEN, pacer=quick_pacer(), retry=FAST, transport=mock)
    async with ld:
        await ld.list_integrations()
    await ld.aclose()  # a second close raises nothing
    with pytest.raises(RuntimeError, match="async with Client"):
        await ld.list_integrations()
    assert len(all_calls(mock)) == 1


def test_timeouts_default_to_connect_10s_answer_20s_listing_600s() -> None:
    assert Timeouts() == Timeouts(
        connect=10.0, total=20.0, listing=600.0, listing_min_rate=32 * 1024
    )


def test_every_client_error_is_an_ldbulk_error() -> None:
    for cls in (*EXCEPTIONS.values(), ServerError, TransportError, RequestTimeout, ConfigError):
        assert issubclass(cls, LdbulkError)
    assert not issubclass(TransportError, HTTPStatusError)
    assert not issubclass(HTTPStatusError, TransportError)


async def test_a_401_quoting_the_token_raises_an_error_without_it(
    mock: MemoryTransport, client: Client
) -> None:
    mock.add("GET", STORE, status=401,
             json={"code": "unauthorized", "message": f"Invalid access token {TOKEN}"})
    with pytest.raises(Unauthorized) as info:
        await client.list_integrations()
    assert info.value.message == "Invalid access token ***"
    assert_no_secret(info.value)


def test_a_derived_key_is_the_tokens_own_per_label_and_reveals_nothing_of_it() -> None:
    client = Client(TOKEN, base_url="https://app.launchdarkly.com")
    key = client.derive_key("ldbulk state file")
    assert len(key) == 32 and key == client.derive_key("ldbulk state file")
    assert key != client.derive_key("another purpose")
    assert key != Client(TOKEN + "x", base_url=client.base_url).derive_key("ldbulk state file")
    # Not the token, nor an HMAC keyed with it raw: one step further.
    raw = hmac.new(TOKEN.encode(), b"ldbulk state file", hashlib.sha256).digest()
    assert TOKEN.encode() not in key and key != raw
    assert TOKEN not in repr(client) and key.hex() not in repr(vars(client))
