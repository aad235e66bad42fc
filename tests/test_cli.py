"""The command line end to end against a sandbox subprocess: each command through click's
runner in this process (:func:`ldbulk`), or as a ``python -m ldbulk`` process where the
process is what is tested (signals, exits, kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner
from conftest import SandboxProcess, sandbox_process_fixtures, start_sandbox

from ldbulk.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "manifests" / "example.yaml"
SECRETS = {
    "LD_REDIS_PASSWORD": "redis-pw-7c1e9f",
    "LD_DYNAMODB_EXTERNAL_ID": "ext-id-52ab90",
}


server, sandbox = sandbox_process_fixtures()


def ldbulk(
    *args: str,
    sandbox: SandboxProcess | None = None,
    env: dict[str, str] | None = None,
    secrets: bool = True,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``ldbulk ARGS`` with the environment a fresh process would have (``LD_`` variables only
    as given): in this process, through click's runner, or with ``process`` (or from a test
    whose event loop is running) as a ``python -m ldbulk`` process of its own. In process the
    command costs what it does, not a second of Python's start-up and imports; what only a
    process shows (its signals, its exit, its collector) is tested with ``process``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LD_")}
    if secrets:
        environment |= SECRETS
    if sandbox is not None:
        environment |= {"LD_ACCESS_TOKEN": sandbox.token, "LD_BASE_URI": sandbox.url}
    environment |= env or {}
    if not process and not _loop_running():
        return _in_process(list(args), environment)
    return subprocess.run(
        [sys.executable, "-m", "ldbulk", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# The loggers a command configures for its process: put back after each command in this one.
_COMMAND_LOGGERS = ("ldbulk", "ldbulk.start", "ldbulk.summary")


# Warnings a Python process ignores unless asked (its default filters).
_IGNORED_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                       ResourceWarning)


class _CurrentStderr(logging.Handler):
    """Python's last-resort handler of a process: a record's message on the stderr of the
    moment (click's runner's, during a command)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    if not issubclass(category, _IGNORED_BY_DEFAULT):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _printed_as_by_a_process() -> Iterator[None]:
    """What a process of its own would print on its stderr besides ldbulk's logs, printed on
    the stderr of the moment, so that a test of a clean stderr still sees it: other loggers'
    warnings (asyncio's "Task exception was never retrieved"), warnings the default filters
    show, and exceptions ignored in finalizers."""
    handler = _CurrentStderr(logging.WARNING)
    logging.getLogger().addHandler(handler)
    unraisable, sys.unraisablehook = sys.unraisablehook, sys.__unraisablehook__
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            yield
    finally:
        sys.unraisablehook = unraisable
        logging.getLogger().removeHandler(handler)


def _in_process(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command run by click's runner, its result as a finished process's: an exception
    that escaped it is printed to its stderr, as Python would print it."""
    loggers = [logging.getLogger(name) for name in _COMMAND_LOGGERS]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    changes = {key: None for key in os.environ if key not in environment} | environment
    try:
        with _printed_as_by_a_process():
            result = CliRunner().invoke(main, args, env=changes)
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["ldbulk", *args], result.exit_code, result.stdout, stderr)


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_accepts_the_example() -> None:
    result = ldbulk("validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_validate_lists_every_problem_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "stores:\n"
        "  r:\n"
        "    integration: redis\n"
        "    config:\n"
        "      host: h\n"
        "      port: 70000\n"
        "targets:\n"
        "  - project: web\n"
        "    environments: [prod]\n"
        "    store: redis-eu\n"
    )
    result = ldbulk("validate", str(bad))
    assert result.returncode == 2
    assert_clean_failure(result)
    assert f"{bad}:7: stores.r.config.port:" in result.stderr
    assert f'{bad}:11: targets[0].store: unknown store "redis-eu"' in result.stderr
    assert "2 problems; nothing was sent." in result.stderr


@pytest.mark.parametrize(
    "content",
    ["", "version: [", "- just\n- a list\n", "\x00\x01binary", "version: 2\n"],
    ids=["empty", "syntax", "list", "binary", "version"],
)
def test_bad_manifests_exit_2_without_a_traceback(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = ldbulk("validate", str(bad))
    assert result.returncode == 2
    assert_clean_failure(result)
    assert str(bad) in result.stderr


def test_a_missing_manifest_file_exits_2(tmp_path: Path) -> None:
    result = ldbulk("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert_clean_failure(result)
    assert "nope.yaml" in result.stderr


def test_a_missing_secret_is_named_and_nothing_is_sent(sandbox: SandboxProcess) -> None:
    result = ldbulk("apply", str(EXAMPLE), sandbox=sandbox, secrets=False)
    assert result.returncode == 2
    assert "LD_REDIS_PASSWORD" in result.stderr
    assert sandbox.get("/_sandbox/stats")["total"] == 0


def test_apply_creates_then_a_rerun_finds_everything(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    report, junit, markdown = tmp_path / "r.json", tmp_path / "j.xml", tmp_path / "m.md"
    first = ldbulk(
        "apply",
        str(EXAMPLE),
        "--report",
        str(report),
        "--junit",
        str(junit),
        "--markdown",
        str(markdown),
        sandbox=sandbox,
    )
    assert first.returncode == 0, first.stderr
    data = json.loads(report.read_text())
    assert data["version"] == 2
    assert data["summary"]["total"] == data["summary"]["created"] == 9
    assert set(data["stats"]) == {"requests", "throttled", "retries", "elapsed_s", "paused_s"}
    assert set(data["results"][0]) == {
        "project",
        "environment",
        "integration",
        "outcome",
        "status",
        "integration_id",
        "attempts",
        "error",
        "elapsed_s",
        "waited_s",
        "changed",
        "version",
        "source",
        "store",
    }
    # For an archive: when, which ldbulk, which API (never the token), and each row's origin.
    assert data["started_at"] <= data["finished_at"] and data["ldbulk"]
    assert data["base_url"] == sandbox.url
    assert data["results"][0]["source"].startswith(f"{EXAMPLE}:")
    assert data["results"][0]["store"] == "redis-demo"
    assert junit.read_text().count("<testcase") == 9
    assert "Every target is provisioned." in markdown.read_text()

    second = ldbulk("apply", str(EXAMPLE), "--report", str(report), sandbox=sandbox)
    assert second.returncode == 0, second.stderr
    data = json.loads(report.read_text())
    assert data["summary"]["unchanged"] == 9
    # The list, the environments of two wildcards, and one read by id per integration.
    assert data["stats"]["requests"] == 3 + 9

    quick = ldbulk("apply", str(EXAMPLE), "--create-only", "--report", str(report),
                   sandbox=sandbox)
    assert quick.returncode == 0, quick.stderr
    data = json.loads(report.read_text())
    assert data["summary"]["exists"] == 9
    assert data["stats"]["requests"] == 3  # nothing read by id


def test_plan_and_dry_run_send_no_writes(sandbox: SandboxProcess) -> None:
    for command in (["plan"], ["apply", "--dry-run"]):
        result = ldbulk(*command, str(EXAMPLE), sandbox=sandbox)
        assert result.returncode == 0, result.stderr
        assert "9 to create" in result.stdout
    assert sandbox.writes() == 0


def test_plan_and_status_need_no_store_secrets_and_say_what_they_did_not_compare(
    sandbox: SandboxProcess,
) -> None:
    assert ldbulk("apply", str(EXAMPLE), sandbox=sandbox).returncode == 0
    planned = ldbulk("plan", str(EXAMPLE), sandbox=sandbox, secrets=False)
    assert planned.returncode == 0, planned.stderr
    assert "Note: not set: ${LD_DYNAMODB_EXTERNAL_ID}" in planned.stderr
    # The external id is compared when known; unset, each of its rows says so (on one line:
    # outside a terminal a table is plain text at full width).
    assert planned.stdout.count("not compared: unset ${LD_DYNAMODB_EXTERNAL_ID}") == 3
    assert "0 to create, 0 to update, 0 to delete; 9 unchanged." in planned.stdout
    status = ldbulk("status", str(EXAMPLE), sandbox=sandbox, secrets=False)
    assert status.returncode == 0, status.stderr
    assert "9 of 9 stores available." in status.stdout
    assert sandbox.writes() == 9


def test_fields_masked_on_read_plan_clean_and_a_second_apply_writes_nothing() -> None:
    # A server that masks the DynamoDB external id and role ARN too, as LaunchDarkly may.
    with start_sandbox(
        "--projects", "3", "--environments", "4", "--mask", "externalId", "--mask", "roleArn"
    ) as masking:
        first = ldbulk("apply", str(EXAMPLE), sandbox=masking)
        assert first.returncode == 0, first.stderr
        written = masking.writes()
        assert written == 9  # a create per target, nothing else
        listed = urllib.request.Request(
            masking.url + "/api/v2/integration-capabilities/big-segment-store",
            headers={"Authorization": masking.token, "LD-API-Version": "beta"},
        )
        with urllib.request.urlopen(listed, timeout=10) as response:
            items = json.load(response)["items"]
        dynamodb = next(item for item in items if item["integrationKey"] == "dynamodb")
        read = urllib.request.Request(masking.url + dynamodb["_links"]["self"]["href"],
                                      headers=listed.headers)
        with urllib.request.urlopen(read, timeout=10) as response:
            config = json.load(response)["config"]
        assert config["externalId"] == "ext********b90"  # the sandbox really masks
        planned = ldbulk("plan", str(EXAMPLE), "--all", "--detailed-exitcode", sandbox=masking,
                         env={"COLUMNS": "300"})
        assert planned.returncode == 0, planned.stdout + planned.stderr
        assert "Plan: 0 to create, 0 to update, 0 to delete; 9 unchanged." in planned.stdout
        assert "not compared: roleArn, externalId (LaunchDarkly masks them)" in planned.stdout
        second = ldbulk("apply", str(EXAMPLE), sandbox=masking)
        assert second.returncode == 0, second.stderr
        assert masking.writes() == written  # reads only
        rotated = ldbulk("apply", str(EXAMPLE), "--rotate-secrets", sandbox=masking)
        assert rotated.returncode == 0, rotated.stderr
        assert masking.writes() == written + 9  # written again only on request
        for secret in SECRETS.values():
            assert secret not in planned.stdout + planned.stderr


def test_plan_and_status_print_json_and_plan_exits_3_while_changes_are_pending(
    sandbox: SandboxProcess,
) -> None:
    pending = ldbulk("plan", str(EXAMPLE), "-o", "json", "--detailed-exitcode", sandbox=sandbox)
    assert pending.returncode == 3, pending.stderr
    document = json.loads(pending.stdout)
    assert set(document) == {"version", "summary", "changes_pending", "items", "unresolved"}
    assert document["changes_pending"] is True and document["summary"]["create"] == 9
    assert set(document["items"][0]) == {
        "project", "environment", "integration", "action", "integration_id", "changes",
        "fields", "not_compared", "unset",
    }
    assert ldbulk("apply", str(EXAMPLE), sandbox=sandbox).returncode == 0
    converged = ldbulk("plan", str(EXAMPLE), "--detailed-exitcode", sandbox=sandbox)
    assert converged.returncode == 0, converged.stderr
    status = ldbulk("status", str(EXAMPLE), "-o", "json", sandbox=sandbox)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["summary"] == {"total": 9, "available": 9, "unresolved": 0}
    assert set(document["stores"][0]) == {
        "project", "environment", "integration", "integration_id", "available",
        "potentially_stale", "last_sync", "errors", "problem",
    }
    everything = pending.stdout + status.stdout
    assert not any(secret in everything for secret in SECRETS.values())


def test_missing_environments_exit_1_with_the_reason(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\n"
        "stores:\n"
        "  r: {integration: redis, config: {host: h}}\n"
        "targets:\n"
        "  - {project: proj-001, environments: [env-001, env-999], store: r}\n"
    )
    report = tmp_path / "r.json"
    result = ldbulk("apply", str(manifest), "--report", str(report), sandbox=sandbox)
    assert result.returncode == 1
    outcomes = [r["outcome"] for r in json.loads(report.read_text())["results"]]
    assert outcomes == ["created", "not_found"]
    assert "not_found" in result.stdout


def test_no_token_is_a_usage_error() -> None:
    result = ldbulk("plan", str(EXAMPLE), "--base-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert_clean_failure(result)
    assert "LD_ACCESS_TOKEN" in result.stderr


def test_token_file_is_read_and_a_wrong_token_fails_cleanly(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("api-not-the-right-one\n")
    result = ldbulk(
        "apply", str(EXAMPLE), "--token-file", str(token_file), "--base-url", sandbox.url
    )
    assert result.returncode == 1
    assert_clean_failure(result)
    assert "401" in result.stderr
    assert "api-not-the-right-one" not in result.stderr + result.stdout


UNTRUSTED = """\
version: 1
stores:
  leaky:
    integration: redis
    config:
      host: ${LD_ACCESS_TOKEN}
      username: ${AWS_SECRET_ACCESS_KEY}
      password: ${file:/etc/hostname}
  climbing:
    integration: redis
    config:
      host: ${file:../../../etc/hostname}
      password: ${file:ld-token}
targets:
  - {project: proj-001, environments: [env-001], store: leaky}
  - {project: proj-001, environments: [env-002], store: climbing}
"""


def test_validate_refuses_references_to_credentials_and_outside_files(tmp_path: Path) -> None:
    manifest = tmp_path / "pr.yaml"
    manifest.write_text(UNTRUSTED.replace("${file:ld-token}", '""'))
    env = {"LD_ACCESS_TOKEN": "api-the-real-token", "AWS_SECRET_ACCESS_KEY": "aws-secret-9c"}
    result = ldbulk("validate", str(manifest), env=env)
    assert result.returncode == 2
    assert_clean_failure(result)
    problems = result.stderr.splitlines()
    assert problems == [
        f"{manifest}:6: stores.leaky.config.host: ${{LD_ACCESS_TOKEN}} is ldbulk's own access "
        "token: no manifest may use it",
        f"{manifest}:7: stores.leaky.config.username: ${{AWS_SECRET_ACCESS_KEY}} is named like "
        "another system's credential (*_SECRET_ACCESS_KEY): refused; the job that runs the "
        "manifest can allow it with --allow-env AWS_SECRET_ACCESS_KEY if the store needs it",
        f'{manifest}:8: stores.leaky.config.password: secret file "/etc/hostname" is outside '
        "the manifest's directory (allow a directory with --secrets-dir)",
        f'{manifest}:12: stores.climbing.config.host: secret file "../../../etc/hostname" is '
        "outside the manifest's directory (allow a directory with --secrets-dir)",
        "4 problems; nothing was sent.",
    ]
    assert "api-the-real-token" not in result.stderr and "aws-secret-9c" not in result.stderr


def test_apply_refuses_the_access_token_and_its_file_and_sends_nothing(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "ld-token"
    token_file.write_text(sandbox.token + "\n")
    manifest = tmp_path / "pr.yaml"
    manifest.write_text(UNTRUSTED.replace("${file:/etc/hostname}", '""'))
    result = ldbulk(
        "apply",
        str(manifest),
        "--token-file",
        str(token_file),
        "--base-url",
        sandbox.url,
        env={"LD_ACCESS_TOKEN": sandbox.token},
    )
    assert result.returncode == 2
    assert_clean_failure(result)
    assert "stores.leaky.config.host: ${LD_ACCESS_TOKEN} is ldbulk's own" in result.stderr
    assert (
        'stores.climbing.config.password: secret file "ld-token" is the access token file'
        in result.stderr
    )
    assert "nothing was sent." in result.stderr
    assert sandbox.token not in result.stderr + result.stdout
    assert sandbox.get("/_sandbox/stats")["total"] == 0


def test_secrets_dir_and_allow_env_let_legitimate_references_through(tmp_path: Path) -> None:
    (tmp_path / "repo" / "secrets").mkdir(parents=True)
    (tmp_path / "repo" / "secrets" / "external-id").write_text("ext-id-5c1e\n")
    (tmp_path / "run-secrets").mkdir()
    (tmp_path / "run-secrets" / "redis").write_text("redis-pw\n")
    manifest = tmp_path / "repo" / "m.yaml"
    manifest.write_text(
        "version: 1\n"
        "stores:\n"
        "  r: {integration: redis, config: {host: h, username: '${MY_TOKEN}',\n"
        f"      password: '${{file:{tmp_path / 'run-secrets' / 'redis'}}}'}}}}\n"
        "  d: {integration: dynamodb, config: {tableName: t, region: us-east-1,\n"
        "      roleArn: 'arn:aws:iam::123456789012:role/ld',\n"
        "      externalId: '${file:secrets/external-id}'}}\n"
        "targets:\n"
        "  - {project: web, environments: [prod], store: r}\n"
        "  - {project: web, environments: [prod], store: d}\n"
    )
    env = {"MY_TOKEN": "allowed"}
    refused = ldbulk("validate", str(manifest), env=env)
    assert refused.returncode == 2
    assert "${MY_TOKEN} is named like" in refused.stderr
    assert "is outside the manifest's directory" in refused.stderr
    result = ldbulk(
        "validate",
        str(manifest),
        "--allow-env",
        "MY_TOKEN",
        "--secrets-dir",
        str(tmp_path / "run-secrets"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "valid: 2 store(s)" in result.stdout


PR_ALLOWING_ITSELF = """\
version: 1
defaults: {allowEnv: [GITHUB_TOKEN]}
stores:
  r: {integration: redis, config: {host: 127.0.0.1, port: 9, password: "${GITHUB_TOKEN}"}}
targets:
  - {project: proj-001, environments: [env-001], store: r}
"""


@pytest.mark.parametrize("command", ["validate", "check", "apply"])
def test_a_manifest_that_allows_a_credential_for_itself_is_refused(
    tmp_path: Path, command: str
) -> None:
    manifest = tmp_path / "pr.yaml"
    manifest.write_text(PR_ALLOWING_ITSELF)
    env = {"GITHUB_TOKEN": "ghs-the-jobs-own-token", "LD_ACCESS_TOKEN": "api-x",
           "LD_BASE_URI": "http://127.0.0.1:9"}
    result = ldbulk(command, str(manifest), env=env)
    assert result.returncode == 2, result.stderr
    assert_clean_failure(result)
    assert (
        f'{manifest}:2: defaults.allowEnv[0]: cannot allow "GITHUB_TOKEN": it is named like a '
        "credential (*_TOKEN), and a manifest may not allow one for itself; the job that runs "
        "it can, with --allow-env GITHUB_TOKEN"
    ) in result.stderr.splitlines()
    assert "ghs-the-jobs-own-token" not in result.stdout + result.stderr


def test_allow_env_never_allows_the_access_token() -> None:
    result = ldbulk("validate", str(EXAMPLE), "--allow-env", "LD_ACCESS_TOKEN")
    assert result.returncode == 2
    assert_clean_failure(result)
    assert "cannot allow 'LD_ACCESS_TOKEN': it is ldbulk's own access token" in result.stderr


def test_plain_http_to_a_remote_host_is_refused() -> None:
    result = ldbulk(
        "plan", str(EXAMPLE), "--base-url", "http://ld.example.com", env={"LD_ACCESS_TOKEN": "x"}
    )
    assert result.returncode == 2
    assert "https" in result.stderr


def test_status_reports_every_store(sandbox: SandboxProcess) -> None:
    assert ldbulk("apply", str(EXAMPLE), sandbox=sandbox).returncode == 0
    result = ldbulk("status", str(EXAMPLE), sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    assert "9 of 9 stores available." in result.stdout


def test_status_of_unprovisioned_targets_exits_1(sandbox: SandboxProcess) -> None:
    result = ldbulk("status", str(EXAMPLE), sandbox=sandbox)
    assert result.returncode == 1
    assert "0 of 9 stores available." in result.stdout


def test_no_secret_in_any_output_log_or_report(sandbox: SandboxProcess, tmp_path: Path) -> None:
    paths = [tmp_path / name for name in ("r.json", "j.xml", "m.md")]
    result = ldbulk(
        "-vv",
        "--log-format",
        "json",
        "apply",
        str(EXAMPLE),
        "--report",
        str(paths[0]),
        "--junit",
        str(paths[1]),
        "--markdown",
        str(paths[2]),
        "--keep-journal",
        sandbox=sandbox,
    )
    assert result.returncode == 0, result.stderr
    assert '"level": "debug"' in result.stderr
    journal = paths[0].with_name(paths[0].name + ".journal")
    everything = result.stdout + result.stderr + "".join(p.read_text() for p in [*paths, journal])
    # The environments listed for the wildcards carry SDK and mobile keys: none may leak either.
    sdk_keys = [
        environment[field]
        for project in ("proj-002", "proj-003")
        for environment in sandbox.api(f"/api/v2/projects/{project}/environments")["items"]
        for field in ("apiKey", "mobileKey")
    ]
    assert len(sdk_keys) == 16
    for secret in [*SECRETS.values(), sandbox.token, *sdk_keys]:
        assert secret not in everything


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_401_quoting_the_token_leaves_it_in_no_output(tmp_path: Path, log_format: str) -> None:
    """A server (or a proxy) whose 401 quotes the Authorization header it was sent: the token,
    from the token file or the environment, is in no report, journal, log line or stream."""
    token_file = tmp_path / "token"
    from_file = "api-5f1c0e7a-token-from-the-file"
    token_file.write_text(from_file + "\n")
    from_env = "api-93d2b4c6-token-from-the-environment"
    paths = [tmp_path / name for name in ("r.json", "j.xml", "m.md", "run.journal")]
    outputs = ["--report", str(paths[0]), "--junit", str(paths[1]), "--markdown", str(paths[2]),
               "--journal", str(paths[3])]
    with start_sandbox("--projects", "3", "--environments", "4", "--echo-token") as running:
        for token, source in [(from_file, ["--token-file", str(token_file)]), (from_env, [])]:
            for path in paths:
                path.unlink(missing_ok=True)
            result = ldbulk(
                "-vv", "--log-format", log_format, "apply", str(EXAMPLE), *outputs, *source,
                "--base-url", running.url, env={"LD_ACCESS_TOKEN": from_env},
            )
            assert result.returncode == 1, result.stderr
            assert_clean_failure(result)
            written = {path.name: path.read_text() for path in paths}
            # The server did quote it, and what it said around the token is kept.
            assert "Invalid access token: Authorization: '***' is not a valid token" in (
                written["r.json"]
            )
            for name, text in [*written.items(), ("stdout", result.stdout),
                               ("stderr", result.stderr)]:
                assert token not in text, name


@attrs.frozen
class SlowRun:
    """A slow sandbox with a wildcard manifest over all its environments, for interruptions."""

    sandbox: SandboxProcess
    manifest: Path

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = os.environ | {"LD_ACCESS_TOKEN": self.sandbox.token, "LD_BASE_URI": self.sandbox.url}
        return subprocess.Popen(
            [sys.executable, "-m", "ldbulk", "apply", str(self.manifest), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for_integrations(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.stored() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.stored()} of {count} integrations after 30 s")
            time.sleep(0.05)

    def stored(self) -> int:
        return int(self.sandbox.get("/_sandbox/stats")["integrations"])


def wildcard_manifest(tmp_path: Path, projects: int) -> Path:
    """A manifest of every environment of the first ``projects`` projects, in m.yaml."""
    lines = [
        f"  - {{project: proj-{p:03d}, environments: '*', store: r}}\n"
        for p in range(1, projects + 1)
    ]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nstores:\n  r: {integration: redis, config: {host: h}}\ntargets:\n"
        + "".join(lines)
    )
    return manifest


@contextlib.contextmanager
def slow_run(tmp_path: Path, *, projects: int, latency_ms: int) -> Iterator[SlowRun]:
    manifest = wildcard_manifest(tmp_path, projects)
    with start_sandbox(
        "--projects", str(projects), "--environments", "60", "--latency-ms", str(latency_ms)
    ) as slow:
        yield SlowRun(sandbox=slow, manifest=manifest)


def stopped(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> str:
    """Stop a command with a signal; its stderr once it has ended (a minute at the most)."""
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure being guarded
        process.kill()
        raise
    return stderr


def test_sigterm_finishes_in_flight_work_and_reports_the_rest_skipped(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    with slow_run(tmp_path, projects=2, latency_ms=150) as run:
        apply = run.start("--concurrency", "2", "--report", str(report))
        run.wait_for_integrations(4)
        apply.send_signal(signal.SIGTERM)
        _, stderr = apply.communicate(timeout=60)
        assert apply.returncode == 143, stderr
        assert "Traceback" not in stderr
        outcomes = [r["outcome"] for r in json.loads(report.read_text())["results"]]
        assert len(outcomes) == 120
        assert set(outcomes) == {"created", "skipped"}
        assert outcomes.count("created") == run.stored()


def test_resume_after_kill_9_reports_every_target_once(tmp_path: Path) -> None:
    report, journal = tmp_path / "r.json", tmp_path / "run.journal"
    with slow_run(tmp_path, projects=2, latency_ms=100) as run:
        apply = run.start("--journal", str(journal), "--concurrency", "4")
        run.wait_for_integrations(20)
        apply.kill()
        apply.communicate(timeout=10)
        assert 0 < journal.read_text().count("\n") < 120

        resumed = run.start("--resume", str(journal), "--report", str(report))
        _, stderr = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, stderr
        results = json.loads(report.read_text())["results"]
        keys = [(r["project"], r["environment"]) for r in results]
        assert len(keys) == len(set(keys)) == 120
        assert {r["outcome"] for r in results} <= {"created", "unchanged"}
        # Targets journaled before the kill keep their "created"; a create in flight at the
        # kill was applied but not journaled, so the resumed run finds it "unchanged".
        assert sum(r["outcome"] == "created" for r in results) >= 120 - 4
        stored = run.sandbox.get("/_sandbox/integrations")["integrations"]
        assert len({(i["projectKey"], i["environmentKey"]) for i in stored}) == len(stored) == 120


def test_a_second_sigint_exits_at_once_and_leaves_the_journal_readable(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    with slow_run(tmp_path, projects=1, latency_ms=300) as run:
        apply = run.start("--journal", str(journal), "--concurrency", "2")
        run.wait_for_integrations(4)
        apply.send_signal(signal.SIGINT)
        time.sleep(0.1)
        apply.send_signal(signal.SIGINT)
        _, stderr = apply.communicate(timeout=30)
        assert apply.returncode == 130
        assert "Traceback" not in stderr
        header, *lines = journal.read_text().splitlines()
        assert json.loads(header)["kind"] == "ldbulk-journal"
        assert lines and all(json.loads(line)["outcome"] for line in lines)


def test_the_demo_runs_from_start_to_report(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LD_")}
    result = subprocess.run(
        [sys.executable, "-m", "ldbulk.demo", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "9 targets: 9 created" in result.stdout
    # The second run: the list, the environments of the two wildcard projects, 9 reads.
    assert "9 targets: 9 unchanged (12 requests" in result.stdout
    # After the changes by hand: the host moved back, the tagged leftover deleted, the
    # untagged one listed and left alone; then nothing left to change.
    assert "Plan: 0 to create, 1 to update, 1 to delete; 8 unchanged, 1 unmanaged." in (
        result.stdout
    )
    assert "1 updated, 8 unchanged, 1 deleted" in result.stdout
    assert "Plan: 0 to create, 0 to update, 0 to delete; 9 unchanged, 1 unmanaged." in (
        result.stdout
    )
    assert "9 of 9 stores available." in result.stdout
    # The account exported, validated, and planned: nothing to change.
    assert "Plan: 0 to create, 0 to update, 0 to delete; 10 unchanged." in result.stdout
    summary = json.loads((tmp_path / "reports" / "demo.json").read_text())["summary"]
    assert (summary["updated"], summary["deleted"]) == (1, 1)
