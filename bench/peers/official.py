"""The official ``launchdarkly-api`` Python client, called once per target, in sequence.

The generated client sends ``LD-API-Version: 20240415`` by default; the persistent store
routes are beta, so the default header is replaced by ``beta``.

Its only retry policy is urllib3's, set through ``Configuration(retries=...)``: as shipped it
never retries a POST on a status (urllib3's default ``Retry`` allows idempotent verbs only) and
raises ``ApiException`` on the first 429. It does not read ``X-Ratelimit-Reset``. The peer
configures that one knob as a user who wants 429s retried would: a ``urllib3.Retry`` that
retries a 429 on any verb, waits ``Retry-After`` when the answer carries one (LaunchDarkly sends
it on IP limits only) and otherwise backs off exponentially (0, 1, 2, 4... s, capped). A create
that still gets a 429 after the last retry fails. No sleep until the window's reset: the client
has none, and the bench measures the client, not a loop a user might write around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import launchdarkly_api
import urllib3
from launchdarkly_api.api.persistent_store_integrations_beta_api import (
    PersistentStoreIntegrationsBetaApi,
)
from launchdarkly_api.exceptions import ApiException
from launchdarkly_api.models.integration_delivery_configuration_post import (
    IntegrationDeliveryConfigurationPost,
)

from bench.peers.common import CREATE_BODY, Pair, PeerResult

RETRIES: Final = 10
BACKOFF_FACTOR_S: Final = 0.5


def retry_policy() -> urllib3.Retry:
    """The urllib3 policy handed to the client: 429s retried, ``Retry-After`` honoured."""
    return urllib3.Retry(
        total=RETRIES,
        status_forcelist=(429,),
        allowed_methods=None,  # any verb, the create's POST included
        backoff_factor=BACKOFF_FACTOR_S,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429 comes back as an ApiException, as without retries
    )


def run(base_url: str, token: str, pairs: Sequence[Pair]) -> PeerResult:
    """Create every pair's integration through the official client, one call at a time.

    ``requests`` counts calls; the retries urllib3 makes inside a call are not visible to the
    caller (the sandbox's own counts are the benchmark's figures).
    """
    result = PeerResult()
    configuration = launchdarkly_api.Configuration(host=base_url, retries=retry_policy())
    configuration.api_key["ApiKey"] = token
    with launchdarkly_api.ApiClient(configuration) as api_client:
        api_client.set_default_header("LD-API-Version", "beta")
        api = PersistentStoreIntegrationsBetaApi(api_client)
        body = IntegrationDeliveryConfigurationPost.from_dict(dict(CREATE_BODY))
        assert body is not None
        for project, environment in pairs:
            result.requests += 1
            try:
                api.create_big_segment_store_integration(project, environment, "redis", body)
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                if getattr(exc, "status", None) == 429:
                    result.throttled += 1
                result.failed += 1
                continue
            result.created += 1
    return result
