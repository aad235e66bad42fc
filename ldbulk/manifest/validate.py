"""One file's values checked against the manifest's JSON Schema, each error worded as ldbulk
words it, by the kind of check that failed, at the line of the node it is about. Left to the
loader on purpose: a value meant as a reference (it holds ``${``), which the resolver judges,
and a config value of the right type, which its model judges (a role ARN, a region, a port).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from yaml.nodes import Node, ScalarNode

from ldbulk.api.fields import api_name, form_fields, is_secret, value_kind
from ldbulk.api.models import (
    CONFIG_CLASSES,
    INTEGRATION_KEYS,
    KEY_CHARACTERS,
    KEY_RULE,
    IntegrationKey,
)
from ldbulk.manifest.jsonschema import REFERENCE, manifest_schema
from ldbulk.manifest.nodes import FLOAT, INT, UNREADABLE, NodePath, Tree, closest, kind, quote
from ldbulk.manifest.references import is_reference

if TYPE_CHECKING:
    # Imported when a manifest is first checked: a command that reads none starts sooner.
    from jsonschema.exceptions import ValidationError

_EXPECTED: Final = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
}


# The keywords below check as jsonschema's own do, but strictly as YAML's types are (neither
# 1.0 nor true is the version 1), and for a manifest of 100,000 targets, the common case in one
# pass, without a validator made for each item or alternative.
def _const(validator: Any, const: object, instance: object, schema: object) -> Iterator[Any]:
    if type(instance) is not type(const) or instance != const:
        yield _error("not the constant")


def _pattern(validator: Any, pattern: str, instance: object, schema: object) -> Iterator[Any]:
    if isinstance(instance, str) and not _whole(pattern).search(instance):
        yield _error("no match")


def _items(validator: Any, items: Any, instance: object, schema: object) -> Iterator[Any]:
    whole = _plain_pattern(items)
    if not isinstance(instance, list) or not _all_match(whole, instance):
        yield from _standard("items", validator, items, instance, schema)


def _all_match(whole: re.Pattern[str] | None, items: list[object]) -> bool:
    return whole is not None and all(isinstance(i, str) and whole.search(i) for i in items)


def _any_of(validator: Any, alternatives: Any, instance: object, schema: object) -> Iterator[Any]:
    if not any(_plainly_holds(alternative, instance) for alternative in alternatives):
        yield from _standard("anyOf", validator, alternatives, instance, schema)


def _one_of(validator: Any, alternatives: Any, instance: object, schema: object) -> Iterator[Any]:
    # A target's project or projects: which keys it has says at once whether one holds.
    if isinstance(instance, dict) and all(each.keys() == {"required"} for each in alternatives):
        holding = [all(key in instance for key in each["required"]) for each in alternatives]
        if holding.count(True) == 1:
            return
    yield from _standard("oneOf", validator, alternatives, instance, schema)


def _plainly_holds(alternative: Mapping[str, Any], instance: object) -> bool:
    """Whether ``instance`` fits an alternative that is a constant, or a string's pattern."""
    if alternative.keys() == {"const"}:
        const = alternative["const"]
        return type(instance) is type(const) and instance == const
    whole = _plain_pattern(alternative)
    return whole is not None and isinstance(instance, str) and bool(whole.search(instance))


def _plain_pattern(schema: Mapping[str, Any]) -> re.Pattern[str] | None:
    """The pattern of a schema that only says a string matches it, else None."""
    plain = schema.keys() <= {"type", "pattern", "title"} and "pattern" in schema
    return _whole(schema["pattern"]) if plain and schema.get("type", "string") == "string" else None


@functools.cache
def _whole(pattern: str) -> re.Pattern[str]:
    # The schema's patterns end in ECMA 262's `$`, the very end of the text; Python's `$` also
    # matches before a final newline, which no key may hold.
    return re.compile(pattern.removesuffix("$") + r"\Z")


def _standard(keyword: str, *arguments: Any) -> Iterator[Any]:
    from jsonschema import Draft202012Validator

    yield from Draft202012Validator.VALIDATORS[keyword](*arguments)


def _error(message: str) -> Any:
    from jsonschema.exceptions import ValidationError

    return ValidationError(message)


@functools.cache
def _validator() -> Any:
    import jsonschema

    base = jsonschema.Draft202012Validator
    # A YAML float is never an integer, even 6379.0.
    types = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    extend: Any = jsonschema.validators.extend  # untyped in its stubs
    keywords = {"const": _const, "pattern": _pattern, "items": _items}
    strict = extend(base, {**keywords, "anyOf": _any_of, "oneOf": _one_of}, type_checker=types)
    return strict(manifest_schema())


def check(
    tree: Tree, document: object, checked_as: Mapping[str, IntegrationKey | None] | None
) -> None:
    """Note every schema error of ``document`` (read from ``tree``) as a problem; ``checked_as``
    is :func:`integration_of` each store (None: the file is of another version)."""
    translator = _Translator(tree, checked_as or {})
    validator = _validator()
    if checked_as is None:  # a file of another version: only its top-level keys are known
        keys = {key: True for key in validator.schema["properties"]}
        validator = validator.evolve(schema={"additionalProperties": False, "properties": keys})
    for error in validator.iter_errors(document):
        translator.report(error)


def refused_name(name: str) -> bool:
    """Whether the schema refuses ``name`` as a store's: such a store is not defined at all."""
    names = _validator().schema["properties"]["stores"]["propertyNames"]
    return not _validator().evolve(schema=names).is_valid(name)


def integration_of(store: object) -> IntegrationKey | None:
    """The integration a store's config is checked as: its ``integration``; when that is
    misspelt, the closest known key, else the one whose fields the config's keys are closest
    to (None when nothing is close, or it is no string)."""
    if not isinstance(store, dict) or not isinstance(store.get("integration"), str):
        return None
    value = store["integration"]
    if value in INTEGRATION_KEYS:
        return cast(IntegrationKey, value)
    guess = cast(IntegrationKey | None, closest(value.lower(), INTEGRATION_KEYS))
    return guess or _integration_of_fields(store.get("config"))


def _unknown_integration(value: str, checked_as: IntegrationKey | None) -> str:
    """What is wrong with a store's ``integration`` of ``value``, no known one."""
    guess = closest(value.lower(), INTEGRATION_KEYS)
    hint = f"; did you mean {quote(guess)}?" if guess else ""
    if guess is None and checked_as is not None:
        hint = f"; its config is checked as {checked_as}'s"
    expected = " or ".join(INTEGRATION_KEYS)
    return f"unknown integration {quote(value)} (expected {expected}{hint})"


def _integration_of_fields(config: object) -> IntegrationKey | None:
    """The integration whose fields most of a config's keys are (or are closest to)."""
    keys = list(config) if isinstance(config, dict) else []
    matched: dict[IntegrationKey, int] = {}
    for integration in INTEGRATION_KEYS:
        fields = [api_name(field) for field in form_fields(CONFIG_CLASSES[integration])]
        matched[integration] = sum(1 for key in keys if closest(key, fields, cutoff=0.7))
    best = max(matched, key=matched.__getitem__)  # the first of the best
    return best if matched[best] else None


class _Translator:
    def __init__(self, tree: Tree, checked_as: Mapping[str, IntegrationKey | None]) -> None:
        self.tree = tree
        self.checked_as = checked_as

    def report(self, error: ValidationError) -> None:
        path: NodePath = tuple(error.absolute_path)
        if error.instance is UNREADABLE or self._loaders(error, path):
            return
        node = self.tree.find(path)[1]
        check = str(error.validator)
        schema, instance = cast(Any, error.schema), cast(Any, error.instance)
        if check == "anyOf":
            for sub in self._alternative(error, path, node):
                self.report(sub)
        elif check == "additionalProperties":
            known = list(schema.get("properties", {}))
            for key in (key for key in instance if key not in known):
                close = closest(key, known)
                hint = f"did you mean {quote(close)}?" if close else f"expected {', '.join(known)}"
                key_node = self.tree.find((*path, key))[0] or node
                self.tree.note((*path, key), f"unknown key ({hint})", key_node)
        elif check == "oneOf":  # a target's project or projects: the one rule using it
            # Of anything but a mapping, both alternatives hold: its type is what is wrong.
            if isinstance(instance, dict):
                self.tree.note(path, _which_one(schema, instance))
        elif check == "required":
            for key in (key for key in schema["required"] if key not in instance):
                self.tree.note(path, f"missing required key {quote(key)}")
        elif "propertyNames" in error.absolute_schema_path:
            message = (
                f"{schema['title']}s use {KEY_CHARACTERS}, start with a letter or digit, and have "
                f"at most {schema['maxLength']} characters"
            )
            key_node = self.tree.find((*path, instance))[0] or node
            self.tree.note((*path, instance), message, key_node)
        else:
            self.tree.note(path, _wording(check, schema, instance, node, path))

    def _loaders(self, error: ValidationError, path: NodePath) -> bool:
        """Whether the loader, not the schema, says what is wrong (True once said): a store's
        unknown integration, with its hint; a config value of a wrong type as the field table
        words it; nothing of a config whose integration is unknown, of a reference (the
        resolver's) or of a value of the right type (its model's)."""
        if len(path) < 3 or path[0] != "stores" or path[2] not in ("integration", "config"):
            return False
        integration = self.checked_as.get(str(path[1]))
        if path[2] == "integration":
            if error.validator != "const":
                return False
            if isinstance(error.instance, str) and error.instance not in INTEGRATION_KEYS:
                self.tree.note(path, _unknown_integration(error.instance, integration))
            return True
        if integration is None or len(path) == 3:
            return integration is None
        if isinstance(error.instance, str) and is_reference(error.instance):
            return True
        fields = {api_name(field): field for field in form_fields(CONFIG_CLASSES[integration])}
        field, node = fields[str(path[3])], self.tree.find(path)[1]
        if is_secret(field) and isinstance(node, ScalarNode):
            message = f"{path[3]} must be a ${{VAR}} or ${{file:PATH}} reference"
            self.tree.note(path, f"{message}: secrets do not belong in a manifest")
        elif not _type_fits(error):
            self.tree.note(path, f"must be {value_kind(field)}, got {kind(node)}")
        return True

    def _alternative(self, error: ValidationError, path: NodePath, node: Node) -> list[Any]:
        """The errors of the one alternative the value was meant as: a store's by the
        integration it is checked as, any other's by the value's type."""
        schema = cast(Any, error.schema)
        alternatives: list[Any] = schema["anyOf"]
        if path[:1] == ("stores",) and isinstance(error.instance, dict):
            integrations = [each["properties"]["integration"]["const"] for each in alternatives]
            meant = self.checked_as.get(str(path[1]))
            index = integrations.index(meant) if meant else 0
        else:
            fitting = [i for i, each in enumerate(alternatives) if _of_type(error.instance, each)]
            if not fitting and "description" in schema:
                self.tree.note(path, f"must be {schema['description']}, got {kind(node)}")
                return []
            index = fitting[0] if fitting else 0
        return [sub for sub in error.context or () if sub.relative_schema_path[0] == index]


def _of_type(instance: object, schema: Mapping[str, Any]) -> bool:
    return "type" in schema and bool(_validator().is_type(instance, schema["type"]))


def _type_fits(error: ValidationError) -> bool:
    """Whether a value has a type some alternative takes (a reference aside: a string without
    ``${`` is none), so that only the value is wrong."""
    schema = cast(Any, error.schema)
    return any(
        _of_type(error.instance, each) and each.get("pattern") != REFERENCE["pattern"]
        for each in schema.get("anyOf", [schema])
    )


def _which_one(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> str:
    """Which of the keys ``oneOf`` requires one of is missing, or that several are given."""
    keys = [alternative["required"][0] for alternative in schema["oneOf"]]
    given = [key for key in keys if key in instance]
    if given:
        return f"{' and '.join(map(quote, given))} exclude each other: write one of them"
    others = "".join(f" (or {quote(key)})" for key in keys[1:])
    return f"missing required key {quote(keys[0])}{others}"


def _wording(
    check: str, schema: Mapping[str, Any], instance: object, node: Node, path: NodePath
) -> str:
    """A schema error as ldbulk says it, by the kind of check that failed."""
    if check == "const":
        return f"must be {json.dumps(schema['const'])}, got {kind(node)}"
    if check == "type" and not path:
        return f"the top level must be a mapping with version, stores and targets, got {kind(node)}"
    if check == "type":
        message = f"must be {_EXPECTED.get(schema['type'], schema['type'])}, got {kind(node)}"
        # A number where a string is meant (a project key 2024) is a string once quoted.
        if schema["type"] == "string" and isinstance(node, ScalarNode) and node.tag in (INT, FLOAT):
            message += f" (quote it: {quote(str(node.value))})"
        elif path[-1] == "project" and isinstance(instance, list | dict):
            message += " (several projects are written projects: [...] or projects: {tags: [...]})"
        return message
    # The lists and mappings that must not be empty are named in the plural.
    noun = str(path[-1]).removesuffix("s") if path else "item"
    if check in ("minItems", "minProperties"):
        return f"must {'list' if check == 'minItems' else 'define'} at least one {noun}"
    if check in ("pattern", "maxLength") and "title" in schema:
        if instance == "*" and schema["title"] == "environment key":
            return '"*" stands alone: write environments: "*"'
        if instance == "*" and schema["title"] == "project key":
            return 'every project is written project: "*", not in a list'
        return f"{quote(str(instance))} is not a valid {schema['title']} ({KEY_RULE})"
    return f"does not match the manifest's schema ({check})"
