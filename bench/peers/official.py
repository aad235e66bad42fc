"""The official ``launchdarkly-api`` Python client, called once per target, in sequence.

The generated client sends ``LD-API-Version: 20240415`` by default; the persistent store
routes are beta, so the default header is replaced by ``beta``. It raises ``ApiException`` on a
429 and has no policy for it (its urllib3 retries cover connection errors only), so the loop
does the least a user must add: sleep until ``X-Ratelimit-Reset`` and call again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

import launchdarkly_api
from launchdarkly_api.api.persistent_store_integrations_beta_api import (
    PersistentStoreIntegrationsBetaApi,
)
from launchdarkly_api.exceptions import ApiException
from launchdarkly_api.models.integration_delivery_configuration_post import (
    IntegrationDeliveryConfigurationPost,
)

from bench.peers.common import CREATE_BODY, Pair, PeerResult, reset_wait

MAX_ATTEMPTS: Final = 20
FALLBACK_WAIT_S: Final = 10.0


def run(base_url: str, token: str, pairs: Sequence[Pair]) -> PeerResult:
    """Create every pair's integration through the official client, one call at a time."""
    result = PeerResult()
    configuration = launchdarkly_api.Configuration(host=base_url)
    configuration.api_key["ApiKey"] = token
    with launchdarkly_api.ApiClient(configuration) as api_client:
        api_client.set_default_header("LD-API-Version", "beta")
        api = PersistentStoreIntegrationsBetaApi(api_client)
        body = IntegrationDeliveryConfigurationPost.from_dict(dict(CREATE_BODY))
        assert body is not None
        for project, environment in pairs:
            for _ in range(MAX_ATTEMPTS):
                result.requests += 1
                try:
                    api.create_big_segment_store_integration(project, environment, "redis", body)
                except ApiException as exc:
                    if exc.status == 429:
                        result.throttled += 1
                        wait = reset_wait(exc.headers or {}, time.time())
                        time.sleep(FALLBACK_WAIT_S if wait is None else wait)
                        continue
                    result.failed += 1
                    break
                result.created += 1
                break
            else:
                result.failed += 1
    return result
