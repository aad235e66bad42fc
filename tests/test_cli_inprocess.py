"""The command line in process, through click's runner: the global flags before and after every
command, and what a command says before it sends anything."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli import EXAMPLE, SECRETS

from ldbulk.cli import main
from ldbulk.cli import record as run_record
from ldbulk.cli.logs import JSONFormatter
from ldbulk.engine import saved
from ldbulk.engine.plan import Action


@pytest.mark.parametrize(
    "command", ["validate", "plan", "apply", "status", "export", "check", "sandbox"]
)
def test_every_command_accepts_the_global_flags_after_its_name(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help", "-v", "--log-format", "json",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "--log-format" in result.output and "--no-progress" in result.output


def test_flags_after_the_command_count_with_those_before_it(ldbulk_logger: logging.Logger) -> None:
    result = CliRunner().invoke(
        main, ["-v", "validate", str(EXAMPLE), "-v", "--log-format", "json", "--no-progress"],
        env=SECRETS,
    )
    assert result.exit_code == 0, result.output
    assert ldbulk_logger.level == logging.DEBUG
    assert isinstance(ldbulk_logger.handlers[0].formatter, JSONFormatter)


def test_validate_notes_unset_references_and_require_secrets_makes_them_errors() -> None:
    runner = CliRunner()
    noted = runner.invoke(main, ["validate", str(EXAMPLE)], env=dict.fromkeys(SECRETS))
    assert noted.exit_code == 0, noted.output
    assert "Note: not set: ${LD_DYNAMODB_EXTERNAL_ID} (store dynamo-demo); ${LD_REDIS_PASSWORD}" \
        in noted.output
    assert "not compared" not in noted.output  # validate compares nothing with LaunchDarkly
    refused = runner.invoke(
        main, ["validate", str(EXAMPLE), "--require-secrets"], env=dict.fromkeys(SECRETS)
    )
    assert refused.exit_code == 2
    assert "environment variable LD_REDIS_PASSWORD is not set" in refused.output


def test_base_uri_is_a_flag_and_messages_name_the_command_lines_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    no_env = {"LD_ACCESS_TOKEN": None, "LD_BASE_URI": None, **SECRETS}
    refused = runner.invoke(
        main, ["plan", str(EXAMPLE), "--base-uri", "http://ld.example.com"],
        env={**no_env, "LD_ACCESS_TOKEN": "api-x"},
    )
    assert refused.exit_code == 2
    assert refused.output.startswith("--base-uri: plain http is only allowed for loopback")
    no_token = runner.invoke(main, ["plan", str(EXAMPLE), "--base-url", "http://127.0.0.1:9"],
                             env=no_env)
    assert no_token.exit_code == 2
    assert no_token.output == (
        "no access token: set LD_ACCESS_TOKEN or give --token-file FILE "
        "(a LaunchDarkly API access token, api-...)\n"
    )
    missing = runner.invoke(
        main, ["status", str(EXAMPLE), "--token-file", str(tmp_path / "nope")], env=no_env
    )
    assert missing.exit_code == 2
    assert missing.output == (
        f"--token-file: cannot read {tmp_path / 'nope'}: No such file or directory\n"
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_saved_plan_is_read_once_whether_or_not_the_start_event_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_format: str
) -> None:
    plan = tmp_path / "ldbulk.plan"
    saved.write_plan(plan, saved.SavedPlan(
        base_url="https://ld.example.com", manifests=(str(EXAMPLE),), digest="sha256:0",
        ownership_tags=(), rotate_secrets=False, created_at="2026-01-01T00:00:00Z",
        actions=(saved.SavedAction(key=("p", "e", "redis"), action=Action.DELETE,
                                   integration_id="i1"),),
    ))
    reads = []

    def counted(path: Path) -> saved.SavedPlan:
        reads.append(path)
        return saved.read_plan(path)

    monkeypatch.setattr(run_record, "read_plan", counted)
    result = CliRunner().invoke(
        main, ["apply", str(plan), "--log-format", log_format],
        env={"LD_ACCESS_TOKEN": "api-x", "LD_BASE_URI": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 2  # refused before any request: made against another URL
    assert reads == [plan]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_that_asks_ldbulk_itself(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert "_LDBULK_COMPLETE" in result.output


def test_completion_completes_commands_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the bash script does on <tab>: run ldbulk with the words typed so far.
    for words, expected in (("ldbulk pl", "plan"), ("ldbulk apply --pr", "--prune")):
        monkeypatch.setenv("_LDBULK_COMPLETE", "bash_complete")
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - 1))
        result = CliRunner().invoke(main, [], prog_name="ldbulk")
        assert f"plain,{expected}" in result.output.splitlines()


def test_completion_of_an_unknown_shell_is_bad_usage() -> None:
    result = CliRunner().invoke(main, ["completion", "tcsh"])
    assert result.exit_code == 2 and "tcsh" in result.output
