"""ldbulk: provision LaunchDarkly persistent stores across many environments at once."""

import logging

from ldbulk._version import __version__
from ldbulk.api.limits import RateLimitState, parse_rate_limit
from ldbulk.api.models import (
    Access,
    AccessDecision,
    AccessReason,
    CreateIntegrationRequest,
    DynamoDBConfig,
    Environment,
    ErrorBody,
    Integration,
    IntegrationCollection,
    Link,
    Project,
    RedisConfig,
    StoreConfig,
    StoreIntegrationError,
    StoreStatus,
    Target,
)
from ldbulk.engine.apply import ApplyOptions, ApplyStarted, apply
from ldbulk.engine.carry import carry_out
from ldbulk.engine.decide import Action, Decision, after_read, before_read
from ldbulk.engine.export import ExportResult, ExportWatch, SkippedIntegration, export
from ldbulk.engine.journal import Journal, read_settled
from ldbulk.engine.known import KnownIntegrations
from ldbulk.engine.plan import PlanItem, plan
from ldbulk.engine.provision import Provisioner, provision
from ldbulk.engine.prune import PruneScope, Pruning
from ldbulk.engine.report import Outcome, Report, TargetResult
from ldbulk.engine.resolve import Resolution, resolve, resolve_targets
from ldbulk.engine.saved import SavedAction, SavedPlan, read_plan, saved_plan, write_plan
from ldbulk.engine.update import Update, update_for
from ldbulk.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    HTTPStatusError,
    LdbulkError,
    NotFound,
    PruneRefused,
    RateLimited,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    Stopped,
    TransportError,
    Unauthorized,
)
from ldbulk.http.client import Client, ClientStats, Timeouts
from ldbulk.http.pacer import Pacer
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.scope import RequestScope, RunStats
from ldbulk.http.transport import AiohttpTransport, MemoryTransport, Transport
from ldbulk.manifest import ManifestError, ManifestSet, Problem, load_manifests, loads_manifest

# A library logs, and the application decides where it goes: without a handler of its own,
# Python's last resort would print ldbulk's warnings to stderr.
logging.getLogger("ldbulk").addHandler(logging.NullHandler())

__all__ = [
    "Access",
    "AccessDecision",
    "AccessReason",
    "Action",
    "AiohttpTransport",
    "ApplyOptions",
    "ApplyStarted",
    "BadRequest",
    "Client",
    "ClientStats",
    "ConfigError",
    "Conflict",
    "CreateIntegrationRequest",
    "Decision",
    "DynamoDBConfig",
    "Environment",
    "ErrorBody",
    "ExportResult",
    "ExportWatch",
    "Forbidden",
    "HTTPStatusError",
    "Integration",
    "IntegrationCollection",
    "Journal",
    "KnownIntegrations",
    "LdbulkError",
    "Link",
    "ManifestError",
    "ManifestSet",
    "MemoryTransport",
    "NotFound",
    "Outcome",
    "Pacer",
    "PlanItem",
    "Problem",
    "Project",
    "Provisioner",
    "PruneRefused",
    "PruneScope",
    "Pruning",
    "RateLimitState",
    "RateLimited",
    "RedisConfig",
    "Report",
    "RequestScope",
    "RequestTimeout",
    "Resolution",
    "ResponseFormatError",
    "RetryPolicy",
    "RunStats",
    "SavedAction",
    "SavedPlan",
    "ServerError",
    "SkippedIntegration",
    "Stopped",
    "StoreConfig",
    "StoreIntegrationError",
    "StoreStatus",
    "Target",
    "TargetResult",
    "Timeouts",
    "Transport",
    "TransportError",
    "Unauthorized",
    "Update",
    "__version__",
    "after_read",
    "apply",
    "before_read",
    "carry_out",
    "export",
    "load_manifests",
    "loads_manifest",
    "parse_rate_limit",
    "plan",
    "provision",
    "read_plan",
    "read_settled",
    "resolve",
    "resolve_targets",
    "saved_plan",
    "update_for",
    "write_plan",
]
