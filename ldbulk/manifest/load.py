"""Loading manifests: the entry points, and the checks that need every file of the set (the
stores targets name, duplicate targets) before one result or one error."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from ldbulk.manifest.model import (
    EnvironmentKeys,
    Manifest,
    ManifestError,
    ManifestSet,
    PartialStore,
    PendingTarget,
    Problem,
    TargetSelector,
)
from ldbulk.manifest.nodes import closest, quote
from ldbulk.manifest.references import ReferencePolicy, Resolver
from ldbulk.manifest.schema import Document

# (project, environment, integration) -> the list that named it first, and the key's index.
_Seen = dict[tuple[str, str, str], tuple[EnvironmentKeys, int]]


class LoadOptions(TypedDict, total=False):
    """The keyword arguments of every entry point; :func:`load_manifests` says each."""

    env: Mapping[str, str] | None
    secrets_dirs: Iterable[str | os.PathLike[str]]
    allow_env: Iterable[str]
    deny_files: Iterable[str | os.PathLike[str]]
    require_secrets: bool


def load_manifests(
    paths: Iterable[str | os.PathLike[str]], **options: Unpack[LoadOptions]
) -> ManifestSet:
    """Read and validate manifest files as one set; raise :class:`ManifestError` listing all
    problems of all files.

    ``env`` supplies ``${VAR}`` references (default: ``os.environ``); ``secrets_dirs`` are
    directories ``${file:...}`` may read besides each manifest's own; ``allow_env`` names
    variables allowed although named like another system's credential (never
    ``LD_ACCESS_TOKEN``: :class:`ConfigError`); ``deny_files`` are files no reference may read.
    With ``require_secrets=False`` (a command that only reads) an unset ``${VAR}`` is no
    problem: the config holds a placeholder that is never sent, and names it in ``unset``.
    """
    named = ((os.fspath(path), Path(path).parent, Path(path)) for path in paths)
    return _load(named, **options)


def load_manifest(path: str | os.PathLike[str], **options: Unpack[LoadOptions]) -> ManifestSet:
    """Read and validate one manifest file (see :func:`load_manifests`)."""
    return load_manifests([path], **options)


def loads_manifest(
    text: str | bytes,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    **options: Unpack[LoadOptions],
) -> ManifestSet:
    """Validate a manifest given as text; ``file`` names it in problems (a name ending in
    ``.json`` selects the JSON syntax check), ``base_dir`` stands for the manifest's directory,
    where ``${file:...}`` references are read (default: the current directory). The other
    arguments are those of :func:`load_manifests`."""
    base = Path(base_dir) if base_dir is not None else Path()
    return _load([(file, base, text)], **options)


def _load(
    sources: Iterable[tuple[str, Path, Path | str | bytes]],
    *,
    env: Mapping[str, str] | None = None,
    secrets_dirs: Iterable[str | os.PathLike[str]] = (),
    allow_env: Iterable[str] = (),
    deny_files: Iterable[str | os.PathLike[str]] = (),
    require_secrets: bool = True,
) -> ManifestSet:
    """Each source (its name, its directory, and its path or text) checked, then the set."""
    env = os.environ if env is None else env
    policy = ReferencePolicy.build(
        allow_env=allow_env, secrets_dirs=secrets_dirs, deny_files=deny_files
    )
    documents: list[Document] = []
    for file, base_dir, content in sources:
        document = Document(file, Resolver(policy, env, base_dir, require_values=require_secrets))
        document.check(content)
        documents.append(document)
    return _combine(documents)


def _combine(documents: Sequence[Document]) -> ManifestSet:
    """Cross-file checks, then the result or one :class:`ManifestError` with every problem."""
    stores = _StoreIndex(documents)
    seen: _Seen = {}
    selectors = [_selectors(document, stores, seen) for document in documents]
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
        file = documents[0].file
        raise ManifestError(
            [Problem(file=file, line=0, path="", message="no targets in any manifest")]
        )
    manifests = (
        Manifest(
            file=document.file,
            stores=tuple(p.store for p in document.stores if p.store is not None),
            selectors=tuple(built),
            digest=document.digest,
        )
        for document, built in zip(documents, selectors, strict=True)
    )
    return ManifestSet(manifests=tuple(manifests))


class _StoreIndex:
    """The stores of a set of manifests. A store's name is its file's: a target names a store
    of its own file, or, when its file defines none of that name, the one store of that name
    in the other files."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self._by_file: dict[str, dict[str, PartialStore]] = {}
        self._by_name: dict[str, list[PartialStore]] = {}
        for document in documents:
            own = self._by_file.setdefault(document.file, {})
            for defined in document.stores:
                # Within one file, a name is one YAML key: the schema reported any repeat.
                own.setdefault(defined.name, defined)
                self._by_name.setdefault(defined.name, []).append(defined)

    def find(self, document: Document, name: str) -> PartialStore | str:
        """The store ``name`` means in ``document``, or why there is none."""
        own = self._by_file.get(document.file, {}).get(name)
        others = self._by_name.get(name, [])
        if own is not None or len(others) == 1:
            return own or others[0]
        if others:
            places = ", ".join(str(store.source) for store in others)
            return (
                f"store {quote(name)} is defined in several other files ({places}): a target "
                "uses its own file's store of a name, or the one store of that name elsewhere; "
                "define it in this file or give the stores distinct names"
            )
        close = closest(name, self._by_name)
        return f"unknown store {quote(name)}" + (f"; did you mean {quote(close)}?" if close else "")


def _selectors(document: Document, stores: _StoreIndex, seen: _Seen) -> list[TargetSelector]:
    """A document's targets with their stores; unknown stores and duplicates are reported."""
    built: list[TargetSelector] = []
    for pending in document.targets:
        partial = stores.find(document, pending.store_name)
        if isinstance(partial, str):
            document.problems.add(pending.store_source.line, pending.store_source.path, partial)
            continue
        _check_duplicates(document, pending, partial, seen)
        if partial.store is not None and pending.environments is not None:
            built.append(
                TargetSelector(
                    project=pending.project,
                    environments=pending.environments,
                    store=partial.store,
                    source=pending.source,
                    project_source=pending.project_source,
                    projects=pending.projects,
                )
            )
    return built


def _check_duplicates(
    document: Document, pending: PendingTarget, partial: PartialStore, seen: _Seen
) -> None:
    """Report each environment of an explicit list already a target of the same integration.
    Wildcards and tag selectors are checked once resolved (:mod:`ldbulk.engine.resolve`)."""
    listed = pending.environments
    if not isinstance(listed, EnvironmentKeys) or not partial.integration or pending.projects:
        return
    for index, environment in enumerate(listed.keys):
        key = (pending.project, environment, partial.integration)
        # The list's source stands in for its items until one is a duplicate: sources made
        # for each of 100,000 items would be held until every file is read.
        earlier, at = seen.setdefault(key, (listed, index))
        if earlier is not listed or at != index:
            source = listed.source_of(index)
            message = f"duplicate target {'/'.join(key)}: also at {earlier.source_of(at)}"
            document.problems.add(source.line, source.path, message)
