"""Bounded YAML loading with line marks, and reading its nodes into typed values.

Everything here turns hostile input into problems, never a traceback: files are capped in
size, nesting depth and work done expanding aliases, and values shown in messages are truncated
and escaped. The schema of a manifest is not here (see :mod:`ldbulk.manifest.schema`), only
"a mapping", "a list of tags", "a LaunchDarkly key", each problem at its line and path.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

import attrs
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ldbulk.manifest.model import Problem, Source, index_path

MAX_FILE_BYTES: Final = 8 * 1024 * 1024
# A manifest is at most six levels deep; the limit only stops hostile nesting, far above that
# and far below where PyYAML's recursive composer would exhaust the stack.
MAX_DEPTH: Final = 64
# How libyaml (0.2.5 and later) words its own nesting limit.
_LIBYAML_TOO_DEEP: Final = "exceeded maximum nesting depth"
# Aliases let a small file describe an enormous tree ("billion laughs"): cap the items walked.
MAX_WORK: Final = 2_000_000
MAX_PROBLEMS_PER_FILE: Final = 200
MAX_KEY_LENGTH: Final = 256

# LaunchDarkly keys and tags: letters, digits, '.', '_' and '-', starting with a letter or digit.
KEY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PLAIN_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

STR: Final = "tag:yaml.org,2002:str"
INT: Final = "tag:yaml.org,2002:int"
BOOL: Final = "tag:yaml.org,2002:bool"
_FLOAT: Final = "tag:yaml.org,2002:float"
_MERGE: Final = "tag:yaml.org,2002:merge"
_KINDS: Final = {
    STR: "a string",
    INT: "an integer",
    BOOL: "a boolean",
    _FLOAT: "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
}


class TooMuch(Exception):
    """The document is too deep or expands to too much; stop walking it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader's composer with a nesting limit (the composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise TooMuch(mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str) -> Node | None:
    """The document's node tree, composed by libyaml when PyYAML was built with it (several
    times faster on a large manifest), else by PyYAML's own composer."""
    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is None:  # pragma: no cover - PyYAML's wheels come with libyaml
        loader: Any = _BoundedLoader(text)
    else:
        # libyaml composes recursively in C, where no recursion limit guards the stack: the
        # depth is checked first, on the flat stream of parse events.
        _check_depth(text, c_loader)
        loader = c_loader(text)
    try:
        return cast(Node | None, loader.get_single_node())
    finally:
        loader.dispose()


def _check_depth(text: str, loader: type[Any]) -> None:
    """Raise :class:`TooMuch` at the first node nested deeper than :data:`MAX_DEPTH` (a node
    counts one level, as in the composer's recursion)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            if depth + 1 > MAX_DEPTH:
                raise TooMuch(_line(event.start_mark), f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
    except yaml.MarkedYAMLError as exc:
        # Newer libyaml scans ahead through a flow collection and refuses one nested past its
        # own limit (1,000) before any of its events reaches the count above: the same problem,
        # told the same way.
        if exc.problem != _LIBYAML_TOO_DEEP:
            raise
        raise TooMuch(_line(exc.problem_mark), f"nested deeper than {MAX_DEPTH} levels") from None


def _line(mark: Any) -> int:
    """The 1-based line of a mark, PyYAML's or libyaml's (0: none, the whole file)."""
    return mark.line + 1 if mark is not None else 0


@attrs.define
class Problems:
    """The problems of one file, capped so a hostile file cannot flood the output."""

    file: str
    items: list[Problem] = attrs.field(factory=list)
    dropped: int = 0

    def add(self, line: int, path: str, message: str) -> None:
        """Note a problem (line 0 and no path: the whole file)."""
        if len(self.items) >= MAX_PROBLEMS_PER_FILE:
            self.dropped += 1
            return
        self.items.append(Problem(file=self.file, line=line, path=path, message=message))

    def finished(self) -> list[Problem]:
        """The problems noted, and how many more were dropped."""
        if not self.dropped:
            return list(self.items)
        more = Problem(
            file=self.file, line=0, path="", message=f"{self.dropped} more problems not shown"
        )
        return [*self.items, more]


def line_of(node: Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def read_text(source: Path | bytes | str, problems: Problems) -> str | None:
    """The text of a manifest file, of its bytes or of its text; None (and a problem) when it
    cannot be read, is larger than :data:`MAX_FILE_BYTES` or is not UTF-8."""
    if isinstance(source, str):
        if len(source) > MAX_FILE_BYTES:
            problems.add(0, "", f"larger than {MAX_FILE_BYTES} bytes")
            return None
        return source
    if isinstance(source, Path):
        try:
            with source.open("rb") as handle:
                source = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            problems.add(0, "", f"cannot read file: {exc.strerror or type(exc).__name__}")
            return None
    if len(source) > MAX_FILE_BYTES:
        problems.add(0, "", f"larger than {MAX_FILE_BYTES} bytes")
        return None
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = source.count(b"\n", 0, exc.start) + 1
        problems.add(line, "", f"not UTF-8 text (byte 0x{source[exc.start]:02x})")
        return None


def parse(text: str, file: str, problems: Problems) -> Node | None:
    """The root node of one YAML document; None (and a problem) when it is not well-formed, too
    deep, or empty. A file named ``*.json`` must pass a JSON syntax check first, so its errors
    read as JSON errors."""
    if file.lower().endswith(".json"):
        if not _json_syntax_ok(text, problems):
            return None
        # Raw tabs can only be whitespace between tokens in valid JSON, and PyYAML refuses
        # some of them; spaces keep every line and column where it was.
        text = text.replace("\t", " ")
    try:
        root = _compose(text)
    except TooMuch as exc:
        problems.add(exc.line, "", exc.message)
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 0
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        problems.add(line, "", f"invalid YAML: {reason or type(exc).__name__}")
        return None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        problems.add(line, "", f"invalid YAML: character #x{exc.character:04x} is not allowed")
        return None
    except yaml.YAMLError as exc:
        problems.add(0, "", f"invalid YAML: {type(exc).__name__}")
        return None
    if root is None:
        problems.add(1, "", "empty manifest: expected a mapping with version, stores and targets")
    return root


def _json_syntax_ok(text: str, problems: Problems) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(exc.lineno, "", f"invalid JSON: {exc.msg} (column {exc.colno})")
        return False
    except RecursionError:
        problems.add(0, "", "invalid JSON: nested too deeply")
        return False
    return True


class NodeReader:
    """Reads the nodes of one file into typed values, noting a problem (at the node's line)
    wherever a node is not what was asked for, and counting the work done against
    :data:`MAX_WORK`, past which it raises :class:`TooMuch`."""

    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems
        self._work = 0
        self._constructor = SafeConstructor()

    def spend(self, node: Node, amount: int = 1) -> None:
        """Count ``amount`` items walked at ``node``; :class:`TooMuch` past the limit."""
        self._work += amount
        if self._work > MAX_WORK:
            raise TooMuch(line_of(node), f"expands to more than {MAX_WORK} items (aliases?)")

    def add(self, node: Node, path: str, message: str) -> None:
        """Note a problem at the node's line."""
        self.problems.add(line_of(node), path, message)

    def source(self, node: Node, path: str) -> Source:
        """Where the node was written, for the result and later messages."""
        return Source(file=self.file, line=line_of(node), path=path)

    def kind(self, node: Node) -> str:
        """What the node is, as a message says it ("a list", "an integer")."""
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        return _KINDS.get(str(node.tag), f"a value tagged {quote(str(node.tag))}")

    def mapping(self, node: Node, path: str, depth: int = 0) -> dict[str, tuple[Node, Node]] | None:
        """The mapping's entries by key, merge keys applied; None (and a problem) if it is not
        a mapping. Entries written in the mapping win over merged ones, as YAML says."""
        if not isinstance(node, MappingNode):
            self.add(node, path, f"must be a mapping, got {self.kind(node)}")
            return None
        own: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            self.spend(key_node)
            if key_node.tag == _MERGE:
                self._merge(value_node, path, merged, depth)
                continue
            # Keys are read as written: YAML 1.1 would turn the key `on:` into true.
            if not isinstance(key_node, ScalarNode):
                self.add(key_node, path, f"keys must be strings, got {self.kind(key_node)}")
                continue
            key = str(key_node.value)
            if key in own:
                first = line_of(own[key][0])
                self.add(key_node, child_path(path, key), f"duplicate key (first at line {first})")
                continue
            own[key] = (key_node, value_node)
        for key, entry in merged.items():
            own.setdefault(key, entry)
        return own

    def _merge(self, node: Node, path: str, into: dict[str, tuple[Node, Node]], depth: int) -> None:
        if depth >= 8:
            self.add(node, path, "<< merges nested too deeply")
            return
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.add(source, path, "<< must merge a mapping or a list of mappings")
                continue
            entries = self.mapping(source, path, depth + 1) or {}
            for key, entry in entries.items():
                into.setdefault(key, entry)

    def keys(
        self,
        node: Node,
        entries: Mapping[str, tuple[Node, Node]],
        path: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> None:
        """Report unknown keys (with a suggestion) and missing required keys."""
        for key, (key_node, _) in entries.items():
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {quote(close[0])}?" if close else "expected " + ", ".join(allowed)
            self.add(key_node, child_path(path, key), f"unknown key ({hint})")
        for key in required:
            if key not in entries:
                self.add(node, path, f"missing required key {quote(key)}")

    def scalar(self, node: ScalarNode, path: str) -> tuple[bool, object]:
        """The value of a scalar as SafeLoader constructs it; (False, None) after a problem."""
        try:
            return True, self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.add(node, path, f"cannot read value: {exc.problem or type(exc).__name__}")
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            self.add(node, path, f"cannot read value: {type(exc).__name__}")
        return False, None

    def string(self, node: Node, path: str) -> str | None:
        """A string; None (and a problem, with a hint to quote a number) otherwise."""
        if isinstance(node, ScalarNode) and node.tag == STR:
            return str(node.value)
        message = f"must be a string, got {self.kind(node)}"
        if isinstance(node, ScalarNode) and node.tag in (INT, _FLOAT):
            message += f" (quote it: {quote(str(node.value))})"
        self.add(node, path, message)
        return None

    def boolean(self, node: Node, path: str) -> bool | None:
        """A boolean; None (and a problem) otherwise."""
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            ok, value = self.scalar(node, path)
            return bool(value) if ok else None
        self.add(node, path, f"must be true or false, got {self.kind(node)}")
        return None

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        """A list's items; None (and a problem) if it is not a list."""
        if not isinstance(node, SequenceNode):
            self.add(node, path, f"must be a list, got {self.kind(node)}")
            return None
        self.spend(node, len(node.value))
        return list(node.value)

    def identifier(self, node: Node, path: str, what: str) -> str | None:
        """A LaunchDarkly key or tag (letters, digits, '.', '_', '-'; starts alphanumeric)."""
        value = self.string(node, path)
        if value is None:
            return None
        if not KEY.fullmatch(value) or len(value) > MAX_KEY_LENGTH:
            self.add(
                node,
                path,
                f"{quote(value)} is not a valid {what} (letters, digits, '.', '_' and '-', "
                f"starting with a letter or digit, at most {MAX_KEY_LENGTH} characters)",
            )
            return None
        return value

    def tags(self, node: Node, path: str, *, non_empty: bool = False) -> tuple[str, ...] | None:
        """A list of tags, each once, in order; None after a problem."""
        items = self.sequence(node, path)
        if items is None:
            return None
        if non_empty and not items:
            self.add(node, path, "must list at least one tag")
            return None
        tags: list[str] = []
        ok = True
        for index, item in enumerate(items):
            tag = self.identifier(item, index_path(path, index), "tag")
            if tag is None:
                ok = False
            elif tag not in tags:
                tags.append(tag)
        return tuple(tags) if ok else None


def child_path(path: str, key: str) -> str:
    """The path of a mapping's entry: ``a.b``, or ``a["odd key"]``."""
    if _PLAIN_PATH_PART.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{quote(key)}]"




def quote(value: str, limit: int = 80) -> str:
    """A value for a message: double-quoted, truncated, control and invisible characters
    escaped, so hostile input cannot break lines or a terminal."""
    if len(value) > limit:
        value = value[:limit] + "…"
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
