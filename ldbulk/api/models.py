"""Value classes for LaunchDarkly's persistent store ("big segment store") integration API.

Field names are Python style; :mod:`ldbulk.api.converter` maps them to the API's names
(``_id``, ``integrationKey``, ``_status`` ...). Store configs validate at construction, so an
invalid config can never reach the network. Secret fields (Redis password, DynamoDB external id)
are hidden from ``repr`` and ``str``, and so is any value a config got from a ``${...}``
reference in a manifest: ``references`` remembers which fields those are, ``repr`` shows the
reference instead of the value, and ``redact`` does the same to any text (a server's error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

import attrs

from ldbulk.errors import ConfigError

IntegrationKey = Literal["redis", "dynamodb"]
INTEGRATION_KEYS: Final = ("redis", "dynamodb")

# The `allowedValues` of the `region` formVariable in the dynamodb integration manifest.
DYNAMODB_REGIONS: Final = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "sa-east-1",
    }
)

# arn:<partition>:iam::<12-digit account>:role/<optional path/>name, the character set IAM allows.
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")

REDACTED: Final = "'***'"

# LaunchDarkly's project and environment keys: letters, digits, '.', '_' and '-', starting with
# a letter or digit. A key outside it cannot name a real environment, and some ("..", "") would
# even address another route once URL normalisation has run.
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")


def _redact(value: object) -> str:
    """Repr of a secret field: whether it is set, never what it is."""
    return REDACTED if value else "''"


# A store config field's entry in the field table: LaunchDarkly's formVariables mark only the
# redis password secret, but the dynamodb external id is kept out of logs too (it costs nothing).
_SECRET: Final = {"secret": True}


def _nonempty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{attribute.name}: must be a non-empty string")


def _string(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{attribute.name}: must be a string")


def _port(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"port: must be an integer from 1 to 65535, got {value!r}")


def _to_port(value: object) -> object:
    """Accept ``"6379"`` as well as ``6379``: the API itself stores the port as a string."""
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    return value


def _boolean(instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name}: must be true or false, got {value!r}")


def _region(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in DYNAMODB_REGIONS:
        raise ConfigError(
            f"region: {value!r} is not a region the dynamodb integration allows "
            f"(one of {', '.join(sorted(DYNAMODB_REGIONS))})"
        )


def _role_arn(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _ROLE_ARN.fullmatch(value):
        raise ConfigError(
            f"role_arn: {value!r} is not an IAM role ARN "
            "(expected arn:aws:iam::<12-digit account id>:role/<name>)"
        )


def _to_references(value: object) -> object:
    """A copy, so a caller changing its own mapping later cannot change a frozen config."""
    return dict(value) if isinstance(value, Mapping) else value


def _references(
    instance: object, attribute: attrs.Attribute[Mapping[str, str]], value: Mapping[str, str]
) -> None:
    names = {field.name for field in form_fields(type(instance))}
    if not isinstance(value, Mapping):
        raise ConfigError("references: must map field names to reference texts")
    for name, reference in value.items():
        # Names only: the reference texts are harmless, but a wrong key would mean a value that
        # repr and redact fail to hide.
        if name not in names:
            raise ConfigError(f"references: {name!r} is not a field of {type(instance).__name__}")
        if not isinstance(reference, str) or not reference:
            raise ConfigError(f"references: the reference of {name} must be a non-empty string")


def form_fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    """The fields of a store config class that are the integration's formVariables (all but
    ``references``, which is ldbulk's own bookkeeping)."""
    return tuple(field for field in attrs.fields(cls) if field.name != "references")


def _config_repr(config: RedisConfig | DynamoDBConfig) -> str:
    """Each field as its reference when it came from one, ``***`` when secret, else its value."""
    shown = []
    for field in form_fields(type(config)):
        value = getattr(config, field.name)
        reference = config.references.get(field.name)
        if reference is not None:
            text = repr(reference)
        elif field.metadata.get("secret"):
            text = _redact(value)
        else:
            text = repr(value)
        shown.append(f"{field.name}={text}")
    return f"{type(config).__name__}({', '.join(shown)})"


def _redact_text(config: RedisConfig | DynamoDBConfig, text: str) -> str:
    replacements: dict[str, str] = {}
    for field in form_fields(type(config)):
        value = getattr(config, field.name)
        # A boolean carries one bit, and hiding every "true" would garble the text.
        if isinstance(value, bool):
            continue
        # str(), not repr(): what the API is sent (a port goes as "6379"), so what it may quote.
        sent = str(value)
        reference = config.references.get(field.name)
        if not sent or (reference is None and not field.metadata.get("secret")):
            continue
        replacements.setdefault(sent, reference if reference is not None else "***")
    if not replacements:
        return text
    # One pass, longest first: a value inside another is not half-replaced, and a replacement
    # is never searched again.
    pattern = re.compile("|".join(map(re.escape, sorted(replacements, key=len, reverse=True))))
    return pattern.sub(lambda match: replacements[match.group()], text)


@attrs.frozen(kw_only=True)
class RedisConfig:
    """A Redis persistent store: the ``redis`` integration's formVariables.

    ``references`` names the fields whose values came from a ``${...}`` reference, with the
    reference (``{"host": "${REDIS_HOST}"}``); ``repr`` shows those references, never the values.
    """

    host: str = attrs.field(validator=_nonempty)
    port: int = attrs.field(default=6379, converter=_to_port, validator=_port)
    username: str = attrs.field(default="", validator=_string)
    password: str = attrs.field(default="", validator=_string, metadata=_SECRET)
    tls_enabled: bool = attrs.field(default=False, validator=_boolean)
    # Which fields came from a ``${...}`` reference: python field name -> the reference as
    # written. Not part of equality: the same values are the same store, wherever they came from.
    references: Mapping[str, str] = attrs.field(
        factory=dict, converter=_to_references, validator=_references, eq=False, repr=False
    )

    def __repr__(self) -> str:
        return _config_repr(self)

    @property
    def integration_key(self) -> IntegrationKey:
        """The integration key LaunchDarkly files this store under."""
        return "redis"

    def redact(self, text: str) -> str:
        """``text`` with every value that came from a reference replaced by its reference, and
        the password by ``***``: for text from elsewhere, such as a server's error message.

        It errs on the side of hiding: a short value is replaced wherever it appears.
        """
        return _redact_text(self, text)

    def to_api(self) -> dict[str, Any]:
        """The ``config`` object of a create request (port as a string, as the API stores it)."""
        return {
            "host": self.host,
            "port": str(self.port),
            "username": self.username,
            "password": self.password,
            "tlsEnabled": self.tls_enabled,
        }


@attrs.frozen(kw_only=True)
class DynamoDBConfig:
    """A DynamoDB persistent store: the ``dynamodb`` integration's formVariables.

    The table must already exist with partition key ``namespace`` and sort key ``key``
    (both strings); LaunchDarkly assumes ``role_arn`` with ``external_id`` to write to it.
    ``references`` works as in :class:`RedisConfig`.
    """

    table_name: str = attrs.field(validator=_nonempty)
    region: str = attrs.field(validator=_region)
    role_arn: str = attrs.field(validator=_role_arn)
    external_id: str = attrs.field(validator=_nonempty, metadata=_SECRET)
    # Which fields came from a ``${...}`` reference: python field name -> the reference as
    # written. Not part of equality: the same values are the same store, wherever they came from.
    references: Mapping[str, str] = attrs.field(
        factory=dict, converter=_to_references, validator=_references, eq=False, repr=False
    )

    def __repr__(self) -> str:
        return _config_repr(self)

    @property
    def integration_key(self) -> IntegrationKey:
        """The integration key LaunchDarkly files this store under."""
        return "dynamodb"

    def redact(self, text: str) -> str:
        """``text`` with every value that came from a reference replaced by its reference, and
        the external id by ``***`` (see :meth:`RedisConfig.redact`)."""
        return _redact_text(self, text)

    def to_api(self) -> dict[str, Any]:
        """The ``config`` object of a create request."""
        return {
            "tableName": self.table_name,
            "region": self.region,
            "roleArn": self.role_arn,
            "externalId": self.external_id,
        }


StoreConfig = RedisConfig | DynamoDBConfig


def _redact_mapping(value: Mapping[str, Any] | None) -> str:
    """Repr of a config read back from the API: its keys only, values may be secrets."""
    if value is None:
        return "None"
    return "{" + ", ".join(f"{key!r}: ..." for key in value) + "}"


@attrs.frozen(kw_only=True)
class CreateIntegrationRequest:
    """The body of a create (the spec's ``IntegrationDeliveryConfigurationPost``)."""

    config: StoreConfig
    on: bool = False
    tags: tuple[str, ...] = ()
    name: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The JSON body, with optional fields left out when unset."""
        body: dict[str, Any] = {"config": self.config.to_api(), "on": self.on}
        if self.tags:
            body["tags"] = list(self.tags)
        if self.name is not None:
            body["name"] = self.name
        return body


@attrs.frozen(kw_only=True)
class Link:
    """A link to a related resource."""

    href: str | None = None
    type: str | None = None


@attrs.frozen(kw_only=True)
class StoreIntegrationError:
    """One synchronisation error LaunchDarkly saw while writing to the store."""

    status_code: int | None = None
    message: str | None = None
    timestamp: int | None = None


@attrs.frozen(kw_only=True)
class StoreStatus:
    """Connection status of a persistent store (the spec's ``BigSegmentStoreStatus``)."""

    available: bool | None = None
    potentially_stale: bool | None = None
    last_sync: int | None = None
    last_error: int | None = None
    errors: tuple[StoreIntegrationError, ...] = ()


@attrs.frozen(kw_only=True)
class AccessReason:
    """The policy statement that allowed or denied an action."""

    effect: str
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    # The spec spells this one key in snake case, unlike every other field.
    role_name: str | None = attrs.field(default=None, metadata={"api": "role_name"})


@attrs.frozen(kw_only=True)
class AccessDecision:
    """One action the caller may (or may not) take on the resource, and why."""

    action: str
    reason: AccessReason


@attrs.frozen(kw_only=True)
class Access:
    """Which actions the caller's token is allowed and denied on the resource."""

    denied: tuple[AccessDecision, ...] = ()
    allowed: tuple[AccessDecision, ...] = ()


@attrs.frozen(kw_only=True)
class Integration:
    """A persistent store integration (the spec's ``BigSegmentStoreIntegration``).

    ``config`` is present only when the integration was read by id; LaunchDarkly redacts its
    secrets, and ``repr`` shows only its keys.
    """

    id: str = attrs.field(metadata={"api": "_id"})
    integration_key: str
    project_key: str
    environment_key: str
    on: bool = False
    tags: tuple[str, ...] = ()
    name: str = ""
    version: int = 0
    config: Mapping[str, Any] | None = attrs.field(default=None, repr=_redact_mapping)
    status: StoreStatus | None = attrs.field(default=None, metadata={"api": "_status"})
    access: Access | None = attrs.field(default=None, metadata={"api": "_access"})
    links: Mapping[str, Link] = attrs.field(factory=dict, repr=False, metadata={"api": "_links"})


@attrs.frozen(kw_only=True)
class IntegrationCollection:
    """The list-all answer (the spec's ``BigSegmentStoreIntegrationCollection``)."""

    items: tuple[Integration, ...] = ()
    links: Mapping[str, Link] = attrs.field(factory=dict, repr=False, metadata={"api": "_links"})


@attrs.frozen(kw_only=True)
class ErrorBody:
    """LaunchDarkly's error body ``{"code", "message", "id"}``."""

    code: str = ""
    message: str = ""
    id: str | None = None


@attrs.frozen(kw_only=True)
class Project:
    """A LaunchDarkly project, with only the fields ldbulk uses."""

    id: str = attrs.field(metadata={"api": "_id"})
    key: str
    name: str = ""
    tags: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Environment:
    """A LaunchDarkly environment, with only the fields ldbulk uses.

    The API's item also carries the environment's SDK and mobile keys; they are deliberately not
    modelled, so they cannot end up in a log or a report.
    """

    id: str = attrs.field(metadata={"api": "_id"})
    key: str
    name: str = ""
    tags: tuple[str, ...] = ()


T = TypeVar("T")

# A page's `_links`: pagination follows its `next`, so the converter keeps a malformed `next` an
# error, where it drops any other member of `_links` that is not a link.
PageLinks = Annotated[Mapping[str, Link], "followed by pagination"]


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a paginated collection (projects, environments)."""

    items: tuple[T, ...] = ()
    total_count: int | None = None
    links: PageLinks = attrs.field(factory=dict, repr=False, metadata={"api": "_links"})

    @property
    def next_href(self) -> str | None:
        """Where the next page is, or None on the last page."""
        link = self.links.get("next")
        return link.href if link else None


def _key(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not KEY_PATTERN.fullmatch(value):
        raise ConfigError(
            f"{attribute.name}: {value!r} is not a LaunchDarkly key (letters, digits, '.', '_' "
            "and '-', starting with a letter or digit, at most 256 characters)"
        )


@attrs.frozen(kw_only=True)
class Target:
    """One store to provision in one environment: what a manifest line becomes.

    The keys are checked at construction, so a target built by a library caller fails where
    it is built, not inside a worker of the run.
    """

    project: str = attrs.field(validator=_key)
    environment: str = attrs.field(validator=_key)
    config: StoreConfig
    on: bool = False
    tags: tuple[str, ...] = ()
    name: str | None = None

    @property
    def integration_key(self) -> IntegrationKey:
        """The integration key of the store (``redis`` or ``dynamodb``)."""
        return self.config.integration_key

    @property
    def key(self) -> tuple[str, str, str]:
        """(project, environment, integration key): LaunchDarkly allows one integration each."""
        return (self.project, self.environment, self.integration_key)
