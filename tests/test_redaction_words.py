"""Redaction that hides secrets and nothing else: a secret's text inside a longer word is left
as it is, and a secret too short to be told from a word's letters is refused when the
manifest is validated, with the reason. The access token is the exception: long and random,
it is hidden from a server's answer wherever it stands."""

from __future__ import annotations

import pytest

import ldbulk
from ldbulk.api.sansio import without_secret
from ldbulk.http.transport import canned
from ldbulk.manifest import ManifestError
from ldbulk.manifest.config import MIN_SECRET_LENGTH
from ldbulk.text import redact

MANIFEST = """\
version: 1
stores:
  cache:
    integration: redis
    config: {host: redis.internal, password: "${LD_REDIS_PASSWORD}"}
targets:
  - {project: web, environments: [prod], store: cache}
"""


def test_a_secret_inside_a_longer_word_leaves_the_word_whole() -> None:
    text = "could not list existing integrations: x"
    assert redact(text, ["x"]) == "could not list existing integrations: ***"
    assert redact("pw_x x9 (x)", ["x"]) == "pw_x x9 (***)"


def test_a_secret_standing_as_a_whole_is_hidden_wherever_it_stands() -> None:
    secret = "s3cr3t-pw-4f1a"
    text = f"redis://:{secret}@h refused; AUTH {secret}. \"{secret}\""
    assert redact(text, [secret]) == 'redis://:***@h refused; AUTH ***. "***"'


def test_a_config_hides_its_secret_but_not_the_words_holding_its_letters() -> None:
    config = ldbulk.RedisConfig(host="h", password="existing")
    said = "could not list existing integrations; nonexisting password existing"
    assert config.redact(said) == (
        "could not list *** integrations; nonexisting password ***"
    )


@pytest.mark.parametrize("length", [1, MIN_SECRET_LENGTH - 1])
def test_a_short_secret_is_refused_at_validation_with_the_reason(length: int) -> None:
    with pytest.raises(ManifestError) as info:
        ldbulk.loads_manifest(MANIFEST, file="m.yaml", env={"LD_REDIS_PASSWORD": "x" * length})
    (problem,) = info.value.problems
    assert str(problem) == (
        "m.yaml:5: stores.cache.config.password: the value of ${LD_REDIS_PASSWORD} is a "
        f"secret shorter than {MIN_SECRET_LENGTH} characters: too short to guess hard or to "
        "hide in messages without hiding ordinary words"
    )


def test_a_secret_of_the_safe_length_is_accepted() -> None:
    loaded = ldbulk.loads_manifest(
        MANIFEST, file="m.yaml", env={"LD_REDIS_PASSWORD": "p" * MIN_SECRET_LENGTH}
    )
    config = loaded.stores[0].config
    assert isinstance(config, ldbulk.RedisConfig)
    assert config.password == "p" * MIN_SECRET_LENGTH


def test_the_access_token_is_hidden_from_an_answer_even_inside_a_longer_word() -> None:
    """The token is long and random: run into other text, it is still the token. Only a part
    of it (the ``api-`` every token starts with) is kept."""
    token = "api-6d2f0b9e-4c1a-4e7b-9a3d-8f5e2c1b0a97"
    body = f"<html>Bearer{token}; api- {token}x</html>".encode()
    answer = without_secret(canned(401, body=body), token)
    assert answer.body == b"<html>Bearer***; api- ***x</html>"
