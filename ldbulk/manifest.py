"""Manifests, from YAML or JSON files to validated stores and target selectors; no network.

A manifest (format version 1) names persistent stores and the project/environment pairs that
get them::

    version: 1
    defaults: {on: true, tags: [managed-by-ldbulk]}     # optional, for this file's stores
    stores:
      redis-east:
        integration: redis                              # or dynamodb
        name: "Big segments for {project}/{environment}"
        config: {host: redis.internal, password: "${LD_REDIS_PASSWORD}"}
    targets:
      - {project: web, environments: [production, staging], store: redis-east}
      - {project: mobile, environments: "*", store: redis-east}
      - {project: data, environments: {tags: [prod]}, store: redis-east}

Decisions worth knowing:

- **Everything is checked before anything is returned**, and every problem is reported at once
  as ``file:line: path: message`` (``manifests/prod.yaml:14: targets[2].store: unknown store
  "redis-eu"``). Paths use 0-based list indices, like jq. A problem that concerns a whole file
  (unreadable, not UTF-8) has no line and no path: ``manifests/prod.yaml: cannot read file: ...``.
- **Secrets by reference only.** ``password`` (redis) and ``externalId`` (dynamodb) must be a
  ``${VAR}`` (from the environment) or ``${file:PATH}`` (from a file, relative to the manifest's
  directory, ``~`` expanded, one trailing newline stripped) reference: a literal secret in a
  manifest kept in git is refused, and the error never repeats it. The one literal allowed is
  ``password: ""`` (a Redis without a password). The other config values may be references too.
  A reference is always the whole value; there is no interpolation inside a string.
- **A manifest's author is not trusted with the job's credentials** (see
  :mod:`ldbulk.references`): ``${LD_ACCESS_TOKEN}`` and the token file are always refused,
  variables named like other systems' credentials (``*_TOKEN``, ``*_API_KEY`` ...) unless the run
  (``allow_env``) or ``defaults.allowEnv`` names them, and files outside the manifest's directory
  unless under one of the run's ``secrets_dirs``. A config remembers which of its fields came
  from a reference, and shows the reference instead of the value.
- **Error messages never contain a secret**: a literal secret is never echoed, and a value that
  came from a reference is shown as its reference (``${VAR}``), never as what it resolved to.
  YAML syntax errors are reported from the parser's description, never its source snippet.
- **Several manifests form one set.** Store names are shared by the set, so one file may define
  stores and others the targets using them; a store defined twice is an error. ``defaults``
  apply to the stores of their own file. The set must have at least one target.
- **Duplicate targets** (the same project, environment and integration key twice, in one file or
  across files) are errors: LaunchDarkly allows one integration of each key per environment.
  Explicit environment lists are checked here; wildcards and tag selectors are expanded, and
  checked again, by :mod:`ldbulk.engine.resolve`.
- **Strict types, YAML 1.1 as PyYAML's SafeLoader reads it** (no arbitrary tags, no object
  construction). ``project: 2024`` is an integer, not a key: quote it. ``null`` is never "unset".
  Mapping keys are read as written, so ``on:`` is the key "on" (YAML 1.1 would make it true).
  Anchors, aliases and ``<<`` merge keys work. JSON is read as YAML (for line numbers), after a
  JSON syntax check whose errors are reported as JSON errors.
- **Hostile input** ends as problems, never a traceback: files are capped in size, nesting depth
  and work done expanding aliases, and values shown in messages are truncated and escaped.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

import attrs
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ldbulk.api.models import (
    CONFIG_CLASSES,
    INTEGRATION_KEYS,
    IntegrationKey,
    StoreConfig,
    api_name,
    check_field,
    form_fields,
    is_required,
    is_secret,
    value_kind,
)
from ldbulk.errors import ConfigError, LdbulkError
from ldbulk.references import MAX_SECRET_FILE_BYTES as MAX_SECRET_FILE_BYTES
from ldbulk.references import ReferencePolicy, RefusedReference, allow_list_refusal

FORMAT_VERSION: Final = 1
MAX_FILE_BYTES: Final = 8 * 1024 * 1024
# A manifest is at most six levels deep; the limit only stops hostile nesting, far above that
# and far below where PyYAML's recursive composer would exhaust the stack.
MAX_DEPTH: Final = 64
# Aliases let a small file describe an enormous tree ("billion laughs"): cap the items walked.
MAX_WORK: Final = 2_000_000
MAX_PROBLEMS_PER_FILE: Final = 200
MAX_KEY_LENGTH: Final = 256

# LaunchDarkly keys and tags: letters, digits, '.', '_' and '-', starting with a letter or digit.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REFERENCE = re.compile(r"\$\{(?:file:(?P<file>[^}]+)|(?P<var>[A-Za-z_][A-Za-z0-9_]*))\}")
_PLAIN_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_PLACEHOLDERS: Final = ("project", "environment")

_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_BOOL: Final = "tag:yaml.org,2002:bool"
_MERGE: Final = "tag:yaml.org,2002:merge"
_KINDS: Final = {
    _STR: "a string",
    _INT: "an integer",
    _BOOL: "a boolean",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
}

_TOP_KEYS: Final = ("version", "defaults", "stores", "targets")
_DEFAULTS_KEYS: Final = ("on", "tags", "allowEnv")
_STORE_KEYS: Final = ("integration", "name", "config", "on", "tags")
_TARGET_KEYS: Final = ("project", "environments", "store")


# -- problems -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Problem:
    """One thing wrong with a manifest, at a file, line and path.

    ``line`` is 1-based; 0 means the problem concerns the whole file. ``path`` is empty then.
    """

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(LdbulkError):
    """The manifests are invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in the manifests"
        super().__init__("\n".join([heading, *(str(problem) for problem in self.problems)]))


# -- the validated result -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Source:
    """Where something was written: file, 1-based line and path inside the document."""

    file: str
    line: int
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.path})"

    def problem(self, message: str, *, path: str | None = None) -> Problem:
        """A problem located here (optionally at a more precise path on the same line)."""
        return Problem(
            file=self.file,
            line=self.line,
            path=self.path if path is None else path,
            message=message,
        )


@attrs.frozen(kw_only=True)
class Store:
    """A named persistent store: its built config, defaults merged in, and the name template."""

    name: str
    config: StoreConfig
    on: bool = False
    tags: tuple[str, ...] = ()
    name_template: str | None = None
    source: Source

    @property
    def integration_key(self) -> IntegrationKey:
        """The integration key of the store (``redis`` or ``dynamodb``)."""
        return self.config.integration_key

    def render_name(self, project: str, environment: str) -> str | None:
        """The integration name for one environment, or None when the store has no template."""
        if self.name_template is None:
            return None
        return self.name_template.format(project=project, environment=environment)


@attrs.frozen(kw_only=True)
class EnvironmentKey:
    """One environment named explicitly in a target's list."""

    key: str
    source: Source


@attrs.frozen(kw_only=True)
class EnvironmentKeys:
    """An explicit list of environments: used as written, without asking the API."""

    items: tuple[EnvironmentKey, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The environment keys, in manifest order."""
        return tuple(item.key for item in self.items)

    def describe(self) -> str:
        """How the selector reads in a message."""
        return "[" + ", ".join(self.keys) + "]"


@attrs.frozen(kw_only=True)
class AllEnvironments:
    """``"*"``: every environment of the project, listed through the API."""

    source: Source

    def describe(self) -> str:
        """How the selector reads in a message."""
        return '"*"'


@attrs.frozen(kw_only=True)
class TaggedEnvironments:
    """``{tags: [...]}``: the environments of the project that carry all of these tags."""

    tags: tuple[str, ...]
    source: Source

    def describe(self) -> str:
        """How the selector reads in a message."""
        return "{tags: [" + ", ".join(self.tags) + "]}"

    def matches(self, tags: Iterable[str]) -> bool:
        """Whether an environment with ``tags`` carries every tag of the selector."""
        return set(self.tags) <= set(tags)


EnvironmentSelector = EnvironmentKeys | AllEnvironments | TaggedEnvironments


@attrs.frozen(kw_only=True)
class TargetSelector:
    """One entry of ``targets``: a project, which of its environments, and the store."""

    project: str
    environments: EnvironmentSelector
    # The store is shown by name: its full repr is on the manifest's store list already.
    store: Store = attrs.field(repr=lambda store: repr(store.name))
    source: Source
    project_source: Source


@attrs.frozen(kw_only=True)
class Manifest:
    """One validated manifest file."""

    file: str
    stores: tuple[Store, ...] = ()
    selectors: tuple[TargetSelector, ...] = ()


@attrs.frozen(kw_only=True)
class ManifestSet:
    """Validated manifests, loaded together: their stores and target selectors, in file order."""

    manifests: tuple[Manifest, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """The manifest files, as they were named when loaded."""
        return tuple(manifest.file for manifest in self.manifests)

    @property
    def stores(self) -> tuple[Store, ...]:
        """Every store of every manifest."""
        return tuple(store for manifest in self.manifests for store in manifest.stores)

    @property
    def selectors(self) -> tuple[TargetSelector, ...]:
        """Every target selector of every manifest, in manifest order."""
        return tuple(selector for manifest in self.manifests for selector in manifest.selectors)

    def store(self, name: str) -> Store:
        """The store called ``name`` (KeyError if there is none)."""
        for store in self.stores:
            if store.name == name:
                return store
        raise KeyError(name)


# -- entry points ---------------------------------------------------------------------------


def load_manifests(
    paths: Iterable[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    secrets_dirs: Iterable[str | os.PathLike[str]] = (),
    allow_env: Iterable[str] = (),
    deny_files: Iterable[str | os.PathLike[str]] = (),
) -> ManifestSet:
    """Read and validate manifest files as one set; raise :class:`ManifestError` listing all
    problems of all files.

    ``env`` supplies ``${VAR}`` references (default: ``os.environ``). What references may name
    (see :mod:`ldbulk.references`): ``secrets_dirs`` are directories ``${file:...}`` may read
    besides each manifest's own; ``allow_env`` names variables allowed although named like
    another system's credential (never ``LD_ACCESS_TOKEN``: :class:`ConfigError`);
    ``deny_files`` are files no reference may read, such as the access token's file.
    """
    env = os.environ if env is None else env
    policy = ReferencePolicy.build(
        allow_env=allow_env, secrets_dirs=secrets_dirs, deny_files=deny_files
    )
    documents: list[_Document] = []
    for path in paths:
        name = os.fspath(path)
        document = _Document(name, Path(name).parent, env, policy)
        text = _read_text(document, Path(name))
        if text is not None:
            document.check(text)
        documents.append(document)
    return _combine(documents)


def load_manifest(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    secrets_dirs: Iterable[str | os.PathLike[str]] = (),
    allow_env: Iterable[str] = (),
    deny_files: Iterable[str | os.PathLike[str]] = (),
) -> ManifestSet:
    """Read and validate one manifest file (see :func:`load_manifests`)."""
    return load_manifests(
        [path], env=env, secrets_dirs=secrets_dirs, allow_env=allow_env, deny_files=deny_files
    )


def loads_manifest(
    text: str | bytes,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    secrets_dirs: Iterable[str | os.PathLike[str]] = (),
    allow_env: Iterable[str] = (),
    deny_files: Iterable[str | os.PathLike[str]] = (),
) -> ManifestSet:
    """Validate a manifest given as text; ``file`` names it in problems (a name ending in
    ``.json`` selects the JSON syntax check), ``base_dir`` stands for the manifest's directory,
    where ``${file:...}`` references are read (default: the current directory). The other
    arguments are those of :func:`load_manifests`."""
    env = os.environ if env is None else env
    policy = ReferencePolicy.build(
        allow_env=allow_env, secrets_dirs=secrets_dirs, deny_files=deny_files
    )
    base = Path(base_dir) if base_dir is not None else Path()
    document = _Document(file, base, env, policy)
    if isinstance(text, bytes):
        decoded = _decode(document, text)
        if decoded is not None:
            document.check(decoded)
    elif len(text) > MAX_FILE_BYTES:
        document.problems.add(0, "", f"larger than {MAX_FILE_BYTES} bytes")
    else:
        document.check(text)
    return _combine([document])


def _read_text(document: _Document, path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        document.problems.add(0, "", f"cannot read file: {exc.strerror or type(exc).__name__}")
        return None
    return _decode(document, data)


def _decode(document: _Document, data: bytes) -> str | None:
    if len(data) > MAX_FILE_BYTES:
        document.problems.add(0, "", f"larger than {MAX_FILE_BYTES} bytes")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        document.problems.add(line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x})")
        return None


# -- one document ---------------------------------------------------------------------------


class _TooMuch(Exception):
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
                raise _TooMuch(mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@attrs.define
class _Problems:
    """The problems of one file, capped so a hostile file cannot flood the output."""

    file: str
    items: list[Problem] = attrs.field(factory=list)
    dropped: int = 0

    def add(self, line: int, path: str, message: str) -> None:
        if len(self.items) >= MAX_PROBLEMS_PER_FILE:
            self.dropped += 1
            return
        self.items.append(Problem(file=self.file, line=line, path=path, message=message))

    def finished(self) -> list[Problem]:
        if not self.dropped:
            return list(self.items)
        more = Problem(
            file=self.file, line=0, path="", message=f"{self.dropped} more problems not shown"
        )
        return [*self.items, more]


@attrs.frozen(kw_only=True)
class _PendingTarget:
    """A target whose store name is checked once every file of the set has been read."""

    project: str
    environments: EnvironmentSelector | None
    store_name: str
    store_source: Source
    source: Source
    project_source: Source


@attrs.frozen(kw_only=True)
class _PartialStore:
    """A store as far as it could be validated: the integration key is known even when the
    config is invalid, so its targets can still be checked for duplicates."""

    name: str
    integration: IntegrationKey | None
    store: Store | None
    source: Source


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Document:
    """Validation of one manifest document, collecting problems instead of raising."""

    def __init__(
        self, file: str, base_dir: Path, env: Mapping[str, str], policy: ReferencePolicy
    ) -> None:
        self.file = file
        self.base_dir = base_dir
        self.env = env
        self.policy = policy
        # defaults.allowEnv: more variable names this file's references may use.
        self.allow_env: frozenset[str] = frozenset()
        self.problems = _Problems(file)
        self.stores: list[_PartialStore] = []
        self.targets: list[_PendingTarget] = []
        self.has_targets_key = False
        self._work = 0
        self._constructor = SafeConstructor()
        # Resolved path -> its text, or None once a problem about it was reported.
        self._secret_files: dict[Path, str | None] = {}

    # -- parsing -----------------------------------------------------------------------------

    def check(self, text: str) -> None:
        """Parse and validate the text; results and problems accumulate on ``self``."""
        if self.file.lower().endswith(".json") and not self._json_syntax_ok(text):
            return
        if self.file.lower().endswith(".json"):
            # Raw tabs can only be whitespace between tokens in valid JSON, and PyYAML refuses
            # some of them; spaces keep every line and column where it was.
            text = text.replace("\t", " ")
        try:
            loader = _BoundedLoader(text)
            try:
                root = loader.get_single_node()
            finally:
                loader.dispose()
        except _TooMuch as exc:
            self.problems.add(exc.line, "", exc.message)
            return
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = int(mark.line) + 1 if mark is not None else 0
            reason = " ".join(part for part in (exc.context, exc.problem) if part)
            self.problems.add(line, "", f"invalid YAML: {reason or type(exc).__name__}")
            return
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            self.problems.add(
                line, "", f"invalid YAML: character #x{exc.character:04x} is not allowed"
            )
            return
        except yaml.YAMLError as exc:
            self.problems.add(0, "", f"invalid YAML: {type(exc).__name__}")
            return
        if root is None:
            self.problems.add(
                1, "", "empty manifest: expected a mapping with version, stores and targets"
            )
            return
        try:
            self._top(root)
        except _TooMuch as exc:
            self.problems.add(exc.line, "", exc.message)

    def _json_syntax_ok(self, text: str) -> bool:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            self.problems.add(exc.lineno, "", f"invalid JSON: {exc.msg} (column {exc.colno})")
            return False
        except RecursionError:
            self.problems.add(0, "", "invalid JSON: nested too deeply")
            return False
        return True

    # -- node helpers ------------------------------------------------------------------------

    def _spend(self, node: Node, amount: int = 1) -> None:
        self._work += amount
        if self._work > MAX_WORK:
            raise _TooMuch(_line(node), f"expands to more than {MAX_WORK} items (aliases?)")

    def _add(self, node: Node, path: str, message: str) -> None:
        self.problems.add(_line(node), path, message)

    def _source(self, node: Node, path: str) -> Source:
        return Source(file=self.file, line=_line(node), path=path)

    def _kind(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        return _KINDS.get(str(node.tag), f"a value tagged {_quote(str(node.tag))}")

    def _mapping(
        self, node: Node, path: str, depth: int = 0
    ) -> dict[str, tuple[Node, Node]] | None:
        """The mapping's entries by key, merge keys applied; None (and a problem) if it is not
        a mapping. Entries written in the mapping win over merged ones, as YAML says."""
        if not isinstance(node, MappingNode):
            self._add(node, path, f"must be a mapping, got {self._kind(node)}")
            return None
        own: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            self._spend(key_node)
            if key_node.tag == _MERGE:
                self._merge(value_node, path, merged, depth)
                continue
            # Keys are read as written: YAML 1.1 would turn the key `on:` into true.
            if not isinstance(key_node, ScalarNode):
                self._add(key_node, path, f"keys must be strings, got {self._kind(key_node)}")
                continue
            key = str(key_node.value)
            if key in own:
                first = _line(own[key][0])
                self._add(key_node, _child(path, key), f"duplicate key (first at line {first})")
                continue
            own[key] = (key_node, value_node)
        for key, entry in merged.items():
            own.setdefault(key, entry)
        return own

    def _merge(self, node: Node, path: str, into: dict[str, tuple[Node, Node]], depth: int) -> None:
        if depth >= 8:
            self._add(node, path, "<< merges nested too deeply")
            return
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self._add(source, path, "<< must merge a mapping or a list of mappings")
                continue
            entries = self._mapping(source, path, depth + 1) or {}
            for key, entry in entries.items():
                into.setdefault(key, entry)

    def _keys(
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
            hint = (
                f"did you mean {_quote(close[0])}?" if close else "expected " + ", ".join(allowed)
            )
            self._add(key_node, _child(path, key), f"unknown key ({hint})")
        for key in required:
            if key not in entries:
                self._add(node, path, f"missing required key {_quote(key)}")

    def _scalar(self, node: ScalarNode, path: str) -> tuple[bool, object]:
        """The value of a scalar as SafeLoader constructs it; (False, None) after a problem."""
        try:
            return True, self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self._add(node, path, f"cannot read value: {exc.problem or type(exc).__name__}")
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            self._add(node, path, f"cannot read value: {type(exc).__name__}")
        return False, None

    def _string(self, node: Node, path: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            return str(node.value)
        message = f"must be a string, got {self._kind(node)}"
        if isinstance(node, ScalarNode) and node.tag in (_INT, "tag:yaml.org,2002:float"):
            message += f" (quote it: {_quote(str(node.value))})"
        self._add(node, path, message)
        return None

    def _boolean(self, node: Node, path: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            ok, value = self._scalar(node, path)
            return bool(value) if ok else None
        self._add(node, path, f"must be true or false, got {self._kind(node)}")
        return None

    def _list(self, node: Node, path: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self._add(node, path, f"must be a list, got {self._kind(node)}")
            return None
        self._spend(node, len(node.value))
        return list(node.value)

    def _identifier(self, node: Node, path: str, what: str) -> str | None:
        """A LaunchDarkly key or tag (letters, digits, '.', '_', '-'; starts alphanumeric)."""
        value = self._string(node, path)
        if value is None:
            return None
        if not _KEY.fullmatch(value) or len(value) > MAX_KEY_LENGTH:
            self._add(
                node,
                path,
                f"{_quote(value)} is not a valid {what} (letters, digits, '.', '_' and '-', "
                f"starting with a letter or digit, at most {MAX_KEY_LENGTH} characters)",
            )
            return None
        return value

    def _tags(self, node: Node, path: str, *, non_empty: bool = False) -> tuple[str, ...] | None:
        items = self._list(node, path)
        if items is None:
            return None
        if non_empty and not items:
            self._add(node, path, "must list at least one tag")
            return None
        tags: list[str] = []
        ok = True
        for index, item in enumerate(items):
            tag = self._identifier(item, _index(path, index), "tag")
            if tag is None:
                ok = False
            elif tag not in tags:
                tags.append(tag)
        return tuple(tags) if ok else None

    # -- the document ------------------------------------------------------------------------

    def _top(self, root: Node) -> None:
        if not isinstance(root, MappingNode):
            self._add(
                root,
                "",
                "the top level must be a mapping with version, stores and targets, "
                f"got {self._kind(root)}",
            )
            return
        entries = self._mapping(root, "")
        if entries is None:
            return
        self._keys(root, entries, "", _TOP_KEYS, required=("version",))
        if "version" in entries and not self._version(entries["version"][1]):
            return
        defaults_on: bool | None = None
        defaults_tags: tuple[str, ...] = ()
        if "defaults" in entries:
            defaults_on, defaults_tags = self._defaults(entries["defaults"][1])
        if "stores" in entries:
            self._stores(entries["stores"][1], defaults_on, defaults_tags)
        if "targets" in entries:
            self.has_targets_key = True
            self._targets(entries["targets"][1])
        if "stores" not in entries and "targets" not in entries:
            self._add(root, "", "defines no stores and no targets")

    def _version(self, node: Node) -> bool:
        """Check the version; False when it names another format, which is not read further."""
        if isinstance(node, ScalarNode) and node.tag == _INT:
            ok, value = self._scalar(node, "version")
            if ok and value == FORMAT_VERSION:
                return True
            if ok:
                self._add(
                    node,
                    "version",
                    f"unsupported version {_quote(str(node.value))} "
                    f"(this ldbulk reads version {FORMAT_VERSION})",
                )
                return False
            return True
        self._add(node, "version", f"must be {FORMAT_VERSION}, got {self._kind(node)}")
        return True

    def _defaults(self, node: Node) -> tuple[bool | None, tuple[str, ...]]:
        entries = self._mapping(node, "defaults")
        if entries is None:
            return None, ()
        self._keys(node, entries, "defaults", _DEFAULTS_KEYS)
        if "allowEnv" in entries:
            self.allow_env = self._allow_env(entries["allowEnv"][1], "defaults.allowEnv")
        on = self._boolean(entries["on"][1], "defaults.on") if "on" in entries else None
        tags: tuple[str, ...] | None = ()
        if "tags" in entries:
            tags = self._tags(entries["tags"][1], "defaults.tags")
        return on, tags or ()

    def _allow_env(self, node: Node, path: str) -> frozenset[str]:
        """Variable names this file's references may use although named like credentials."""
        items = self._list(node, path)
        names: set[str] = set()
        for index, item in enumerate(items or ()):
            name = self._string(item, _index(path, index))
            if name is None:
                continue
            reason = allow_list_refusal(name)
            if reason is not None:
                self._add(item, _index(path, index), f"cannot allow {_quote(name)}: {reason}")
                continue
            names.add(name)
        return frozenset(names)

    def _stores(self, node: Node, defaults_on: bool | None, defaults_tags: tuple[str, ...]) -> None:
        entries = self._mapping(node, "stores")
        if entries is None:
            return
        if not entries:
            self._add(node, "stores", "must define at least one store")
        for name, (key_node, value_node) in entries.items():
            path = _child("stores", name)
            if not _KEY.fullmatch(name) or len(name) > 64:
                self._add(
                    key_node,
                    path,
                    "store names use letters, digits, '.', '_' and '-', start with a letter or "
                    "digit, and have at most 64 characters",
                )
                continue
            self._store(name, key_node, value_node, path, defaults_on, defaults_tags)

    def _store(
        self,
        name: str,
        key_node: Node,
        node: Node,
        path: str,
        defaults_on: bool | None,
        defaults_tags: tuple[str, ...],
    ) -> None:
        source = self._source(key_node, path)
        entries = self._mapping(node, path)
        if entries is None:
            self.stores.append(
                _PartialStore(name=name, integration=None, store=None, source=source)
            )
            return
        self._keys(node, entries, path, _STORE_KEYS, required=("integration", "config"))
        valid = True
        integration: IntegrationKey | None = None
        if "integration" in entries:
            integration = self._integration(entries["integration"][1], _child(path, "integration"))
        template: str | None = None
        if "name" in entries:
            template = self._template(entries["name"][1], _child(path, "name"))
            valid = valid and template is not None
        on = defaults_on
        if "on" in entries:
            on = self._boolean(entries["on"][1], _child(path, "on"))
            valid = valid and on is not None
        tags: tuple[str, ...] | None = ()
        if "tags" in entries:
            tags = self._tags(entries["tags"][1], _child(path, "tags"))
            valid = valid and tags is not None
        config: StoreConfig | None = None
        if "config" in entries and integration is not None:
            config = self._config(integration, entries["config"][1], _child(path, "config"))
        store = None
        if valid and config is not None:
            store = Store(
                name=name,
                config=config,
                on=bool(on),
                tags=_unique(defaults_tags + (tags or ())),
                name_template=template,
                source=source,
            )
        self.stores.append(
            _PartialStore(name=name, integration=integration, store=store, source=source)
        )

    def _integration(self, node: Node, path: str) -> IntegrationKey | None:
        value = self._string(node, path)
        if value is None:
            return None
        if value in INTEGRATION_KEYS:
            return cast(IntegrationKey, value)
        self._add(node, path, f"unknown integration {_quote(value)} (expected redis or dynamodb)")
        return None

    def _template(self, node: Node, path: str) -> str | None:
        template = self._string(node, path)
        if template is None:
            return None
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            self._add(
                node, path, f"not a valid name template: {exc} (write {{{{ or }}}} for a brace)"
            )
            return None
        ok = True
        for _, field, spec, conversion in parts:
            if field is None:
                continue
            if field not in _PLACEHOLDERS:
                shown = _quote("{" + field + "}")
                self._add(
                    node, path, f"unknown placeholder {shown} (use {{project}} and {{environment}})"
                )
                ok = False
            elif spec or conversion:
                self._add(node, path, f"placeholder {{{field}}} takes no conversion or format")
                ok = False
        return template if ok else None

    # -- store configs -----------------------------------------------------------------------

    def _config(self, integration: IntegrationKey, node: Node, path: str) -> StoreConfig | None:
        entries = self._mapping(node, path)
        if entries is None:
            return None
        cls = CONFIG_CLASSES[integration]
        fields = {api_name(field): field for field in form_fields(cls)}
        required = [key for key, field in fields.items() if is_required(field)]
        self._keys(node, entries, path, tuple(fields), required=required)
        values: dict[str, Any] = {}
        references: dict[str, str] = {}
        ok = not any(key not in entries for key in required)
        for key, field in fields.items():
            if key not in entries:
                continue
            value_node, key_path = entries[key][1], _child(path, key)
            read = self._config_value(field, value_node, key_path)
            if read is None:
                ok = False
                continue
            value, reference = read
            # Each field on its own, so every bad field of a config is reported, not only the
            # first the constructor trips on.
            values[field.name], reason = check_field(field, value)
            if reason is not None:
                if reference is not None:
                    reason = _scrub(reason, (value, values[field.name]), reference)
                self._add(value_node, key_path, reason)
                ok = False
            elif reference is not None:
                references[field.name] = reference
        if not ok:
            return None
        try:
            return cls(**values, references=references)
        except ConfigError:
            # Every field passed its own check above; this only guards against a model
            # validator that looks at several fields together.
            self._add(node, path, "invalid config")
            return None

    def _config_value(
        self, field: attrs.Attribute[Any], node: Node, path: str
    ) -> tuple[object, str | None] | None:
        """A config value and the reference it came from; None after a problem."""
        expected = value_kind(field)
        if not isinstance(node, ScalarNode):
            self._add(node, path, f"must be {expected}, got {self._kind(node)}")
            return None
        if node.tag == _STR and "${" in str(node.value):
            text = str(node.value)
            match = _REFERENCE.fullmatch(text)
            if match is None:
                if text.startswith("${") and text.endswith("}"):
                    self._add(node, path, "malformed reference (expected ${VAR} or ${file:PATH})")
                else:
                    self._add(
                        node,
                        path,
                        "a ${...} reference must be the whole value (${VAR} or ${file:PATH})",
                    )
                return None
            value = self._dereference(match, node, path)
            if value is None:
                return None
            if field.type is bool:
                if value.strip().lower() not in ("true", "false"):
                    self._add(node, path, f"the value of {text} must be {expected}")
                    return None
                return value.strip().lower() == "true", text
            return value, text
        if is_secret(field):
            # An optional secret may be left empty (a Redis without a password).
            if not is_required(field) and node.tag == _STR and node.value == "":
                return "", None
            self._add(
                node,
                path,
                f"{api_name(field)} must be a ${{VAR}} or ${{file:PATH}} reference: "
                "secrets do not belong in a manifest",
            )
            return None
        if field.type is int and node.tag == _INT:
            ok, number = self._scalar(node, path)
            return (number, None) if ok else None
        if field.type is bool:
            flag = self._boolean(node, path)
            return None if flag is None else (flag, None)
        if node.tag != _STR:
            self._add(node, path, f"must be {expected}, got {self._kind(node)}")
            return None
        return str(node.value), None

    def _dereference(self, match: re.Match[str], node: Node, path: str) -> str | None:
        variable = match.group("var")
        if variable is not None:
            try:
                self.policy.check_variable(variable, self.allow_env)
            except RefusedReference as exc:
                self._add(node, path, f"${{{variable}}} {exc}")
                return None
            value = self.env.get(variable)
            if value is None:
                self._add(node, path, f"environment variable {variable} is not set")
            return value
        written = match.group("file")
        shown = f"secret file {_quote(written)}"
        try:
            target = self.policy.locate(written, self.base_dir)
        except RefusedReference as exc:
            self._add(node, path, f"{shown} {exc}")
            return None
        if target in self._secret_files:
            if self._secret_files[target] is None:
                self._add(node, path, f"{shown} cannot be used (see above)")
            return self._secret_files[target]
        try:
            value = self.policy.read(target)
        except RefusedReference as exc:
            self._add(node, path, f"{shown} {exc}")
            value = None
        self._secret_files[target] = value
        return value

    # -- targets -----------------------------------------------------------------------------

    def _targets(self, node: Node) -> None:
        items = self._list(node, "targets")
        if items is None:
            return
        if not items:
            self._add(node, "targets", "must list at least one target")
        for index, item in enumerate(items):
            self._target(item, _index("targets", index))

    def _target(self, node: Node, path: str) -> None:
        entries = self._mapping(node, path)
        if entries is None:
            return
        self._keys(node, entries, path, _TARGET_KEYS, required=_TARGET_KEYS)
        project = None
        project_source = self._source(node, _child(path, "project"))
        if "project" in entries:
            project_node = entries["project"][1]
            project_source = self._source(project_node, _child(path, "project"))
            project = self._identifier(project_node, project_source.path, "project key")
        selector = None
        if "environments" in entries:
            selector = self._selector(entries["environments"][1], _child(path, "environments"))
        store_name = None
        store_source = self._source(node, _child(path, "store"))
        if "store" in entries:
            store_node = entries["store"][1]
            store_source = self._source(store_node, store_source.path)
            store_name = self._string(store_node, store_source.path)
        if project is None or store_name is None:
            return
        self.targets.append(
            _PendingTarget(
                project=project,
                environments=selector,
                store_name=store_name,
                store_source=store_source,
                source=self._source(node, path),
                project_source=project_source,
            )
        )

    def _selector(self, node: Node, path: str) -> EnvironmentSelector | None:
        if isinstance(node, ScalarNode) and node.tag == _STR and node.value == "*":
            return AllEnvironments(source=self._source(node, path))
        if isinstance(node, MappingNode):
            entries = self._mapping(node, path)
            if entries is None:
                return None
            self._keys(node, entries, path, ("tags",), required=("tags",))
            if "tags" not in entries:
                return None
            tags = self._tags(entries["tags"][1], _child(path, "tags"), non_empty=True)
            if tags is None:
                return None
            return TaggedEnvironments(tags=tags, source=self._source(node, path))
        if not isinstance(node, SequenceNode):
            self._add(
                node,
                path,
                'must be a list of environment keys, "*" or {tags: [...]}, '
                f"got {self._kind(node)}",
            )
            return None
        items = self._list(node, path)
        if items is None:
            return None
        if not items:
            self._add(node, path, "must list at least one environment")
            return None
        keys: list[EnvironmentKey] = []
        ok = True
        for index, item in enumerate(items):
            item_path = _index(path, index)
            if isinstance(item, ScalarNode) and item.tag == _STR and item.value == "*":
                self._add(item, item_path, '"*" stands alone: write environments: "*"')
                ok = False
                continue
            key = self._identifier(item, item_path, "environment key")
            if key is None:
                ok = False
                continue
            keys.append(EnvironmentKey(key=key, source=self._source(item, item_path)))
        return EnvironmentKeys(items=tuple(keys)) if ok else None


# -- the set --------------------------------------------------------------------------------


def _combine(documents: Sequence[_Document]) -> ManifestSet:
    """Cross-file checks (store names, store references, duplicate targets), then the result
    or one :class:`ManifestError` with every problem of every file."""
    stores: dict[str, _PartialStore] = {}
    for document in documents:
        for defined in document.stores:
            first = stores.get(defined.name)
            if first is not None:
                document.problems.add(
                    defined.source.line,
                    defined.source.path,
                    f"store {_quote(defined.name)} is also defined at {first.source}",
                )
                continue
            stores[defined.name] = defined
    seen: dict[tuple[str, str, str], Source] = {}
    selectors: list[list[TargetSelector]] = []
    for document in documents:
        built: list[TargetSelector] = []
        for pending in document.targets:
            partial = stores.get(pending.store_name)
            if partial is None:
                close = difflib.get_close_matches(pending.store_name, list(stores), n=1)
                hint = f"; did you mean {_quote(close[0])}?" if close else ""
                document.problems.add(
                    pending.store_source.line,
                    pending.store_source.path,
                    f"unknown store {_quote(pending.store_name)}{hint}",
                )
                continue
            if isinstance(pending.environments, EnvironmentKeys) and partial.integration:
                for item in pending.environments.items:
                    key = (pending.project, item.key, partial.integration)
                    first_source = seen.setdefault(key, item.source)
                    if first_source is not item.source:
                        document.problems.add(
                            item.source.line,
                            item.source.path,
                            f"duplicate target {'/'.join(key)}: also at {first_source}",
                        )
            if partial.store is not None and pending.environments is not None:
                built.append(
                    TargetSelector(
                        project=pending.project,
                        environments=pending.environments,
                        store=partial.store,
                        source=pending.source,
                        project_source=pending.project_source,
                    )
                )
        selectors.append(built)
    problems = [problem for document in documents for problem in document.problems.finished()]
    if problems:
        order = {document.file: position for position, document in enumerate(documents)}
        # Within a file by line; whole-file notes (line 0) last, after the lines they sum up.
        problems.sort(
            key=lambda problem: (order.get(problem.file, 0), problem.line or float("inf"))
        )
        raise ManifestError(problems)
    # Only worth saying when nothing else is wrong: a file that could not be read may well
    # have held the targets.
    if documents and not any(document.has_targets_key for document in documents):
        no_targets = Problem(
            file=documents[0].file, line=0, path="", message="no targets in any manifest"
        )
        raise ManifestError([no_targets])
    return ManifestSet(
        manifests=tuple(
            Manifest(
                file=document.file,
                stores=tuple(p.store for p in document.stores if p.store is not None),
                selectors=tuple(built),
            )
            for document, built in zip(documents, selectors, strict=True)
        )
    )


# -- small helpers --------------------------------------------------------------------------


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _child(path: str, key: str) -> str:
    if _PLAIN_PATH_PART.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_quote(key)}]"


def _index(path: str, index: int) -> str:
    return f"{path}[{index}]"


def _quote(value: str, limit: int = 80) -> str:
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


def _scrub(message: str, values: Iterable[object], reference: str) -> str:
    """A validator's message about a value that came from a reference, with the value replaced
    by the reference: the value may be a secret put in the wrong field."""
    for value in values:
        message = message.replace(repr(value), reference)
    if any(str(value) and str(value) in message for value in values):
        # The value shows in some other form: give up on the validator's wording.
        return f"the value of {reference} is not valid here"
    return message if reference in message else f"{message} (from {reference})"
