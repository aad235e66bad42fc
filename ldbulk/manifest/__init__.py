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
      - {projects: [billing, search], environments: [production], store: redis-east}
      - {projects: {tags: [edge]}, environments: "*", store: redis-east}

Decisions worth knowing (the README's "Manifests" section says the rest):

- **Everything is checked before anything is returned**, and every problem is reported at once
  as ``file:line: path: message`` (``manifests/prod.yaml:14: targets[2].store: unknown store
  "redis-eu"``); paths use 0-based list indices, like jq. The shape is checked against the
  manifest's JSON Schema (:mod:`~ldbulk.manifest.jsonschema`, the file editors use too), each
  error worded as ldbulk words it; by hand only what a schema cannot say.
- **Secrets by reference only**: ``password`` (redis) and ``externalId`` (dynamodb) must be a
  ``${VAR}`` or ``${file:PATH}`` reference (or, for a Redis without one, ``password: ""``),
  and a reference is always the whole value. A manifest's author is not trusted with the job's
  credentials: what a reference may name is limited (:mod:`~ldbulk.manifest.references`), and
  a manifest's own ``defaults.allowEnv`` may not name a credential-shaped variable (trust in a
  credential stays with the caller). A config shows a value that came from a reference as its
  reference, and no message holds a secret.
- **Several manifests form one set**: a store's name belongs to its file, ``defaults`` apply to
  their file's stores, the same (project, environment, integration) twice is an error, also
  across files (a line over the account's projects, ``project: "*"`` or ``projects: {tags:
  [...]}``, is checked once its projects are listed), and the set must have at least one
  target.
- **Strict types, YAML 1.1 as PyYAML's SafeLoader reads it**: no arbitrary tags, ``project:
  2024`` is an integer (quote it), ``on:`` is the key "on", anchors, aliases and ``<<`` work;
  JSON is read as YAML, after a JSON syntax check. **Hostile input** ends as problems, never a
  traceback: files are capped in size, nesting depth and work done expanding aliases, and
  values shown in messages are truncated and escaped.

The package, each module importing only those above it: :mod:`~ldbulk.manifest.model` (the
results and problems), :mod:`~ldbulk.manifest.nodes` (bounded YAML loading, its values and
their lines), :mod:`~ldbulk.manifest.references` (what references may name, and resolving
them), :mod:`~ldbulk.manifest.jsonschema` (the schema), :mod:`~ldbulk.manifest.validate` (its
errors as problems), :mod:`~ldbulk.manifest.config` (a store's config),
:mod:`~ldbulk.manifest.schema` (one file) and :mod:`~ldbulk.manifest.load` (the set).
"""

from ldbulk.api.models import MAX_KEY_LENGTH
from ldbulk.manifest.jsonschema import FORMAT_VERSION
from ldbulk.manifest.load import load_manifest, load_manifests, loads_manifest
from ldbulk.manifest.model import (
    AllEnvironments,
    AllProjects,
    EnvironmentKey,
    EnvironmentKeys,
    EnvironmentSelector,
    Manifest,
    ManifestError,
    ManifestSet,
    Problem,
    ProjectSelector,
    Source,
    Store,
    TaggedEnvironments,
    TaggedProjects,
    TargetSelector,
)
from ldbulk.manifest.nodes import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_PROBLEMS_PER_FILE,
    MAX_WORK,
)
from ldbulk.manifest.references import (
    CREDENTIAL_VARIABLES,
    MAX_SECRET_FILE_BYTES,
    ReferencePolicy,
    RefusedReference,
    allow_list_refusal,
    credential_pattern,
)

__all__ = [
    "CREDENTIAL_VARIABLES",
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_KEY_LENGTH",
    "MAX_PROBLEMS_PER_FILE",
    "MAX_SECRET_FILE_BYTES",
    "MAX_WORK",
    "AllEnvironments",
    "AllProjects",
    "EnvironmentKey",
    "EnvironmentKeys",
    "EnvironmentSelector",
    "Manifest",
    "ManifestError",
    "ManifestSet",
    "Problem",
    "ProjectSelector",
    "ReferencePolicy",
    "RefusedReference",
    "Source",
    "Store",
    "TaggedEnvironments",
    "TaggedProjects",
    "TargetSelector",
    "allow_list_refusal",
    "credential_pattern",
    "load_manifest",
    "load_manifests",
    "loads_manifest",
]
