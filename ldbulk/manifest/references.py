"""What a manifest's ``${VAR}`` and ``${file:PATH}`` references may name, and resolving them.
A manifest's author is not trusted with the job's credentials: a reference's value is sent to
LaunchDarkly, which shows most fields in clear (the rules: the README's "Security" section)."""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import attrs

from ldbulk.errors import ConfigError
from ldbulk.http.client import TOKEN_ENV
from ldbulk.manifest.nodes import quote

MAX_SECRET_FILE_BYTES: Final = 64 * 1024

# Names of credentials other systems put in a job's environment (GITHUB_TOKEN, AWS_SESSION_TOKEN,
# AZURE_CLIENT_SECRET, GitLab's CI_JOB_JWT, LaunchDarkly's SDK keys, GitHub Actions' runtime),
# matched without regard to case. A store's own secret is not among them: LD_REDIS_PASSWORD is
# the normal use. A run that really needs one allows it by name.
CREDENTIAL_VARIABLES: Final = (
    "*_TOKEN", "*_ACCESS_KEY_ID", "*_SECRET_ACCESS_KEY", "*_API_KEY", "*_SECRET_KEY",
    "*_PRIVATE_KEY", "*_CLIENT_SECRET", "*_SDK_KEY", "*_JWT", "ACTIONS_*",
)  # fmt: skip

# What makes a name credential-shaped for a manifest's own allow-list (without regard to case):
# a word credentials are named with, or the prefix of a CI system, a cloud or LaunchDarkly.
# Broader than CREDENTIAL_VARIABLES on purpose: a manifest can never allow a name the
# references refuse, and a false alarm costs only moving the name to --allow-env.
CREDENTIAL_WORDS: Final = (
    "TOKEN", "SECRET", "PASS", "KEY", "CREDENTIAL", "AUTH", "JWT", "PRIVATE", "SESSION",
    "COOKIE", "CERT", "SIGNING",
)  # fmt: skip
CREDENTIAL_PREFIXES: Final = (
    "GITHUB_", "ACTIONS_", "RUNNER_", "GITLAB_", "CI_", "BUILDKITE_", "CIRCLE_", "JENKINS_",
    "AWS_", "AZURE_", "ARM_", "GOOGLE_", "GCP_", "GCLOUD_", "CLOUDSDK_", "LD_",
    "LAUNCHDARKLY_", "VAULT_", "NPM_", "DOCKER_", "SSH_",
)  # fmt: skip

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(rf"\$\{{(?:file:(?P<file>[^}}]+)|(?P<var>{_VARIABLE_NAME.pattern}))\}}")


class RefusedReference(Exception):
    """A reference that may not be used or cannot be read; the message, never holding a value,
    follows the reference as written (``${GITHUB_TOKEN} is named like ...``)."""


def allow_list_refusal(name: str) -> str | None:
    """Why ``name`` cannot be put on an allow-list, or None when it can."""
    if not _VARIABLE_NAME.fullmatch(name):
        return "it is not an environment variable name"
    if name.upper() == TOKEN_ENV:
        return "it is ldbulk's own access token"
    return None


def manifest_allow_refusal(name: str) -> str | None:
    """Why a manifest's ``defaults.allowEnv`` cannot name ``name``, or None: those of
    :func:`allow_list_refusal`, and any credential-shaped name (only ``--allow-env`` may)."""
    reason = allow_list_refusal(name)
    if reason is not None:
        return reason
    upper = name.upper()
    shape = credential_pattern(name)
    shape = shape or next((word for word in CREDENTIAL_WORDS if word in upper), None)
    shape = shape or next((p + "*" for p in CREDENTIAL_PREFIXES if upper.startswith(p)), None)
    if shape is None:
        return None
    return (
        f"it is named like a credential ({shape}), and a manifest may not allow one for "
        f"itself; the job that runs it can, with --allow-env {name}"
    )


def credential_pattern(name: str) -> str | None:
    """The pattern of :data:`CREDENTIAL_VARIABLES` that ``name`` matches, or None."""
    upper = name.upper()
    return next((p for p in CREDENTIAL_VARIABLES if fnmatch.fnmatchcase(upper, p)), None)


@attrs.frozen(kw_only=True)
class ReferencePolicy:
    """What the references of one run may name: the variables allowed despite their names, the
    secrets directories besides each manifest's own, and files no reference may read."""

    allow_env: frozenset[str] = frozenset()
    secrets_dirs: tuple[Path, ...] = ()
    deny_files: tuple[Path, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        allow_env: Iterable[str] = (),
        secrets_dirs: Iterable[str | os.PathLike[str]] = (),
        deny_files: Iterable[str | os.PathLike[str]] = (),
    ) -> ReferencePolicy:
        """A policy from a caller's arguments, paths resolved; :class:`ConfigError` for a name
        that cannot be allowed (``LD_ACCESS_TOKEN``, or not a variable name)."""
        if isinstance(allow_env, str):
            raise ConfigError("allow_env: expected a collection of names, got one string")
        names = frozenset(allow_env)
        for name in sorted(names):
            reason = allow_list_refusal(name)
            if reason is not None:
                raise ConfigError(f"cannot allow {name!r}: {reason}")
        try:
            return cls(
                allow_env=names,
                secrets_dirs=tuple(Path(path).expanduser().resolve() for path in secrets_dirs),
                deny_files=tuple(Path(path).expanduser().resolve() for path in deny_files),
            )
        except (OSError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot resolve a secrets directory or denied file: {type(exc).__name__}"
            ) from None

    def check_variable(self, name: str, allowed_here: frozenset[str] = frozenset()) -> None:
        """Raise :class:`RefusedReference` when ``${name}`` may not be used; ``allowed_here``,
        the manifest's own allow-list, holds no credential-shaped name."""
        if name.upper() == TOKEN_ENV:
            raise RefusedReference("is ldbulk's own access token: no manifest may use it")
        pattern = credential_pattern(name)
        if pattern is not None and name not in self.allow_env | allowed_here:
            raise RefusedReference(
                f"is named like another system's credential ({pattern}): refused; "
                f"the job that runs the manifest can allow it with --allow-env {name} if the "
                "store needs it"
            )

    def locate(self, written: str, base_dir: Path) -> Path:
        """The resolved file ``${file:written}`` names (relative to ``base_dir``, the manifest's
        directory); :class:`RefusedReference` when it may not be read."""
        try:
            target = base_dir / Path(written).expanduser()  # an absolute path stays itself
        except RuntimeError:
            raise RefusedReference("cannot be used: ~ cannot be expanded here") from None
        try:
            resolved = target.resolve()
            roots = (base_dir.resolve(), *self.secrets_dirs)
        except (OSError, RuntimeError, ValueError):
            # A symlink loop, or a NUL character (YAML lets "\0" through).
            raise RefusedReference("cannot be resolved to a file") from None
        if not any(resolved.is_relative_to(root) for root in roots):
            raise RefusedReference(
                "is outside the manifest's directory (allow a directory with --secrets-dir)"
            )
        # A CI checkout keeps the job's git credentials in .git/config.
        if ".git" in resolved.parts:
            raise RefusedReference("is inside a .git directory, where git keeps credentials")
        if resolved in self.deny_files:
            raise RefusedReference("is the access token file")
        return resolved

    def read(self, path: Path) -> str:
        """The text of a file :meth:`locate` returned, one trailing newline stripped."""
        # O_NOFOLLOW: the path was resolved, so a symlink there now was put there since.
        # O_NONBLOCK: opening a FIFO must not hang the run (it is refused below).
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
            try:
                # Checked on the open file, not the path: what is read is what was checked.
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise RefusedReference("is not a regular file")
                # The same file under another name (a hard link, a bind mount) is still the token.
                if any(_same_file(info, denied) for denied in self.deny_files):
                    raise RefusedReference("is the access token file")
                with os.fdopen(fd, "rb", closefd=False) as handle:
                    data = handle.read(MAX_SECRET_FILE_BYTES + 1)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RefusedReference("changed while it was read") from None
            reason = exc.strerror or type(exc).__name__
            raise RefusedReference(f"cannot be read: {reason}") from None
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise RefusedReference(f"is larger than {MAX_SECRET_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RefusedReference("is not UTF-8 text") from None
        return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text


def is_reference(text: str) -> bool:
    """Whether a value is meant as a reference, and so must be exactly one: it has ``${``."""
    return "${" in text


class UnusableReference(Exception):
    """A reference that gives no value; the message, never holding a value, is the whole
    problem (``environment variable X is not set``)."""


class UnsetVariable(UnusableReference):
    """An allowed ``${VAR}`` whose variable is not set, for a command that only reads."""


@attrs.define
class Resolver:
    """The references of one manifest file: the run's policy and environment, the file's
    directory and its own allow-list (``defaults.allowEnv``). Each file is read once."""

    policy: ReferencePolicy
    env: Mapping[str, str]
    base_dir: Path
    allow_env: frozenset[str] = frozenset()
    # False for a command that only reads: an unset variable is then UnsetVariable, which the
    # loader turns into a placeholder the config never sends.
    require_values: bool = True
    # Resolved path -> its text, or None once a problem about it was reported.
    _files: dict[Path, str | None] = attrs.field(factory=dict, init=False)

    def resolve(self, text: str) -> str:
        """The value of ``text``, which must be exactly one ``${VAR}`` or ``${file:PATH}``
        reference; :class:`UnusableReference` when it is not, or gives no value."""
        match = _REFERENCE.fullmatch(text)
        if match is None:
            if text.startswith("${") and text.endswith("}"):
                raise UnusableReference("malformed reference (expected ${VAR} or ${file:PATH})")
            raise UnusableReference(
                "a ${...} reference must be the whole value (${VAR} or ${file:PATH})"
            )
        if match["var"] is not None:
            return self._variable(match["var"])
        return self._file(match["file"])

    def _variable(self, name: str) -> str:
        try:
            self.policy.check_variable(name, self.allow_env)
        except RefusedReference as exc:
            raise UnusableReference(f"${{{name}}} {exc}") from None
        value = self.env.get(name)
        if value is None:
            unset = UnusableReference if self.require_values else UnsetVariable
            raise unset(f"environment variable {name} is not set")
        return value

    def _file(self, written: str) -> str:
        shown = f"secret file {quote(written)}"
        try:
            target = self.policy.locate(written, self.base_dir)
            if target not in self._files:
                self._files[target] = None  # what stays when it cannot be read
                self._files[target] = self.policy.read(target)
        except RefusedReference as exc:
            raise UnusableReference(f"{shown} {exc}") from None
        value = self._files[target]
        if value is None:
            # Said once, where the file was first named.
            raise UnusableReference(f"{shown} cannot be used (see above)")
        return value


def _same_file(info: os.stat_result, path: Path) -> bool:
    try:
        return os.path.samestat(info, os.stat(path))
    except OSError:
        return False
