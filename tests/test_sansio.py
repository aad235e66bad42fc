"""The HTTP decisions without I/O: URLs, headers, responses to values or exceptions, backoff."""

from __future__ import annotations

import email.utils
import errno
import json
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import RATE_LIMIT_HEADERS
from multidict import CIMultiDict

from ldbulk import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    HTTPStatusError,
    Integration,
    LdbulkError,
    NotFound,
    RateLimited,
    ResponseFormatError,
    ServerError,
    Unauthorized,
    __version__,
)
from ldbulk.api import sansio
from ldbulk.api.limits import MAX_WAIT_S, RateLimitState, parse_rate_limit, reset_in
from ldbulk.api.sansio import RawResponse
from ldbulk.http.retry import compute_backoff

SAMPLES = Path(__file__).parent / "samples"
TOKEN = "api-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
NOW = 1_717_263_000.0


def response(status: int, body: bytes = b"", **headers: str) -> RawResponse:
    merged = CIMultiDict({"Content-Type": "application/json"})
    for name, value in headers.items():
        merged[name.replace("_", "-")] = value
    return RawResponse(status=status, headers=merged, body=body)


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# -- base URL ------------------------------------------------------------------------------


def test_base_url_defaults_to_the_commercial_instance() -> None:
    assert sansio.resolve_base_url(None) == "https://app.launchdarkly.com"


@pytest.mark.parametrize(
    ("instance", "url"),
    [
        ("commercial", "https://app.launchdarkly.com"),
        ("federal", "https://app.launchdarkly.us"),
        ("eu", "https://app.eu.launchdarkly.com"),
    ],
)
def test_instance_shortcuts_resolve_to_their_hosts(instance: Any, url: str) -> None:
    assert sansio.resolve_base_url(None, instance) == url


def test_unknown_instance_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"instance: 'mars' is not one of"):
        sansio.resolve_base_url(None, "mars")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://app.launchdarkly.com/api/v2", "https://app.launchdarkly.com"),
        ("https://app.eu.launchdarkly.com/api/v2/", "https://app.eu.launchdarkly.com"),
        ("https://ld.example.com:8443/proxy/api/v2", "https://ld.example.com:8443"),
        ("https://app.launchdarkly.com/api", "https://app.launchdarkly.com"),
    ],
)
def test_a_base_url_ending_in_the_api_path_is_refused_naming_the_origin_to_give(
    url: str, origin: str
) -> None:
    with pytest.raises(ConfigError, match="give the origin only") as info:
        sansio.resolve_base_url(url)
    assert f"e.g. {origin} " in str(info.value)


@pytest.mark.parametrize(
    "url", ["https://user:s3cret-pass@ld.example.com", "http://api-token-9@127.0.0.1:8080"]
)
def test_credentials_in_a_base_url_are_refused_without_quoting_them(url: str) -> None:
    with pytest.raises(ConfigError, match="credentials in the URL are refused") as info:
        sansio.resolve_base_url(url)
    assert "s3cret" not in str(info.value) and "api-token-9" not in str(info.value)


def test_explicit_url_wins_over_the_instance_and_loses_its_trailing_slash() -> None:
    assert sansio.resolve_base_url("https://ld.example.com/", "eu") == "https://ld.example.com"
    assert sansio.resolve_base_url("https://ld.example.com:8443/proxy/") == (
        "https://ld.example.com:8443/proxy"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://app.launchdarkly.com",
        "http://10.0.0.5:8080",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://0.0.0.0:8765",
    ],
)
def test_plain_http_is_refused_for_a_non_loopback_host(url: str) -> None:
    with pytest.raises(ConfigError, match=r"plain http is only allowed for loopback"):
        sansio.resolve_base_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://localhost:8765",
        "http://[::1]:8765",
        "http://127.0.0.2",
        "http://LOCALHOST",
    ],
)
def test_plain_http_is_allowed_for_loopback_hosts(url: str) -> None:
    assert sansio.resolve_base_url(url) == url


@pytest.mark.parametrize("url", ["ftp://app.launchdarkly.com", "app.launchdarkly.com", "https://"])
def test_a_base_url_that_is_not_http_with_a_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"is not an http\(s\) URL with a host"):
        sansio.resolve_base_url(url)


# -- paths ---------------------------------------------------------------------------------


def test_integration_path_for_create_and_for_one_integration() -> None:
    base = "/api/v2/integration-capabilities/big-segment-store"
    assert sansio.integration_path("p", "e", "redis") == f"{base}/p/e/redis"
    assert sansio.integration_path("p", "e", "redis", "abc") == f"{base}/p/e/redis/abc"


def test_path_segments_are_escaped() -> None:
    path = sansio.integration_path("my proj", "env/1", "redis", "id?x=1#y")
    assert path.endswith("/my%20proj/env%2F1/redis/id%3Fx%3D1%23y")
    assert sansio.segment("ü%") == "%C3%BC%25"


@pytest.mark.parametrize("key", ["", ".", ".."])
def test_keys_that_url_normalisation_would_drop_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="cannot be a project, environment or integration key"):
        sansio.integration_path(key, "e", "redis")


# -- headers -------------------------------------------------------------------------------


def test_headers_carry_the_raw_token_without_bearer() -> None:
    headers = sansio.request_headers(TOKEN, beta=True, has_body=False)
    assert headers["Authorization"] == TOKEN
    assert not any("Bearer" in value for value in headers.values())


def test_beta_routes_send_exactly_one_ld_api_version_beta() -> None:
    headers = sansio.request_headers(TOKEN, beta=True, has_body=False)
    versions = [value for name, value in headers.items() if name.lower() == "ld-api-version"]
    assert versions == ["beta"]


def test_non_beta_routes_send_no_ld_api_version() -> None:
    headers = sansio.request_headers(TOKEN, beta=False, has_body=False)
    assert not any(name.lower() == "ld-api-version" for name in headers)


def test_content_type_is_sent_only_with_a_body() -> None:
    with_body = sansio.request_headers(TOKEN, beta=True, has_body=True)
    without = sansio.request_headers(TOKEN, beta=True, has_body=False)
    assert with_body["Content-Type"] == "application/json"
    assert not any(name.lower() == "content-type" for name in without)


def test_user_agent_names_ldbulk_and_its_version() -> None:
    headers = sansio.request_headers(TOKEN, beta=False, has_body=False)
    assert headers["User-Agent"] == f"ldbulk/{__version__}"
    assert headers["Accept"] == "application/json"


# -- error responses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "cls"),
    [
        (400, "error_400.json", BadRequest),
        (401, "error_401.json", Unauthorized),
        (403, "error_403.json", Forbidden),
        (404, "error_404.json", NotFound),
        (409, "error_409.json", Conflict),
        (429, "error_429.json", RateLimited),
    ],
)
def test_each_error_status_maps_to_its_exception_with_code_message_and_id(
    status: int, name: str, cls: type[HTTPStatusError]
) -> None:
    body = sample_bytes(name)
    raw = json.loads(body)
    error = sansio.error_from_response("POST", "/api/v2/x", response(status, body))
    assert type(error) is cls
    assert isinstance(error, LdbulkError)
    assert error.status == status
    assert (error.code, error.message, error.request_id) == (raw["code"], raw["message"], raw["id"])
    assert (error.method, error.path) == ("POST", "/api/v2/x")
    assert str(error) == (
        f"POST /api/v2/x -> {status} {raw['code']}: {raw['message']} (request id {raw['id']})"
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_every_5xx_is_a_server_error(status: int) -> None:
    error = sansio.error_from_response("GET", "/p", response(status, b'{"code":"internal"}'))
    assert type(error) is ServerError
    assert error.status == status


@pytest.mark.parametrize("status", [402, 405, 410, 418, 422])
def test_an_unlisted_error_status_is_a_plain_http_status_error(status: int) -> None:
    error = sansio.error_from_response("GET", "/p", response(status, b"{}"))
    assert type(error) is HTTPStatusError
    assert error.status == status


def test_a_429_carries_the_parsed_rate_limit_state() -> None:
    raw = response(
        429,
        sample_bytes("error_429.json"),
        **{
            "Retry-After": "7",
            "X-Ratelimit-Reset": "1717263010000",
            "X-Ratelimit-Global-Limit": "200",
            "X-Ratelimit-Global-Remaining": "0",
            "X-Ratelimit-Route-Limit": "20",
            "X-Ratelimit-Route-Remaining": "3",
        },
    )
    error = sansio.error_from_response("GET", "/p", raw)
    assert isinstance(error, RateLimited)
    assert error.rate_limit is not None
    assert error.rate_limit.retry_after_s == 7.0
    assert error.rate_limit.reset_ms == 1717263010000
    assert error.rate_limit.global_remaining == 0
    assert error.rate_limit.global_limit == 200
    assert error.rate_limit.route_remaining == 3
    assert error.rate_limit.route_limit == 20


def test_a_429_without_rate_limit_headers_still_carries_a_state() -> None:
    error = sansio.error_from_response("GET", "/p", response(429, b""))
    assert error.rate_limit == RateLimitState()


def test_non_429_errors_carry_no_rate_limit_state() -> None:
    raw = response(503, b"", **{"Retry-After": "5"})
    assert sansio.error_from_response("GET", "/p", raw).rate_limit is None


def test_an_html_502_from_a_proxy_gives_a_clean_server_error() -> None:
    body = sample_bytes("error_502.html")
    raw = RawResponse(
        status=502, headers=CIMultiDict({"Content-Type": "text/html; charset=utf-8"}), body=body
    )
    error = sansio.error_from_response("GET", "/api/v2/projects", raw)
    assert type(error) is ServerError
    assert error.code == ""
    assert error.request_id is None
    assert error.message == f"non-JSON body (text/html, {len(body)} bytes)"
    assert "<html>" not in str(error)
    assert str(error) == f"GET /api/v2/projects -> 502 non-JSON body (text/html, {len(body)} bytes)"


def test_an_empty_error_body_says_so() -> None:
    error = sansio.error_from_response("DELETE", "/p", response(404, b""))
    assert type(error) is NotFound
    assert error.message == "empty body"
    assert str(error) == "DELETE /p -> 404 empty body"


def test_a_truncated_json_error_body_gives_a_clean_error() -> None:
    body = sample_bytes("error_409.json")[:25]
    error = sansio.error_from_response("POST", "/p", response(409, body))
    assert type(error) is Conflict
    assert error.message == f"non-JSON body (application/json, {len(body)} bytes)"


def test_an_error_body_without_content_type_is_summarised() -> None:
    raw = RawResponse(status=500, headers=CIMultiDict(), body=b"\xff\xfe oops")
    error = sansio.error_from_response("GET", "/p", raw)
    assert error.message == "non-JSON body (unknown content type, 7 bytes)"


@pytest.mark.parametrize("body", [b'["a"]', b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_gives_a_clean_error(body: bytes) -> None:
    error = sansio.error_from_response("GET", "/p", response(400, body))
    assert type(error) is BadRequest
    assert error.code == ""
    assert "non-JSON body" in error.message


def test_an_error_object_of_the_wrong_shape_gives_a_clean_error() -> None:
    body = json.dumps({"code": 7, "message": ["secret-detail"], "id": 1}).encode()
    error = sansio.error_from_response("GET", "/p", response(403, body))
    assert type(error) is Forbidden
    assert error.message == "error body in an unexpected shape"
    assert "secret-detail" not in str(error)


def test_an_error_body_with_extra_fields_and_no_id_is_read() -> None:
    body = json.dumps({"code": "forbidden", "message": "Nope", "docs": "x"}).encode()
    error = sansio.error_from_response("GET", "/p", response(403, body))
    assert (error.code, error.message, error.request_id) == ("forbidden", "Nope", None)
    assert str(error) == "GET /p -> 403 forbidden: Nope"


def test_a_hostile_error_message_is_cut_to_a_bound() -> None:
    body = json.dumps({"code": "invalid_request", "message": "x" * 200_000}).encode()
    error = sansio.error_from_response("GET", "/p", response(400, body))
    assert len(error.message) == sansio.MAX_MESSAGE_CHARS


def test_code_and_id_are_escaped_at_the_source_and_the_message_is_kept_for_redaction() -> None:
    # The message may quote a secret as it was sent: it stays raw until the engine has
    # redacted it; every output escapes it after that (test_run_lifecycle, test_report).
    body = json.dumps({"code": "x\x1b[2J", "message": "\x00\x1b[31m\x07", "id": "r\x9b"})
    error = sansio.error_from_response("GET", "/p", response(400, body.encode()))
    assert (error.code, error.message, error.request_id) == (
        "x\\x1b[2J",
        "\x00\x1b[31m\x07",
        "r\\x9b",
    )


# -- success responses ---------------------------------------------------------------------


def test_decode_structures_a_success_body() -> None:
    raw = response(200, sample_bytes("integration_single.json"))
    integration = sansio.decode("GET", "/p", raw, Integration)
    assert integration.id == "6650f3d08b17c2e54a9f0b77"


def test_decode_raises_the_status_error_for_an_error_response() -> None:
    with pytest.raises(NotFound):
        sansio.decode("GET", "/p", response(404, sample_bytes("error_404.json")), Integration)


@pytest.mark.parametrize("body", [b"", b"<html></html>", b'{"_id": "x"', b"\xff"])
def test_decode_json_of_a_success_that_is_not_json_is_a_response_format_error(
    body: bytes,
) -> None:
    with pytest.raises(ResponseFormatError, match=r"^GET /p -> 200: (empty body|non-JSON body)"):
        sansio.decode_json("GET", "/p", response(200, body))


def test_decode_names_the_route_when_the_shape_is_wrong() -> None:
    with pytest.raises(ResponseFormatError, match=r"^GET /p does not match Integration: .*\$\._id"):
        sansio.decode("GET", "/p", response(200, b'{"_id": 1}'), Integration)


def test_expect_no_content_accepts_204_and_raises_for_errors() -> None:
    assert sansio.expect_no_content("DELETE", "/p", response(204)) is None
    with pytest.raises(Conflict):
        sansio.expect_no_content("DELETE", "/p", response(409, sample_bytes("error_409.json")))


# -- rate-limit headers --------------------------------------------------------------------


def test_parse_rate_limit_reads_every_header() -> None:
    headers = CIMultiDict(
        {
            "X-Ratelimit-Global-Limit": "1000",
            "X-Ratelimit-Global-Remaining": "998",
            "X-Ratelimit-Route-Limit": "50",
            "X-Ratelimit-Route-Remaining": "49",
            "X-Ratelimit-Reset": "1717263010000",
            "X-Ratelimit-Auth-Token-Limit": "300",
            "X-Ratelimit-Auth-Token-Remaining": "12",
            "X-Ratelimit-Auth-Token-Reset": "1717263005000",
            "Retry-After": "3",
        }
    )
    assert parse_rate_limit(headers, now=NOW) == RateLimitState(
        global_limit=1000,
        global_remaining=998,
        route_limit=50,
        route_remaining=49,
        reset_ms=1717263010000,
        token_limit=300,
        token_remaining=12,
        token_reset_ms=1717263005000,
        retry_after_s=3.0,
    )


def test_parse_rate_limit_header_names_are_case_insensitive() -> None:
    headers = CIMultiDict({"x-ratelimit-route-remaining": "4", "retry-after": "2"})
    state = parse_rate_limit(headers, now=NOW)
    assert state.route_remaining == 4
    assert state.retry_after_s == 2.0


def test_absent_rate_limit_headers_are_none() -> None:
    assert parse_rate_limit(CIMultiDict(), now=NOW) == RateLimitState()
    state = parse_rate_limit(CIMultiDict({"X-Ratelimit-Global-Remaining": "5"}), now=NOW)
    assert state.global_remaining == 5
    assert state.route_remaining is None
    assert state.reset_ms is None
    assert state.retry_after_s is None


@pytest.mark.parametrize("value", ["", "abc", "-1", "1.5", "12 apples", "0x10", "-0x1"])
def test_garbage_or_negative_rate_limit_counts_are_none(value: str) -> None:
    headers = CIMultiDict({name: value for name in RATE_LIMIT_HEADERS})
    state = parse_rate_limit(headers, now=NOW)
    assert state == RateLimitState()


def test_rate_limit_counts_tolerate_surrounding_whitespace() -> None:
    state = parse_rate_limit(CIMultiDict({"X-Ratelimit-Route-Remaining": " 7 "}), now=NOW)
    assert state.route_remaining == 7


@pytest.mark.parametrize("value", ["soon", "", "Mon, 99 Foo 2024", "nan", "Tue, 04 Jun 2024 17:30"])
def test_garbage_retry_after_is_none(value: str) -> None:
    assert parse_rate_limit(CIMultiDict({"Retry-After": value}), now=NOW).retry_after_s is None


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("30", 30.0), (" 5 ", 5.0)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_rate_limit(CIMultiDict({"Retry-After": value}), now=NOW).retry_after_s == seconds


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    when = email.utils.format_datetime(datetime.fromtimestamp(NOW + 42, UTC), usegmt=True)
    state = parse_rate_limit(CIMultiDict({"Retry-After": when}), now=NOW)
    assert state.retry_after_s == pytest.approx(42.0)


def test_retry_after_http_date_in_the_past_means_now() -> None:
    when = email.utils.format_datetime(datetime.fromtimestamp(NOW - 60, UTC), usegmt=True)
    assert parse_rate_limit(CIMultiDict({"Retry-After": when}), now=NOW).retry_after_s == 0.0


def test_an_absurd_retry_after_is_capped() -> None:
    state = parse_rate_limit(CIMultiDict({"Retry-After": "86400"}), now=NOW)
    assert state.retry_after_s == MAX_WAIT_S


# -- backoff -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0)]
)
def test_backoff_ceiling_doubles_per_attempt(attempt: int, ceiling: float) -> None:
    assert compute_backoff(attempt, base=0.5, cap=30.0, rand=lambda: 1.0) == ceiling


def test_backoff_is_capped() -> None:
    assert compute_backoff(7, base=0.5, cap=30.0, rand=lambda: 1.0) == 30.0
    assert compute_backoff(60, base=0.5, cap=30.0, rand=lambda: 1.0) == 30.0


def test_backoff_uses_full_jitter_between_zero_and_the_ceiling() -> None:
    assert compute_backoff(3, base=0.5, cap=30.0, rand=lambda: 0.0) == 0.0
    assert compute_backoff(3, base=0.5, cap=30.0, rand=lambda: 0.25) == 0.5


@pytest.mark.parametrize("attempt", [0, 1])
def test_backoff_first_attempt_never_exceeds_base(attempt: int) -> None:
    assert compute_backoff(attempt, base=0.2, cap=30.0, rand=lambda: 1.0) == 0.2


@pytest.mark.parametrize("attempt", range(1, 40))
def test_backoff_stays_within_bounds_with_the_default_random(attempt: int) -> None:
    assert (
        0.0 <= compute_backoff(attempt, base=0.5, cap=30.0) <= min(30.0, 0.5 * 2 ** (attempt - 1))
    )


# -- when a throttled request may go again -------------------------------------------------


def test_resume_at_without_any_hint_is_one_window_later() -> None:
    assert RateLimitState().resume_at(NOW) == NOW + 10.0


def test_resume_at_takes_the_latest_of_retry_after_and_the_resets() -> None:
    state = RateLimitState(
        retry_after_s=2.0, reset_ms=int((NOW + 5) * 1000), token_reset_ms=int((NOW + 3) * 1000)
    )
    assert state.resume_at(NOW) == pytest.approx(NOW + 5 + 0.1)
    assert RateLimitState(retry_after_s=8.0, reset_ms=int(NOW * 1000)).resume_at(NOW) == NOW + 8


def test_resume_at_never_parks_a_run_on_a_broken_reset() -> None:
    """A reset more than one window ahead is broken: one window from now, not a day."""
    state = RateLimitState(reset_ms=int((NOW + 86_400) * 1000))
    assert state.resume_at(NOW) == NOW + 10.0


def test_resume_at_a_reset_in_the_past_without_a_date_is_one_window_later() -> None:
    """Retrying on a reset already past sent request after request into a spent window."""
    assert RateLimitState(reset_ms=int((NOW - 3) * 1000)).resume_at(NOW) == NOW + 10.0


def test_resume_at_one_window_is_the_window_as_learned() -> None:
    assert RateLimitState(reset_ms=int((NOW - 3) * 1000)).resume_at(NOW, window=2.0) == NOW + 2


def test_resume_at_reads_the_reset_against_the_answers_own_date() -> None:
    """A server 30 s behind ours: its reset is 4 s after its Date, so 4 s from its now."""
    server_now = NOW - 30
    state = RateLimitState(reset_ms=int((server_now + 4) * 1000), date=server_now)
    assert state.resume_at(server_now) == pytest.approx(server_now + 4 + 0.1)


def http_date(epoch: float) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


def test_parse_rate_limit_reads_the_date_header() -> None:
    assert parse_rate_limit(CIMultiDict({"Date": http_date(NOW - 30)}), now=NOW).date == NOW - 30


@pytest.mark.parametrize("value", ["", "yesterday", "Tue, 04 Jun 2024 17:30", "Mon, 99 Foo 2024"])
def test_a_garbage_date_header_is_none(value: str) -> None:
    assert parse_rate_limit(CIMultiDict({"Date": value}), now=NOW).date is None


def test_retry_after_as_an_http_date_counts_from_the_answers_date() -> None:
    """Both dates are the server's clock, 30 s behind ours: 5 s, not 0."""
    headers = CIMultiDict({"Date": http_date(NOW - 30), "Retry-After": http_date(NOW - 25)})
    assert parse_rate_limit(headers, now=NOW).retry_after_s == 5.0


# -- a reset against the clock that wrote it -----------------------------------------------


def test_reset_in_counts_on_the_servers_clock() -> None:
    assert reset_in(int((NOW + 7) * 1000), now=NOW + 0.3, date=NOW) == pytest.approx(6.7)


@pytest.mark.parametrize("since", [-1.0, 0.0, 11.5, 86_400.0])
def test_reset_in_refuses_a_reset_before_its_date_or_past_one_window_after(since: float) -> None:
    assert reset_in(int((NOW + since) * 1000), now=NOW, date=NOW) is None


def test_reset_in_allows_the_second_a_date_drops() -> None:
    assert reset_in(int((NOW + 10.9) * 1000), now=NOW + 0.95, date=NOW) == pytest.approx(9.95)


def test_reset_in_a_late_answer_is_a_window_already_ended() -> None:
    """Made 20 s ago by its Date, its reset (5 s after that) passed 15 s ago."""
    assert reset_in(int((NOW - 15) * 1000), now=NOW, date=NOW - 20) == pytest.approx(-15)


def test_reset_in_is_never_further_than_from_the_answers_date() -> None:
    """A ``now`` learned from older answers that runs behind (the server's clock was stepped
    forward since) cannot make the reset look further than its own Date says."""
    assert reset_in(int((NOW + 4) * 1000), now=NOW - 30, date=NOW) == 4.0


def test_reset_in_without_a_date_uses_now_and_the_window_as_learned() -> None:
    assert reset_in(int((NOW + 4) * 1000), now=NOW) == 4.0
    # Past by our clock: a late answer's, or a server behind us; it ends a window from now.
    assert reset_in(int((NOW - 4) * 1000), now=NOW) is None
    assert reset_in(int((NOW + 4) * 1000), now=NOW, window=2.0) is None
    assert reset_in(int((NOW - 30) * 1000), now=NOW) is None


# -- transport failures in words -----------------------------------------------------------


def wrapped(cause: BaseException) -> BaseException:
    """An error as aiohttp raises it: its own class, the socket or TLS error as the cause."""
    outer = aiohttp.ClientOSError()
    outer.__cause__ = cause
    return outer


def tls_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    error.reason = reason
    return error


def certificate_error(why: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {why}")
    error.verify_message = why
    return error


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), "connection refused"),
        # Every address of the name refused: one OSError, the errno of them all.
        (OSError(errno.ECONNREFUSED, "Multiple exceptions: ..."), "connection refused"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "connection reset"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "name not found"),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), "name not found"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "network unreachable"),
        (TimeoutError(), "timed out"),
        (tls_error("WRONG_VERSION_NUMBER"), "TLS: wrong version number"),
        (certificate_error("self-signed certificate"), "TLS: certificate verify failed"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_a_transport_failure_is_described_by_its_cause_not_by_aiohttps_class(
    error: BaseException, words: str
) -> None:
    text = sansio.describe_transport_error(wrapped(error), "https://app.launchdarkly.com")
    assert text.startswith(f"app.launchdarkly.com:443: {words}")
    assert "ClientOSError" not in text


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "port"),
        (socket.gaierror(socket.EAI_NONAME, "unknown"), "host name"),
        (tls_error("WRONG_VERSION_NUMBER"), "plain HTTP"),
        (certificate_error("unable to get local issuer certificate"), "--ca-bundle"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_a_transport_failure_carries_a_hint_where_one_exists(
    error: BaseException, hint: str
) -> None:
    assert hint in sansio.describe_transport_error(error, "https://app.launchdarkly.com")


def test_the_certificate_problem_is_named() -> None:
    text = sansio.describe_transport_error(
        wrapped(certificate_error("Hostname mismatch")), "https://ld.example.com:8443"
    )
    assert text.startswith("ld.example.com:8443: TLS: certificate verify failed: Hostname mismatch")


def test_the_port_defaults_by_scheme_and_ipv6_hosts_are_bracketed() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert sansio.describe_transport_error(refused, "http://localhost").startswith(
        "localhost:80: "
    )
    assert sansio.describe_transport_error(refused, "http://[::1]:8765").startswith("[::1]:8765: ")


def test_an_unknown_failure_keeps_aiohttps_words() -> None:
    text = sansio.describe_transport_error(
        aiohttp.ServerDisconnectedError(), "https://app.launchdarkly.com"
    )
    assert text == "app.launchdarkly.com:443: ServerDisconnectedError: Server disconnected"


def test_a_transport_description_escapes_control_characters() -> None:
    text = sansio.describe_transport_error(
        aiohttp.ClientPayloadError("cut \x1b[2J short"), "https://app.launchdarkly.com"
    )
    assert "\x1b" not in text and "\\x1b[2J" in text


# -- an answer that quotes the access token -------------------------------------------------

SECRET_TOKEN = "api-1b2c3d4e-quoted-back"


def test_an_error_message_quoting_the_token_loses_every_whole_occurrence() -> None:
    body = json.dumps({
        "code": "unauthorized",
        "message": f"Invalid token {SECRET_TOKEN} (header 'Authorization: {SECRET_TOKEN}')",
        "id": f"req-{SECRET_TOKEN}",
    }).encode()
    error = sansio.error_from_response(
        "GET", "/x", sansio.without_secret(response(401, body), SECRET_TOKEN)
    )
    assert error.message == "Invalid token *** (header 'Authorization: ***')"
    assert error.request_id == "req-***" and SECRET_TOKEN not in str(error)


def test_a_token_written_with_json_escapes_is_found_too() -> None:
    escaped = "\\u0061" + SECRET_TOKEN[1:]  # "api-..." with its first letter escaped
    body = ('{"code": "unauthorized", "message": "refused ' + escaped + '"}').encode()
    error = sansio.error_from_response(
        "GET", "/x", sansio.without_secret(response(401, body), SECRET_TOKEN)
    )
    assert error.message == "refused ***"


def test_only_whole_occurrences_are_redacted() -> None:
    """A part of the token (the "api-" every token starts with) is no secret: kept."""
    body = json.dumps({"message": "tokens start with api- and this is not api-1b2c3d4e"}).encode()
    kept = sansio.without_secret(response(401, body), SECRET_TOKEN)
    assert kept.body == body


def test_a_token_where_the_message_is_cut_shows_no_part_of_it() -> None:
    """Redacted before the cut at MAX_MESSAGE_CHARS: a token across the cut is not half-shown."""
    message = "x" * (sansio.MAX_MESSAGE_CHARS - 10) + SECRET_TOKEN + "y" * 100
    body = json.dumps({"message": message}).encode()
    error = sansio.error_from_response(
        "GET", "/x", sansio.without_secret(response(401, body), SECRET_TOKEN)
    )
    assert SECRET_TOKEN[:10] not in error.message


def test_a_body_that_is_not_json_loses_the_token_and_one_without_it_is_kept_as_is() -> None:
    page = f"<html>refused {SECRET_TOKEN}</html>".encode()
    assert sansio.without_secret(response(401, page), SECRET_TOKEN).body == (
        b"<html>refused ***</html>"
    )
    listing = response(200, b'{"items": []}')
    assert sansio.without_secret(listing, SECRET_TOKEN) is listing
