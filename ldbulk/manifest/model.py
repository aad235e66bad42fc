"""What a manifest set becomes: problems, stores and target selectors, each with its source."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import attrs

from ldbulk.api.models import DEFAULT_OWNERSHIP_TAG, IntegrationKey, StoreConfig
from ldbulk.errors import LdbulkError


@attrs.frozen(kw_only=True)
class Problem:
    """One thing wrong with a manifest; ``line`` is 1-based, 0 (and no ``path``): the file."""

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


@attrs.frozen(kw_only=True)
class Source:
    """Where something was written: file, 1-based line and path inside the document."""

    file: str
    line: int
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.path})"

    def problem(self, message: str) -> Problem:
        """A problem located here."""
        return Problem(file=self.file, line=self.line, path=self.path, message=message)

    def item(self, index: int, line: int) -> Source:
        """The source of this list's item at ``index``, written on ``line``."""
        return Source(file=self.file, line=line, path=index_path(self.path, index))


def index_path(path: str, index: int) -> str:
    """The path of a list's item, 0-based like jq: ``targets[2]``."""
    return f"{path}[{index}]"


@attrs.frozen(kw_only=True)
class Store:
    """A named persistent store: its built config, defaults merged in, and the name template."""

    name: str
    config: StoreConfig
    on: bool = False
    tags: tuple[str, ...] = ()
    name_template: str | None = None
    ownership_tag: str = DEFAULT_OWNERSHIP_TAG
    source: Source

    @property
    def integration_key(self) -> IntegrationKey:
        """``redis`` or ``dynamodb``."""
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
    """An explicit list of environments, used as written. Compact, as a manifest may list
    100,000: an item's own :class:`Source` is made when it is asked for."""

    keys: tuple[str, ...]  # in manifest order
    lines: tuple[int, ...]  # the line of each key
    source: Source  # the list's

    @property
    def items(self) -> tuple[EnvironmentKey, ...]:
        """Each environment with its source."""
        return tuple(
            EnvironmentKey(key=key, source=self.source_of(i)) for i, key in enumerate(self.keys)
        )

    def source_of(self, index: int) -> Source:
        """The source of the key at ``index``."""
        return self.source.item(index, self.lines[index])

    def describe(self) -> str:
        """How the selector reads in a message."""
        return "[" + ", ".join(self.keys) + "]"


@attrs.frozen(kw_only=True)
class _Every:
    """``"*"``: everything of its kind, listed through the API."""

    source: Source

    def describe(self) -> str:
        """How the selector reads in a message."""
        return '"*"'


@attrs.frozen(kw_only=True)
class _Tagged:
    """``{tags: [...]}``: what carries all of these tags."""

    tags: tuple[str, ...]
    source: Source

    def describe(self) -> str:
        """How the selector reads in a message."""
        return "{tags: [" + ", ".join(self.tags) + "]}"

    def matches(self, tags: Iterable[str]) -> bool:
        """Whether something with ``tags`` carries every tag of the selector."""
        return set(self.tags) <= set(tags)


@attrs.frozen(kw_only=True)
class AllEnvironments(_Every):
    """``"*"``: every environment of the project, listed through the API."""


@attrs.frozen(kw_only=True)
class TaggedEnvironments(_Tagged):
    """``{tags: [...]}``: the environments of the project that carry all of these tags."""


EnvironmentSelector = EnvironmentKeys | AllEnvironments | TaggedEnvironments


@attrs.frozen(kw_only=True)
class AllProjects(_Every):
    """``project: "*"``: every project of the account, listed through the API."""


@attrs.frozen(kw_only=True)
class TaggedProjects(_Tagged):
    """``projects: {tags: [...]}``: the projects of the account that carry all of these tags."""


# Projects known only once the account's projects are listed. An explicit ``projects: [a, b]``
# is no selector: it is read as one line per project, as if each were written on its own.
ProjectSelector = AllProjects | TaggedProjects


@attrs.frozen(kw_only=True)
class TargetSelector:
    """One entry of ``targets``: a project, which of its environments, and the store. A line
    over the account's projects (``projects`` set) has no ``project`` of its own ('') until
    resolution makes a line of it for each project it matches."""

    project: str
    environments: EnvironmentSelector
    # The store is shown by name: its full repr is on the manifest's store list already.
    store: Store = attrs.field(repr=lambda store: repr(store.name))
    source: Source
    project_source: Source
    projects: ProjectSelector | None = None

    def describe_projects(self) -> str:
        """The line's projects as a message says them: its selector, or its one project."""
        return self.projects.describe() if self.projects is not None else f'"{self.project}"'


@attrs.frozen(kw_only=True)
class Manifest:
    """One validated manifest file."""

    file: str
    stores: tuple[Store, ...] = ()
    selectors: tuple[TargetSelector, ...] = ()
    digest: str = attrs.field(default="", repr=False)  # sha256 of the file's text


@attrs.frozen(kw_only=True)
class ManifestSet:
    """Validated manifests, loaded together: their stores and target selectors, in file order."""

    manifests: tuple[Manifest, ...]

    @property
    def digest(self) -> str:
        """A digest of the manifests' text, in order: a run refuses another set's journal."""
        joined = ",".join(manifest.digest for manifest in self.manifests)
        return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()

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

    @property
    def target_lines(self) -> int:
        """How many entries ``targets`` holds, as written (a ``projects`` list is one)."""
        return len({selector.source for selector in self.selectors})

    @property
    def unset_references(self) -> dict[str, tuple[str, ...]]:
        """Each ``${VAR}`` whose variable was not set, with the stores that use it, sorted."""
        users: dict[str, list[str]] = {}
        for store in self.stores:
            for name in store.config.unset:
                users.setdefault(store.config.references[name], []).append(store.name)
        return {reference: tuple(users[reference]) for reference in sorted(users)}

    def store(self, name: str) -> Store:
        """The first store called ``name`` (names belong to their file); KeyError if none."""
        for store in self.stores:
            if store.name == name:
                return store
        raise KeyError(name)


@attrs.frozen(kw_only=True)
class PendingTarget:
    """A target whose store name is checked once every file of the set has been read."""

    project: str
    environments: EnvironmentSelector | None
    store_name: str
    store_source: Source
    source: Source
    project_source: Source
    projects: ProjectSelector | None = None


@attrs.frozen(kw_only=True)
class PartialStore:
    """A store as far as it could be validated: its integration, even when its config is
    invalid, to check its targets for duplicates."""

    name: str
    integration: IntegrationKey | None
    store: Store | None
    source: Source
