"""RFC 6902 JSON Patch, enough of it for LaunchDarkly's PATCH semantics.

All six operations are supported. A failed ``test`` raises :class:`PatchTestFailed` (the
caller answers 409, LaunchDarkly's optimistic-locking conflict); any other problem raises
:class:`PatchError` (400). The document is patched in place: callers pass a copy.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """The patch document is malformed or cannot be applied."""


class PatchTestFailed(PatchError):
    """A ``test`` operation did not match: nothing was applied."""


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"path {pointer!r} is not a JSON pointer")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, insert: bool) -> int:
    if insert and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not insert):
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("the whole document cannot be replaced")
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, pointer)
    return node, tokens[-1]


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"path {pointer!r} does not exist")
        return node[token]
    if isinstance(node, list):
        return node[_index(node, token, insert=False)]
    raise PatchError(f"path {pointer!r} does not exist")


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for token in _tokens(pointer):
        node = _child(node, token, pointer)
    return node


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, insert=True), value)
    else:
        raise PatchError(f"path {pointer!r} does not exist")


def _remove(doc: Any, pointer: str) -> Any:
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {pointer!r} does not exist")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, insert=False))
    raise PatchError(f"path {pointer!r} does not exist")


def _equal(left: Any, right: Any) -> bool:
    # JSON equality: 1 and true differ, unlike in Python.
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_equal, left, right))
    return bool(left == right)


def apply_patch(doc: dict[str, Any], operations: Any) -> None:
    """Apply ``operations`` (a JSON Patch array) to ``doc`` in place."""
    if not isinstance(operations, list) or not operations:
        raise PatchError("a JSON Patch must be a non-empty array of operations")
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise PatchError(f"operation {number}: must be an object")
        op, path = operation.get("op"), operation.get("path")
        if not isinstance(op, str) or not isinstance(path, str):
            raise PatchError(f"operation {number}: needs string 'op' and 'path'")
        needs_value = op in ("add", "replace", "test")
        if needs_value and "value" not in operation:
            raise PatchError(f"operation {number}: {op} needs a 'value'")
        value = copy.deepcopy(operation.get("value"))
        if op == "add":
            _add(doc, path, value)
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            _remove(doc, path)
            _add(doc, path, value)
        elif op in ("move", "copy"):
            source = operation.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {number}: {op} needs a string 'from'")
            if op == "move":
                if path.startswith(source + "/"):
                    raise PatchError(f"operation {number}: cannot move a value into itself")
                moved = _remove(doc, source)
            else:
                moved = copy.deepcopy(_get(doc, source))
            _add(doc, path, moved)
        elif op == "test":
            try:
                current = _get(doc, path)
            except PatchError:
                raise PatchTestFailed(f"test failed: {path} does not exist") from None
            if not _equal(current, value):
                raise PatchTestFailed(f"test failed: {path} does not have the expected value")
        else:
            raise PatchError(f"operation {number}: unknown op {op!r}")
