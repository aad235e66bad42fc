"""What ldbulk sends to LaunchDarkly's persistent store ("big segment store") integration API:
store configs, the create request and targets; and the one table of facts about config fields.

Each store config field carries its facts in attrs metadata, one row of the field table
(:mod:`ldbulk.api.fields`, re-exported here): the formVariable it is, how a message names its
type, whether ldbulk keeps it secret, whether LaunchDarkly redacts it on read; a field without a
default is required.

Field names are Python style; :mod:`ldbulk.api.converter` maps them to the API's names. Store
configs validate at construction, so an invalid config can never reach the network. Secret
fields (Redis password, DynamoDB external id) are hidden from ``repr`` and ``str``, and so is any
value a config got from a ``${...}`` reference in a manifest: ``references`` remembers which
fields those are, ``repr`` shows the reference instead of the value, and ``redact`` does the
same to any text (a server's error). LaunchDarkly's answers are in :mod:`ldbulk.api.resources`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final, Literal

import attrs

from ldbulk.api.fields import Rule, form
from ldbulk.api.fields import api_name as api_name
from ldbulk.api.fields import check_field as check_field
from ldbulk.api.fields import form_fields as form_fields
from ldbulk.api.fields import is_required as is_required
from ldbulk.api.fields import is_secret as is_secret
from ldbulk.api.fields import looks_masked as looks_masked
from ldbulk.api.fields import placeholder as placeholder
from ldbulk.api.fields import redacted_on_read as redacted_on_read
from ldbulk.api.fields import value_kind as value_kind
from ldbulk.api.resources import Access as Access
from ldbulk.api.resources import AccessDecision as AccessDecision
from ldbulk.api.resources import AccessReason as AccessReason
from ldbulk.api.resources import Environment as Environment
from ldbulk.api.resources import ErrorBody as ErrorBody
from ldbulk.api.resources import Integration as Integration
from ldbulk.api.resources import IntegrationCollection as IntegrationCollection
from ldbulk.api.resources import Link as Link
from ldbulk.api.resources import Page as Page
from ldbulk.api.resources import PageLinks as PageLinks
from ldbulk.api.resources import Project as Project
from ldbulk.api.resources import StoreIntegrationError as StoreIntegrationError
from ldbulk.api.resources import StoreStatus as StoreStatus
from ldbulk.errors import ConfigError
from ldbulk.text import occurrences

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
MAX_KEY_LENGTH: Final = 256
KEY_PATTERN: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_KEY_LENGTH - 1}}}")
# The pattern as messages say it.
KEY_CHARACTERS: Final = "letters, digits, '.', '_' and '-'"
KEY_RULE: Final = (
    f"{KEY_CHARACTERS}, starting with a letter or digit, at most {MAX_KEY_LENGTH} characters"
)

# The TCP port numbers a Redis store may listen on.
PORT_RANGE: Final = (1, 65535)

# The tag every integration ldbulk creates or updates carries, so that a prune can tell the
# integrations it manages from those made by hand or by another tool (a manifest may name
# another tag with ``defaults.ownershipTag``).
DEFAULT_OWNERSHIP_TAG: Final = "managed-by-ldbulk"


# -- the field table (ldbulk.api.fields) and the rules of its fields --------------------------


@Rule
def _nonempty(value: object) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


@Rule
def _string(value: object) -> str | None:
    return None if isinstance(value, str) else "must be a string"


@Rule
def _port(value: object) -> str | None:
    low, high = PORT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"must be an integer from {low} to {high}, got {value!r}"
    return None


def _to_port(value: object) -> object:
    """Accept ``"6379"`` as well as ``6379``: the API itself stores the port as a string."""
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    return value


@Rule
def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


@Rule
def _region(value: object) -> str | None:
    if value in DYNAMODB_REGIONS:
        return None
    return (
        f"{value!r} is not a region the dynamodb integration allows "
        f"(one of {', '.join(sorted(DYNAMODB_REGIONS))})"
    )


def _matching(pattern: re.Pattern[str], reason: str) -> Rule:
    """A rule for a string ``pattern`` matches in full; ``reason`` follows the value's repr."""
    return Rule(
        lambda value: (
            None if isinstance(value, str) and pattern.fullmatch(value) else f"{value!r} {reason}"
        )
    )


_role_arn = _matching(
    _ROLE_ARN, "is not an IAM role ARN (expected arn:aws:iam::<12-digit account id>:role/<name>)"
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


def _to_names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _unset(instance: object, attribute: attrs.Attribute[frozenset[str]], value: object) -> None:
    references = getattr(instance, "references", {})
    if not isinstance(value, frozenset) or not value <= set(references):
        raise ConfigError("unset: must name fields that came from a reference")


def _sent(value: object) -> object:
    """A value as a ``config`` object carries it: the formVariables are strings and booleans,
    so a number (the port) goes as a string, as LaunchDarkly stores it."""
    return value if isinstance(value, bool | str) else str(value)


# -- store configs ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _FormConfig:
    """What both store configs share: the references a config was built from, a repr that shows
    them and hides secrets, redaction of any text, and the ``config`` object of a create."""

    # The integration whose formVariables the class holds (a class attribute, not a field).
    integration_key: ClassVar[IntegrationKey]
    # Which fields came from a ``${...}`` reference: python field name -> the reference as
    # written. Not part of equality: the same values are the same store, wherever they came from.
    references: Mapping[str, str] = attrs.field(
        factory=dict, converter=_to_references, validator=_references, eq=False, repr=False
    )
    # The fields among those whose reference's variable was not set when the manifest was
    # loaded (for a command that only reads): they hold a placeholder, which is never sent,
    # compared or shown. ``to_api`` refuses such a config.
    unset: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_names, validator=_unset, eq=False, repr=False
    )

    def __repr__(self) -> str:
        """Each field as its reference when it came from one, ``***`` when secret, else its
        value."""
        shown = []
        for field in form_fields(type(self)):
            value = getattr(self, field.name)
            reference = self.references.get(field.name)
            if reference is not None:
                text = repr(reference)
            elif is_secret(field):
                text = REDACTED if value else "''"
            else:
                text = repr(value)
            shown.append(f"{field.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def redact(self, text: str) -> str:
        """``text`` with every value that came from a reference replaced by its reference, and
        each secret (the Redis password, the DynamoDB external id) by ``***``: for text from
        elsewhere, such as a server's error message.

        Whole occurrences only: a value's text inside a longer word is left as it is (the
        manifest refuses secrets too short to be told from a word's letters).
        """
        replacements: dict[str, str] = {}
        for field in form_fields(type(self)):
            value = getattr(self, field.name)
            # A boolean carries one bit, and hiding every "true" would garble the text. A
            # placeholder is no value anyone could quote.
            if isinstance(value, bool) or field.name in self.unset:
                continue
            # What the API is sent (a port goes as "6379"), so what it may quote.
            sent = str(_sent(value))
            reference = self.references.get(field.name)
            if not sent or (reference is None and not is_secret(field)):
                continue
            replacements.setdefault(sent, reference if reference is not None else "***")
        # One pass, longest first, whole occurrences only (see ldbulk.text.occurrences): a
        # value inside another is not half-replaced, nor a word that holds a short value.
        pattern = occurrences(replacements)
        if pattern is None:
            return text
        return pattern.sub(lambda match: replacements[match.group()], text)

    def to_api(self) -> dict[str, Any]:
        """The ``config`` object of a create request, keyed by formVariable (the port as a
        string, as the API stores it); :class:`ConfigError` when a reference was not set, so a
        placeholder can never be sent."""
        if self.unset:
            names = ", ".join(sorted(self.references[name] for name in self.unset))
            raise ConfigError(f"not set: {names} (a config is sent only with every value)")
        return self.known_values()

    def known_values(self) -> dict[str, Any]:
        """The fields' values as :meth:`to_api` gives them, without the ``unset`` ones."""
        return {
            api_name(field): _sent(getattr(self, field.name))
            for field in form_fields(type(self))
            if field.name not in self.unset
        }


# repr=False on the configs: the base's repr, which shows references and hides secrets.
@attrs.frozen(kw_only=True, repr=False)
class RedisConfig(_FormConfig):
    """A Redis persistent store: the ``redis`` integration's formVariables.

    ``references`` names the fields whose values came from a ``${...}`` reference, with the
    reference (``{"host": "${REDIS_HOST}"}``); ``repr`` shows those references, never the values.
    """

    integration_key: ClassVar[IntegrationKey] = "redis"

    host: str = attrs.field(validator=_nonempty, metadata=form("host"))
    port: int = attrs.field(
        default=6379, converter=_to_port, validator=_port, metadata=form("port", "a port number")
    )
    username: str = attrs.field(default="", validator=_string, metadata=form("username"))
    # The one formVariable LaunchDarkly marks isSecret.
    password: str = attrs.field(
        default="", validator=_string, metadata=form("password", secret=True, redacted=True)
    )
    tls_enabled: bool = attrs.field(
        default=False, validator=_boolean, metadata=form("tlsEnabled", "true or false")
    )


@attrs.frozen(kw_only=True, repr=False)
class DynamoDBConfig(_FormConfig):
    """A DynamoDB persistent store: the ``dynamodb`` integration's formVariables.

    The table must already exist with partition key ``namespace`` and sort key ``key``
    (both strings); LaunchDarkly assumes ``role_arn`` with ``external_id`` to write to it.
    ``references`` works as in :class:`RedisConfig`.
    """

    integration_key: ClassVar[IntegrationKey] = "dynamodb"

    table_name: str = attrs.field(validator=_nonempty, metadata=form("tableName"))
    region: str = attrs.field(
        validator=_region, metadata=form("region", placeholder="us-east-1")
    )
    role_arn: str = attrs.field(
        validator=_role_arn,
        metadata=form("roleArn", placeholder="arn:aws:iam::000000000000:role/unset"),
    )
    # A "generated" formVariable, not isSecret: LaunchDarkly reads it back in clear (and AWS
    # says an external id is no secret), but keeping it out of logs costs nothing.
    external_id: str = attrs.field(validator=_nonempty, metadata=form("externalId", secret=True))


# Real types on the fields, not annotation strings: a loader reads a field's type (a boolean
# field takes a YAML boolean).
attrs.resolve_types(RedisConfig)
attrs.resolve_types(DynamoDBConfig)

StoreConfig = RedisConfig | DynamoDBConfig

# The config class of each integration key.
CONFIG_CLASSES: Final[Mapping[str, type[StoreConfig]]] = {
    cls.integration_key: cls for cls in (RedisConfig, DynamoDBConfig)
}


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

    def to_bytes(self) -> bytes:
        """The JSON body, encoded."""
        return json.dumps(self.to_api()).encode()


_key = _matching(KEY_PATTERN, f"is not a LaunchDarkly key ({KEY_RULE})")


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
    ownership_tag: str = attrs.field(default=DEFAULT_OWNERSHIP_TAG, validator=_key)

    @property
    def integration_key(self) -> IntegrationKey:
        """The integration key of the store (``redis`` or ``dynamodb``)."""
        return self.config.integration_key

    @property
    def written_tags(self) -> tuple[str, ...]:
        """The tags a create or an update writes: the manifest's, then the ownership tag."""
        return tuple(dict.fromkeys((*self.tags, self.ownership_tag)))

    @property
    def key(self) -> tuple[str, str, str]:
        """(project, environment, integration key): LaunchDarkly allows one integration each."""
        return (self.project, self.environment, self.integration_key)
