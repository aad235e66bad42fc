"""``ldbulk.__all__`` stays honest: sorted, resolvable and complete (as httpx tests it)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

import ldbulk
import ldbulk.testing
from ldbulk import errors
from ldbulk.api import fields, models, resources
from ldbulk.http import client, retry, transport

# The modules whose classes and functions make up the client's public API.
PUBLIC_MODULES = [client, errors, fields, models, resources, retry, transport]

# The package's own machinery: a service never names it, so it is not exported (tests reach it
# by its module's path), and the reference does not document it.
NOT_EXPORTED = [
    "Pacer",
    "Journal",
    "read_settled",
    "parse_rate_limit",
    "RateLimitState",
    "RequestScope",
    "MemoryTransport",
    "ErrorBody",
    "IntegrationCollection",
]

# Defined in a public module, deliberately not exported, and why.
INTERNAL = {
    "ldbulk.api.resources.Page": "one page of a paginated response; the client reads pages itself",
    "ldbulk.api.fields.form_fields": "which store config fields are formVariables, for loaders",
    "ldbulk.api.fields.placeholder": "what a config holds for a reference not set, for loaders",
    "ldbulk.api.fields.api_name": "a field's JSON key, read from the field table by loaders",
    "ldbulk.api.fields.value_kind": "how a message names a config field's type, for loaders",
    "ldbulk.api.fields.is_secret": "whether ldbulk hides a config field, for loaders",
    "ldbulk.api.fields.redacted_on_read": "whether LaunchDarkly masks a field, for the sandbox",
    "ldbulk.api.fields.looks_masked": "whether a value read back is a mask, for drift and export",
    "ldbulk.api.fields.is_required": "whether a config field must be given, for loaders",
    "ldbulk.api.fields.check_field": "one config field's check, so loaders report every bad field",
    "ldbulk.api.fields.form": "one row of the field table, written by the config classes",
    "ldbulk.api.fields.Rule": "a config field's validator, written by the config classes",
    "ldbulk.api.resources.IntegrationCollection": "a page of the list, read by the client",
    "ldbulk.api.resources.ErrorBody": "an error answer's body, read into the errors' fields",
    "ldbulk.http.retry.compute_backoff": "the backoff maths behind RetryPolicy",
    "ldbulk.http.retry.RetryBudget": "the run-wide retry allowance, built from RetryPolicy",
    "ldbulk.http.retry.RetryContext": "one operation's retry loop, from Client.retry_context",
    "ldbulk.http.retry.Attempt": "one try of a RetryContext",
    "ldbulk.http.transport.MemoryTransport": "for an application's tests: ldbulk.testing",
    "ldbulk.http.transport.SentRequest": "for an application's tests: ldbulk.testing",
    "ldbulk.http.transport.canned": "for an application's tests: ldbulk.testing",
    "ldbulk.errors.status_error_class": "maps a status to its exception for the sans-I/O layer",
}


def test_all_is_sorted() -> None:
    assert ldbulk.__all__ == sorted(ldbulk.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(ldbulk.__all__) == len(set(ldbulk.__all__))


@pytest.mark.parametrize("name", ldbulk.__all__)
def test_every_exported_name_exists(name: str) -> None:
    assert hasattr(ldbulk, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from ldbulk import *", namespace)  # noqa: S102 - the statement users write
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(ldbulk.__all__)


def public_members(module: ModuleType) -> list[str]:
    """Classes and functions defined in ``module`` (not imported into it), without a leading _."""
    return [
        name
        for name, member in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(member) or inspect.isfunction(member))
        and member.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda module: module.__name__)
def test_every_public_member_is_exported_or_declared_internal(module: ModuleType) -> None:
    missing = [
        name
        for name in public_members(module)
        if name not in ldbulk.__all__ and f"{module.__name__}.{name}" not in INTERNAL
    ]
    assert missing == []


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda module: module.__name__)
def test_exported_members_are_the_objects_their_modules_define(module: ModuleType) -> None:
    for name in public_members(module):
        if name in ldbulk.__all__:
            assert getattr(ldbulk, name) is getattr(module, name)


def test_internal_list_names_real_members() -> None:
    for dotted in INTERNAL:
        module_name, name = dotted.rsplit(".", 1)
        module = next(m for m in PUBLIC_MODULES if m.__name__ == module_name)
        assert name in public_members(module), dotted
        assert name not in ldbulk.__all__, dotted


def test_every_exception_is_exported() -> None:
    for name, member in vars(errors).items():
        if inspect.isclass(member) and issubclass(member, Exception):
            assert name in ldbulk.__all__, name


@pytest.mark.parametrize("name", NOT_EXPORTED)
def test_machinery_is_not_exported(name: str) -> None:
    assert name not in ldbulk.__all__
    assert not hasattr(ldbulk, name)


def test_testing_module_offers_the_memory_transport() -> None:
    assert ldbulk.testing.__all__ == sorted(ldbulk.testing.__all__)
    assert ldbulk.testing.MemoryTransport is transport.MemoryTransport
    for name in ldbulk.testing.__all__:
        assert hasattr(ldbulk.testing, name)


def test_every_exported_name_is_in_the_api_reference() -> None:
    # "Public" means documented: the reference `make docs` builds renders each name it lists.
    reference = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    rendered = set(re.findall(r"^::: ldbulk\.(\w+)$", reference, flags=re.MULTILINE))
    undocumented = [name for name in ldbulk.__all__ if name not in rendered | {"__version__"}]
    assert undocumented == []


# The one exported API that takes the package's own RequestScope: the client's operations, each
# counted for, and stopped with, the run that passes its scope to them.
SCOPED = {"Client"}


def signatures(name: str) -> list[tuple[str, inspect.Signature]]:
    """The signatures of an exported function, or of an exported class and its public
    methods."""
    member = getattr(ldbulk, name)
    if inspect.isfunction(member):
        return [(name, inspect.signature(member))]
    if not inspect.isclass(member):
        return []
    methods = [(f"{name}.{attr}", value) for attr, value in vars(member).items()
               if inspect.isfunction(value) and not attr.startswith("_")]
    return [(label, inspect.signature(method)) for label, method in methods]


def test_a_run_is_stopped_by_an_event_not_by_the_packages_request_scope() -> None:
    # One documented stop event (and cancellation): no exported call asks for a RequestScope.
    scoped = [
        f"{label}({parameter.name})"
        for name in ldbulk.__all__ if name not in SCOPED
        for label, signature in signatures(name)
        for parameter in signature.parameters.values()
        if "RequestScope" in str(parameter.annotation)
    ]
    assert scoped == []


def test_version_is_a_string() -> None:
    assert isinstance(ldbulk.__version__, str)
    assert ldbulk.__version__


def test_package_ships_py_typed() -> None:
    assert (Path(ldbulk.__file__).parent / "py.typed").is_file()
