"""Loading manifests: the entry points, and the checks that need every file of the set (store
names defined twice or unknown, duplicate targets) before one result or one error."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ldbulk.manifest.model import (
    EnvironmentKeys,
    Manifest,
    ManifestError,
    ManifestSet,
    PartialStore,
    PendingTarget,
    Problem,
    Source,
    TargetSelector,
)
from ldbulk.manifest.nodes import quote, read_text
from ldbulk.manifest.references import ReferencePolicy
from ldbulk.manifest.schema import Document


def load_manifests(
    paths: Iterable[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    secrets_dirs: Iterable[str | os.PathLike[str]] = (),
    allow_env: Iterable[str] = (),
    deny_files: Iterable[str | os.PathLike[str]] = (),
    require_secrets: bool = True,
) -> ManifestSet:
    """Read and validate manifest files as one set; raise :class:`ManifestError` listing all
    problems of all files.

    ``env`` supplies ``${VAR}`` references (default: ``os.environ``). What references may name
    (see :mod:`ldbulk.manifest.references`): ``secrets_dirs`` are directories ``${file:...}``
    may read besides each manifest's own; ``allow_env`` names variables allowed although named
    like another system's credential (never ``LD_ACCESS_TOKEN``: :class:`ConfigError`);
    ``deny_files`` are files no reference may read, such as the access token's file.

    ``require_secrets=False`` is for what only reads (a plan, a status): a ``${VAR}`` whose
    variable is not set is then no problem, as long as the rules allow it; the config holds a
    placeholder in that field and names it in ``unset``, and it can never be sent
    (:meth:`~ldbulk.api.models.RedisConfig.to_api` refuses it, and so does
    :func:`ldbulk.apply`). :attr:`ManifestSet.unset_references` lists them.
    """
    env = os.environ if env is None else env
    policy = ReferencePolicy.build(
        allow_env=allow_env, secrets_dirs=secrets_dirs, deny_files=deny_files
    )
    documents: list[Document] = []
    for path in paths:
        name = os.fspath(path)
        document = Document(
            name, Path(name).parent, env, policy, require_secrets=require_secrets
        )
        text = read_text(Path(name), document.problems)
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
    require_secrets: bool = True,
) -> ManifestSet:
    """Read and validate one manifest file (see :func:`load_manifests`)."""
    return load_manifests(
        [path],
        env=env,
        secrets_dirs=secrets_dirs,
        allow_env=allow_env,
        deny_files=deny_files,
        require_secrets=require_secrets,
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
    require_secrets: bool = True,
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
    document = Document(file, base, env, policy, require_secrets=require_secrets)
    checked = read_text(text, document.problems)
    if checked is not None:
        document.check(checked)
    return _combine([document])


def _combine(documents: Sequence[Document]) -> ManifestSet:
    """Cross-file checks (store names, store references, duplicate targets), then the result
    or one :class:`ManifestError` with every problem of every file."""
    stores = _stores_by_name(documents)
    seen: dict[tuple[str, str, str], Source] = {}
    selectors = [_selectors(document, stores, seen) for document in documents]
    _raise_problems(documents)
    return ManifestSet(
        manifests=tuple(
            Manifest(
                file=document.file,
                stores=tuple(p.store for p in document.stores if p.store is not None),
                selectors=tuple(built),
                digest=document.digest,
            )
            for document, built in zip(documents, selectors, strict=True)
        )
    )


def _stores_by_name(documents: Sequence[Document]) -> dict[str, PartialStore]:
    """Every store of the set by name, the first of a name kept and any other reported."""
    stores: dict[str, PartialStore] = {}
    for document in documents:
        for defined in document.stores:
            first = stores.get(defined.name)
            if first is not None:
                document.problems.add(
                    defined.source.line,
                    defined.source.path,
                    f"store {quote(defined.name)} is also defined at {first.source}",
                )
                continue
            stores[defined.name] = defined
    return stores


def _selectors(
    document: Document,
    stores: Mapping[str, PartialStore],
    seen: dict[tuple[str, str, str], Source],
) -> list[TargetSelector]:
    """A document's targets with their stores; unknown stores and targets already ``seen``
    (in this file or an earlier one) are reported."""
    built: list[TargetSelector] = []
    for pending in document.targets:
        partial = stores.get(pending.store_name)
        if partial is None:
            close = difflib.get_close_matches(pending.store_name, list(stores), n=1)
            hint = f"; did you mean {quote(close[0])}?" if close else ""
            document.problems.add(
                pending.store_source.line,
                pending.store_source.path,
                f"unknown store {quote(pending.store_name)}{hint}",
            )
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
                )
            )
    return built


def _check_duplicates(
    document: Document,
    pending: PendingTarget,
    partial: PartialStore,
    seen: dict[tuple[str, str, str], Source],
) -> None:
    """Report each environment of an explicit list that was a target of the same integration
    key before. Wildcards and tag selectors are checked once resolved
    (:mod:`ldbulk.engine.resolve`)."""
    if not isinstance(pending.environments, EnvironmentKeys) or not partial.integration:
        return
    for item in pending.environments.items:
        key = (pending.project, item.key, partial.integration)
        first_source = seen.setdefault(key, item.source)
        if first_source is not item.source:
            document.problems.add(
                item.source.line,
                item.source.path,
                f"duplicate target {'/'.join(key)}: also at {first_source}",
            )


def _raise_problems(documents: Sequence[Document]) -> None:
    """Raise one :class:`ManifestError` with every problem of every file, if there is one."""
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
