"""Manifests, from YAML or JSON files to validated stores and target selectors; no network.

The README's "Manifests" section describes the format. Every problem of every file is reported
at once, as ``file:line: path: message``. The modules, each importing only those above it:
:mod:`~ldbulk.manifest.model` (results and problems), :mod:`~ldbulk.manifest.nodes` (bounded
YAML loading), :mod:`~ldbulk.manifest.references` (what references may name),
:mod:`~ldbulk.manifest.jsonschema` (the schema), :mod:`~ldbulk.manifest.validate` (its errors
as problems), :mod:`~ldbulk.manifest.config` (a store's config), :mod:`~ldbulk.manifest.schema`
(one file) and :mod:`~ldbulk.manifest.load` (the set).
"""

from ldbulk.manifest.jsonschema import FORMAT_VERSION
from ldbulk.manifest.load import load_manifest, load_manifests, loads_manifest
from ldbulk.manifest.model import (
    AllEnvironments,
    AllProjects,
    EnvironmentKeys,
    ManifestError,
    ManifestSet,
    Problem,
    Source,
    Store,
    TaggedEnvironments,
    TaggedProjects,
    TargetSelector,
)
from ldbulk.manifest.nodes import MAX_PROBLEMS_PER_FILE
from ldbulk.manifest.references import MAX_SECRET_FILE_BYTES, credential_pattern

__all__ = [
    "FORMAT_VERSION",
    "MAX_PROBLEMS_PER_FILE",
    "MAX_SECRET_FILE_BYTES",
    "AllEnvironments",
    "AllProjects",
    "EnvironmentKeys",
    "ManifestError",
    "ManifestSet",
    "Problem",
    "Source",
    "Store",
    "TaggedEnvironments",
    "TaggedProjects",
    "TargetSelector",
    "credential_pattern",
    "load_manifest",
    "load_manifests",
    "loads_manifest",
]
