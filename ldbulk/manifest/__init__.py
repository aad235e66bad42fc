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
  :mod:`ldbulk.manifest.references`): ``${LD_ACCESS_TOKEN}`` and the token file are always
  refused, variables named like other systems' credentials (``*_TOKEN``, ``*_API_KEY`` ...)
  unless the run (``allow_env``) or ``defaults.allowEnv`` names them, and files outside the
  manifest's directory unless under one of the run's ``secrets_dirs``. A config remembers which
  of its fields came from a reference, and shows the reference instead of the value.
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

The package, each module importing only those above it: :mod:`~ldbulk.manifest.model` (the
results and problems), :mod:`~ldbulk.manifest.nodes` (bounded YAML loading and reading nodes),
:mod:`~ldbulk.manifest.references` (what references may name, and resolving them),
:mod:`~ldbulk.manifest.config` (a store's config), :mod:`~ldbulk.manifest.targets`,
:mod:`~ldbulk.manifest.schema` (one file) and :mod:`~ldbulk.manifest.load` (the set).
"""

from ldbulk.manifest.jsonschema import FORMAT_VERSION
from ldbulk.manifest.load import load_manifest, load_manifests, loads_manifest
from ldbulk.manifest.model import (
    AllEnvironments,
    EnvironmentKey,
    EnvironmentKeys,
    EnvironmentSelector,
    Manifest,
    ManifestError,
    ManifestSet,
    Problem,
    Source,
    Store,
    TaggedEnvironments,
    TargetSelector,
)
from ldbulk.manifest.nodes import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_KEY_LENGTH,
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
    "EnvironmentKey",
    "EnvironmentKeys",
    "EnvironmentSelector",
    "Manifest",
    "ManifestError",
    "ManifestSet",
    "Problem",
    "ReferencePolicy",
    "RefusedReference",
    "Source",
    "Store",
    "TaggedEnvironments",
    "TargetSelector",
    "allow_list_refusal",
    "credential_pattern",
    "load_manifest",
    "load_manifests",
    "loads_manifest",
]
