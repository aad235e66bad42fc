"""The async client for LaunchDarkly's persistent store integration API.

One method per operation. Every request goes out through the client's
:class:`~ldbulk.http.exchange.Exchange`, the single place where pacing, 429 handling and
retries happen; a :class:`~ldbulk.http.transport.Transport` carries it (aiohttp unless the
caller gives another).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, TypeVar

from ldbulk.api import sansio
from ldbulk.api.listing import ListingReader
from ldbulk.api.models import (
    CreateIntegrationRequest,
    Environment,
    Integration,
    Page,
    Project,
    StoreConfig,
)
from ldbulk.errors import ConfigError, ResponseFormatError
from ldbulk.http.exchange import Exchange
from ldbulk.http.meter import ClientStats
from ldbulk.http.pacer import Pacer
from ldbulk.http.retry import Retriable, RetryContext, RetryPolicy
from ldbulk.http.scope import RequestScope
from ldbulk.http.transport import DEFAULT_MAX_BODY_BYTES, AiohttpTransport, Timeouts, Transport

T = TypeVar("T")

__all__ = ["BASE_URI_ENV", "PAGE_SIZE", "TOKEN_ENV", "Client", "ClientStats", "Timeouts"]

TOKEN_ENV: Final = "LD_ACCESS_TOKEN"
# The base URL a client without ``base_url`` talks to, when set (the command line's
# ``--base-uri`` reads it too): a sandbox, a proxy, or another instance.
BASE_URI_ENV: Final = "LD_BASE_URI"
PAGE_SIZE: Final = 100
# A listing of projects or environments ends with an error past this many pages or items: far
# above any real account (LaunchDarkly accounts hold hundreds of projects, a project tens of
# environments), and reached by a server whose ``next`` link always advances within minutes,
# not after hours and gigabytes.
MAX_PAGES: Final = 1_000
MAX_ITEMS: Final = 100_000
# How many encoded create bodies a client keeps (one per store of a manifest, typically).
_BODIES_KEPT: Final = 256


class Client:
    """An async LaunchDarkly API client, used as an async context manager::

        async with Client(base_url="http://127.0.0.1:8765") as client:
            integrations = await client.list_integrations()

    One client per application, entered once (at start-up) and shared freely by every task:
    one :class:`Pacer` then sees every request of the process and one connection pool serves
    them. Entering a client that is open already, or a request before it is entered or after
    it is closed, raises :class:`RuntimeError` at once (two handlers each doing ``async with
    client:`` would close it under each other). A closed client may be entered again.

    ``token`` defaults to ``$LD_ACCESS_TOKEN``; ``base_url`` to ``$LD_BASE_URI`` when set, else
    the ``instance``'s API (commercial, federal or EU); plain http only on loopback.
    ``transport`` carries the requests, and is closed with the client; by default an
    :class:`~ldbulk.http.transport.AiohttpTransport` built from ``timeouts``, ``ca_bundle``,
    ``max_body_bytes`` and ``connection_limit``, which apply to that default only.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        instance: sansio.Instance = "commercial",
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, so sharing it is safe
        pacer: Pacer | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing it is safe
        ca_bundle: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connection_limit: int | None = None,
        transport: Transport | None = None,
    ) -> None:
        token = _token_from(token)
        if base_url is None:
            base_url = os.environ.get(BASE_URI_ENV) or None
        self.base_url = sansio.resolve_base_url(base_url, instance)
        self._account_size: int | None = None
        # The root of derive_key: one HMAC step away from the token, which it never reveals.
        self._derived_root = hmac.digest(token.encode(), b"ldbulk derived keys", "sha256")
        self.pacer = pacer if pacer is not None else Pacer()
        self.retry = retry
        if transport is None:
            transport = AiohttpTransport(timeouts=timeouts, ca_bundle=ca_bundle,
                                         max_body_bytes=max_body_bytes,
                                         connection_limit=connection_limit)
        self._create_body = _CreateBodies()
        self._exchange = Exchange(token=token, base_url=self.base_url, transport=transport,
                                  pacer=self.pacer, policy=retry)

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def derive_key(self, label: str) -> bytes:
        """A 32-byte key for ``label`` that only this client's access token gives (HMAC-SHA256
        steps from the token): to sign a file the token must vouch for, such as the state
        file, without storing the token or using it raw. Another token, another key."""
        return hmac.digest(self._derived_root, label.encode(), "sha256")

    async def __aenter__(self) -> Client:
        if self._exchange.is_open:
            raise RuntimeError(
                "this Client is open already: enter it once (one Client per application, "
                "shared by every task), not in each task or handler that uses it"
            )
        self._exchange.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport; the client cannot be used until it is entered again."""
        await self._exchange.aclose()

    @property
    def account_size(self) -> int | None:
        """How many integrations this client's last listing of the account found (None
        before its first): what tells a small batch from a large one
        (:mod:`ldbulk.engine.batch`)."""
        return self._account_size

    @property
    def stats(self) -> ClientStats:
        """Requests, 429s, retries and seconds paused by the pacer, over every run so far.

        A run's own counts are in the :class:`~ldbulk.http.scope.RequestScope` it passes.
        """
        return self._exchange.meter.snapshot()

    # -- operations -------------------------------------------------------------------------

    async def create_integration(
        self,
        project: str,
        environment: str,
        config: StoreConfig,
        *,
        on: bool = False,
        tags: Sequence[str] = (),
        name: str | None = None,
        lean: bool = False,
        scope: RequestScope | None = None,
    ) -> Integration:
        """Create a persistent store integration; the integration key follows from ``config``.

        A create is sent once: after a transport error or a 5xx LaunchDarkly may or may not have
        applied it, so retrying is the caller's decision (the bulk engine checks first).
        ``lean`` reads of the answer only the id, keys, ``on``, tags, name and version (status,
        access and links left empty), which is most of a create's CPU for a caller that
        creates thousands. ``scope`` (every operation takes one) counts the request for a run,
        and stops it from being sent once the run is stopped.
        """
        path = sansio.integration_path(project, environment, config.integration_key)
        response = await self._exchange(
            sansio.ROUTE_CREATE,
            "POST",
            path,
            body=self._create_body(config, on, tuple(tags), name),
            idempotent=False,
            scope=scope,
        )
        if lean:
            return sansio.decode_lean("POST", path, response)
        return sansio.decode("POST", path, response, Integration)

    async def list_integrations(
        self,
        *,
        lean: bool = False,
        scope: RequestScope | None = None,
        took: list[float] | None = None,
    ) -> list[Integration]:
        """Every persistent store integration of the account (one request, no config).

        Read as it arrives, with no cap on its size (250,000 integrations answer ~180 MB):
        memory follows the integrations kept, and the time it may take what it brought (see
        :class:`~ldbulk.http.transport.Timeouts`). ``lean`` keeps of each only its id, keys,
        ``on``, tags, name and version, what a run of hundreds of thousands can hold. ``took``
        gets the seconds the answered try took from its send to its last byte (no wait for a
        turn, no unanswered tries): the listing's cost.
        """
        path = sansio.BIG_SEGMENT_STORE
        what = f"GET {path}"
        loop = asyncio.get_running_loop()
        sent = loop.time()

        def reader() -> ListingReader:
            # Made for each try just before it is sent: the answered one's is the last.
            nonlocal sent
            sent = loop.time()
            return ListingReader(what, lean=lean)

        response = await self._exchange(
            sansio.ROUTE_LIST, "GET", path, scope=scope, sink=reader
        )
        if took is not None:
            took.append(loop.time() - sent)
        listed: list[Integration] = sansio.decode_streamed("GET", path, response)
        self._account_size = len(listed)
        return listed

    async def get_integration(
        self,
        project: str,
        environment: str,
        integration_key: str,
        integration_id: str,
        *,
        scope: RequestScope | None = None,
    ) -> Integration:
        """One integration, with its (redacted) config and status."""
        path = sansio.integration_path(project, environment, integration_key, integration_id)
        response = await self._exchange(sansio.ROUTE_GET, "GET", path, scope=scope)
        return sansio.decode("GET", path, response, Integration)

    async def update_integration(
        self,
        project: str,
        environment: str,
        integration_key: str,
        integration_id: str,
        patch: Sequence[Mapping[str, Any]],
        *,
        scope: RequestScope | None = None,
    ) -> Integration:
        """Apply an RFC 6902 JSON Patch (``test`` ops make it conditional)."""
        _check_patch(patch)
        path = sansio.integration_path(project, environment, integration_key, integration_id)
        response = await self._exchange(
            sansio.ROUTE_PATCH,
            "PATCH",
            path,
            body=[dict(op) for op in patch],
            idempotent=False,
            scope=scope,
        )
        return sansio.decode("PATCH", path, response, Integration)

    async def delete_integration(
        self,
        project: str,
        environment: str,
        integration_key: str,
        integration_id: str,
        *,
        scope: RequestScope | None = None,
    ) -> None:
        """Delete one integration (LaunchDarkly answers 204).

        A delete is retried after a lost answer; when the retry finds the integration gone
        (404), the lost try did the deleting, so that counts as deleted too.
        """
        path = sansio.integration_path(project, environment, integration_key, integration_id)
        attempts: list[int] = []
        response = await self._exchange(
            sansio.ROUTE_DELETE, "DELETE", path, scope=scope, attempts=attempts
        )
        # Only a try whose answer was lost (no answer, or a 5xx) may have deleted it; a 429
        # before the 404 was refused, so that 404 is the integration's own.
        if response.status == 404 and any(status == 0 or status >= 500 for status in attempts):
            return
        sansio.expect_no_content("DELETE", path, response)

    def projects(self, *, scope: RequestScope | None = None) -> AsyncIterator[Project]:
        """Every project of the account, page after page."""
        return _pages(self._exchange, sansio.ROUTE_PROJECTS, "/api/v2/projects", Project, scope)

    def environments(
        self, project: str, *, scope: RequestScope | None = None
    ) -> AsyncIterator[Environment]:
        """Every environment of a project, page after page (SDK keys are never kept)."""
        path = f"/api/v2/projects/{sansio.segment(project)}/environments"
        return _pages(self._exchange, sansio.ROUTE_ENVIRONMENTS, path, Environment, scope)

    def retry_context(
        self, scope: RequestScope | None = None, *, on: Retriable = ()
    ) -> RetryContext:
        """The attempts of one operation under this client's retry policy and budget: the
        loop the client retries its own requests with, for a caller's own retries. Each retry
        is taken from the budget every request of the client shares and counted in
        :attr:`stats` and in ``scope``, whose stop ends a backoff with
        :class:`~ldbulk.errors.Stopped` (see :class:`~ldbulk.http.retry.RetryContext`).
        """
        return self._exchange.retry_context(scope, on=on)


class _CreateBodies:
    """Encoded create bodies by (config, on, tags, name): the same for every target of one
    store, so encoded once for all of them (configs are frozen, and equal configs send the
    same values). They hold the configs' secrets, as the configs themselves do, for no
    longer than the client lives."""

    def __init__(self) -> None:
        self._kept: dict[tuple[StoreConfig, bool, tuple[str, ...], str | None], bytes] = {}

    def __call__(
        self, config: StoreConfig, on: bool, tags: tuple[str, ...], name: str | None
    ) -> bytes:
        if config.unset:
            # Never kept: to_api refuses it, and a placeholder must not stand for a value.
            return CreateIntegrationRequest(config=config, on=on, tags=tags, name=name).to_bytes()
        key = (config, on, tags, name)
        body = self._kept.get(key)
        if body is None:
            if len(self._kept) >= _BODIES_KEPT:
                self._kept.clear()  # a caller of endless distinct stores: start over
            request = CreateIntegrationRequest(config=config, on=on, tags=tags, name=name)
            body = self._kept[key] = request.to_bytes()
        return body


async def _pages(
    exchange: Exchange, route: str, path: str, item: type[T], scope: RequestScope | None
) -> AsyncIterator[T]:
    """Page after page, until a page has no items or no ``next``; a ``next`` that leaves
    the API or comes back to a page already read, or a listing past :data:`MAX_PAGES`
    or :data:`MAX_ITEMS`, ends it with :class:`~ldbulk.errors.ResponseFormatError`."""
    params: dict[str, str] | None = {"limit": str(PAGE_SIZE), "offset": "0"}
    # The first page as a next link would name it, so a link back to it is a cycle too.
    seen = {f"{path}?limit={PAGE_SIZE}&offset=0"}
    next_path: str | None = path
    pages = items = 0
    while next_path is not None:
        response = await exchange(
            route, "GET", next_path, params=params, beta=False, scope=scope
        )
        page = sansio.decode("GET", next_path, response, Page[item])  # type: ignore[valid-type]
        pages, items = pages + 1, items + len(page.items)
        for entry in page.items:
            yield entry
        href = page.next_href
        if not page.items or href is None:
            return
        # The next link must stay on this API: the token goes wherever it points.
        if not href.startswith("/api/v2/"):
            raise ResponseFormatError(f"GET {path}: unusable _links.next {href!r}")
        if href in seen:
            raise ResponseFormatError(
                f"GET {path}: unusable _links.next {href!r}: back to a page already read "
                f"(after {pages} pages): the listing would never end"
            )
        if pages >= MAX_PAGES or items >= MAX_ITEMS:
            raise ResponseFormatError(
                f"GET {path}: still going after {pages} pages and {items} items, past "
                f"any real account ({MAX_PAGES} pages or {MAX_ITEMS} items): given up"
            )
        seen.add(href)
        next_path, params = href, None


def _token_from(token: str | None) -> str:
    """The access token given, or ``$LD_ACCESS_TOKEN``; :class:`ConfigError` when neither."""
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    if not token or not token.strip():
        raise ConfigError(
            f"no access token: pass token= or set {TOKEN_ENV} "
            "(a LaunchDarkly API access token, api-...)"
        )
    return token.strip()


def _check_patch(patch: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a patch operation without a string ``op`` and ``path`` before it is sent."""
    for index, operation in enumerate(patch):
        if not isinstance(operation.get("op"), str) or not isinstance(operation.get("path"), str):
            raise ConfigError(f"patch[{index}]: needs string 'op' and 'path'")
