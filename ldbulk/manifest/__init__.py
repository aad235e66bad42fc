"""Manifests, from YAML or JSON files to validated stores and target selectors; no network.

The README's "Manifests" section describes the format. Every problem of every file is reported
at once, as ``file:line: path: message``. The modules, each importing only those above it:
:mod:`~ldbulk.manifest.model` (results and problems), :mod:`~ldbulk.manifest.nodes` (bounded
YAML loading), :mod:`~ldbulk.manifest.references` (what references may name),
:mod:`~ldbulk.manifest.jsonschema` (the schema), :mod:`~ldbulk.manifest.validate` (its errors
as problems), :mod:`~ldbulk.manifest.config` (a store's config), :mod:`~ldbulk.manifest.schema`
(one file) and :mod:`~ldbulk.manifest.load` (the set).
"""

# Each name imported as itself is re-exported (mypy --strict exports no other import).
from ldbulk.manifest.jsonschema import FORMAT_VERSION as FORMAT_VERSION
from ldbulk.manifest.load import load_manifest as load_manifest
from ldbulk.manifest.load import load_manifests as load_manifests
from ldbulk.manifest.load import loads_manifest as loads_manifest
from ldbulk.manifest.model import AllEnvironments as AllEnvironments
from ldbulk.manifest.model import AllProjects as AllProjects
from ldbulk.manifest.model import EnvironmentKeys as EnvironmentKeys
from ldbulk.manifest.model import ManifestError as ManifestError
from ldbulk.manifest.model import ManifestSet as ManifestSet
from ldbulk.manifest.model import Problem as Problem
from ldbulk.manifest.model import Source as Source
from ldbulk.manifest.model import Store as Store
from ldbulk.manifest.model import TaggedEnvironments as TaggedEnvironments
from ldbulk.manifest.model import TaggedProjects as TaggedProjects
from ldbulk.manifest.model import TargetSelector as TargetSelector
from ldbulk.manifest.nodes import MAX_PROBLEMS_PER_FILE as MAX_PROBLEMS_PER_FILE
from ldbulk.manifest.references import MAX_SECRET_FILE_BYTES as MAX_SECRET_FILE_BYTES
from ldbulk.manifest.references import credential_pattern as credential_pattern
