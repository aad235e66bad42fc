"""ldbulk: provision LaunchDarkly persistent stores across many environments at once.

Everything a service or script uses is named here (``__all__``) and documented in the API
reference. Modules below (``ldbulk.http``, ``ldbulk.engine``, ...) are the package's own and
may change between releases; :mod:`ldbulk.testing` holds what an application's tests need.
"""

import logging

from ldbulk._version import __version__
from ldbulk.api.models import (
    Access,
    AccessDecision,
    AccessReason,
    CreateIntegrationRequest,
    DynamoDBConfig,
    Environment,
    Integration,
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
from ldbulk.http.retry import RetryPolicy
from ldbulk.http.scope import RunStats
from ldbulk.http.transport import AiohttpTransport, Transport
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
    "ExportResult",
    "ExportWatch",
    "Forbidden",
    "HTTPStatusError",
    "Integration",
    "KnownIntegrations",
    "LdbulkError",
    "Link",
    "ManifestError",
    "ManifestSet",
    "NotFound",
    "Outcome",
    "PlanItem",
    "Problem",
    "Project",
    "Provisioner",
    "PruneRefused",
    "PruneScope",
    "Pruning",
    "RateLimited",
    "RedisConfig",
    "Report",
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
    "plan",
    "provision",
    "read_plan",
    "resolve",
    "resolve_targets",
    "saved_plan",
    "update_for",
    "write_plan",
]
