"""Bounded YAML loading with line marks, and reading its nodes into plain values, each problem
at its line and path. Hostile input ends as problems, never a traceback: files are capped in
size, nesting depth and work done expanding aliases, and values in messages are escaped."""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Iterable
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
# Aliases let a small file describe an enormous tree ("billion laughs"): cap the items walked.
MAX_WORK: Final = 2_000_000
MAX_PROBLEMS_PER_FILE: Final = 200
_PLAIN_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

STR: Final = "tag:yaml.org,2002:str"
INT: Final = "tag:yaml.org,2002:int"
FLOAT: Final = "tag:yaml.org,2002:float"
_MERGE: Final = "tag:yaml.org,2002:merge"
_KINDS: Final = {
    STR: "a string",
    INT: "an integer",
    "tag:yaml.org,2002:bool": "a boolean",
    FLOAT: "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
}
# A scalar of a tag that is never constructed (``!!python/name:...``): no type of the schema
# takes it, and a message names its tag.
OPAQUE: Final = object()
# A scalar that could not be read (``!!int nope``): its problem is noted, the schema's is not.
UNREADABLE: Final = object()
NodePath = tuple[str | int, ...]
# A mapping's entries by key: (key node, value node).
Entries = dict[str, tuple[Node, Node]]


class TooMuch(Exception):
    """The document is too deep or expands to too much: stop walking it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


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
        message = f"{self.dropped} more problems not shown"
        return [*self.items, Problem(file=self.file, line=0, path="", message=message)]


def read_text(source: Path | bytes | str, problems: Problems) -> str | None:
    """The text of a manifest file, of its bytes or of its text; None (and a problem) when it
    cannot be read, is larger than :data:`MAX_FILE_BYTES` or is not UTF-8."""
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
    if isinstance(source, str):
        return source
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = source.count(b"\n", 0, exc.start) + 1
        problems.add(line, "", f"not UTF-8 text (byte 0x{source[exc.start]:02x})")
        return None


def parse(text: str, file: str, problems: Problems) -> Node | None:
    """The root node of one YAML document; None (and a problem) when it is not well-formed, too
    deep, or empty. A ``*.json`` file is checked as JSON first, so its errors read as such."""
    if file.lower().endswith(".json"):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            problems.add(exc.lineno, "", f"invalid JSON: {exc.msg} (column {exc.colno})")
            return None
        except RecursionError:
            problems.add(0, "", "invalid JSON: nested too deeply")
            return None
        # Raw tabs can only be whitespace between tokens in valid JSON, and PyYAML refuses
        # some of them; spaces keep every line and column where it was.
        text = text.replace("\t", " ")
    try:
        root = _compose(text)
    except TooMuch as exc:
        problems.add(exc.line, "", str(exc))
        return None
    except yaml.MarkedYAMLError as exc:
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        message = f"invalid YAML: {reason or type(exc).__name__}"
        problems.add(_line(exc.problem_mark or exc.context_mark), "", message)
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


def _compose(text: str) -> Node | None:
    """The node tree, composed by libyaml when there (several times faster), else by PyYAML.
    Both recurse, libyaml where no recursion limit guards the stack: depth is checked first."""
    loader_class: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader_class):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.NodeEvent) and depth + 1 > MAX_DEPTH:
                raise TooMuch(_line(event.start_mark), f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
    except yaml.MarkedYAMLError as exc:
        # Newer libyaml scans ahead through a flow collection and refuses one nested past its
        # own limit (1,000) before any of its events is counted: the same problem, told the same.
        if exc.problem != "exceeded maximum nesting depth":
            raise
        raise TooMuch(_line(exc.problem_mark), f"nested deeper than {MAX_DEPTH} levels") from None
    loader = loader_class(text)
    try:
        return cast(Node | None, loader.get_single_node())
    finally:
        loader.dispose()


def _line(mark: Any) -> int:
    """The 1-based line of a mark, PyYAML's or libyaml's (0: none, the whole file)."""
    return mark.line + 1 if mark is not None else 0


def line_of(node: Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


class Tree:
    """One file's nodes read into plain values for the schema, keeping where each was written;
    what a schema cannot see (keys that are not strings or repeat, bad merges) noted here."""

    def __init__(self, file: str, root: Node, problems: Problems) -> None:
        self.file = file
        self.root = root
        self.problems = problems
        # Every path with a problem at or below it, so what is built skips it.
        self.bad: set[NodePath] = set()
        self._noted: set[tuple[int, NodePath, str]] = set()
        self._entries: dict[int, Entries] = {}
        self._work = 0
        self._constructor = SafeConstructor()

    def note(self, path: NodePath, message: str, node: Node | None = None) -> None:
        """A problem at the line of ``node`` (default: the value at ``path``), said once."""
        self.bad.update(path[:end] for end in range(len(path) + 1))
        noted = (line_of(self.find(path)[1] if node is None else node), path, message)
        if noted not in self._noted:
            self._noted.add(noted)
            self.problems.add(noted[0], path_text(path), message)

    def value(self, node: Node | None = None, path: NodePath = ()) -> object:
        """The plain value of ``node`` (the root by default)."""
        node = self.root if node is None else node
        self._work += 1
        if self._work > MAX_WORK:
            raise TooMuch(line_of(node), f"expands to more than {MAX_WORK} items (aliases?)")
        if len(path) >= MAX_DEPTH and isinstance(node, MappingNode | SequenceNode):
            # Aliases can make a loop.
            raise TooMuch(line_of(node), f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, MappingNode):
            entries = self.entries(node, path)
            return {key: self.value(item, (*path, key)) for key, (_, item) in entries.items()}
        if isinstance(node, SequenceNode):
            return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
        if node.tag == STR:
            return str(node.value)
        if node.tag not in _KINDS:
            return OPAQUE
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.note(path, f"cannot read value: {exc.problem or type(exc).__name__}", node)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            self.note(path, f"cannot read value: {type(exc).__name__}", node)
        return UNREADABLE

    def entries(self, node: MappingNode, path: NodePath, depth: int = 0) -> Entries:
        """A mapping's entries, merge keys applied: entries written in the mapping win over
        merged ones, as YAML says."""
        known = self._entries.get(id(node))
        if known is not None:
            return known
        own: Entries = {}
        merged: Entries = {}
        for key_node, value_node in node.value:
            self._work += 1
            if key_node.tag == _MERGE:
                self._merge(value_node, path, merged, depth)
            elif not isinstance(key_node, ScalarNode):
                self.note(path, f"keys must be strings, got {kind(key_node)}", key_node)
            # Keys are read as written: YAML 1.1 would turn the key `on:` into true.
            elif (key := str(key_node.value)) in own:
                first = line_of(own[key][0])
                self.note((*path, key), f"duplicate key (first at line {first})", key_node)
            else:
                own[key] = (key_node, value_node)
        for key, entry in merged.items():
            own.setdefault(key, entry)
        self._entries[id(node)] = own
        return own

    def _merge(self, node: Node, path: NodePath, into: Entries, depth: int) -> None:
        if depth >= 8:
            self.note(path, "<< merges nested too deeply", node)
            return
        for source in node.value if isinstance(node, SequenceNode) else [node]:
            if not isinstance(source, MappingNode):
                self.note(path, "<< must merge a mapping or a list of mappings", source)
                continue
            for key, entry in self.entries(source, path, depth + 1).items():
                into.setdefault(key, entry)

    def find(self, path: NodePath) -> tuple[Node | None, Node]:
        """The key node (None for a list item or the root) and the value node at ``path``."""
        key_node: Node | None = None
        node = self.root
        for step in path:
            if isinstance(step, int) and isinstance(node, SequenceNode):
                key_node, node = None, node.value[step]
            elif isinstance(node, MappingNode):
                key_node, node = self._entries[id(node)][str(step)]
        return key_node, node

    def source(self, path: NodePath, *, key: bool = False) -> Source:
        """Where the value at ``path`` was written (or its key, with ``key``)."""
        key_node, node = self.find(path)
        line = line_of(key_node if key and key_node is not None else node)
        return Source(file=self.file, line=line, path=path_text(path))


def kind(node: Node) -> str:
    """What a node is, as a message says it ("a list", "an integer")."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _KINDS.get(str(node.tag), f"a value tagged {quote(str(node.tag))}")


def path_text(path: NodePath) -> str:
    """A path as messages write it: ``targets[2].store``, ``a["odd key"]``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text = index_path(text, step)
        elif _PLAIN_PATH_PART.fullmatch(step):
            text = f"{text}.{step}" if text else step
        else:
            text = f"{text}[{quote(step)}]"
    return text


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice most like ``word``, for a did-you-mean; None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


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
