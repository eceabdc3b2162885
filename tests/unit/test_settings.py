"""Settings: the keys whose defaults are in the public source are named, so that a service
can warn that it runs with them (each service of the keys it uses)."""

from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from services.kernel.settings import Settings

KEYS = ("pseudonym_key", "vault_key", "token_key", "source_token_key")


@pytest.fixture(autouse=True)
def _no_keys_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("LOS_PSEUDONYM_KEY", "LOS_VAULT_KEY", "LOS_TOKEN_KEY", "LOS_SOURCE_TOKEN_KEY"):
        monkeypatch.delenv(key, raising=False)


def test_the_keys_left_at_their_public_defaults_are_named() -> None:
    settings = Settings(_env_file=None)
    assert settings.public_defaults(KEYS) == list(KEYS)
    assert settings.public_defaults(("token_key",)) == ["token_key"]


def test_a_key_set_by_the_operator_is_not_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOS_TOKEN_KEY", "a-long-random-value-of-32-bytes-or-more")
    monkeypatch.setenv("LOS_SOURCE_TOKEN_KEY", "another-long-random-value-of-32-bytes")
    settings = Settings(_env_file=None, vault_key=SecretStr("another"))
    assert settings.public_defaults(KEYS) == ["pseudonym_key"]


@pytest.mark.parametrize("name", ["LOS_TOKEN_KEY", "LOS_SOURCE_TOKEN_KEY"])
def test_a_token_key_shorter_than_256_bits_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "replace-me")
    with pytest.raises(ValidationError, match=f"{name} must be at least 32 bytes"):
        Settings(_env_file=None)


def test_one_key_for_both_apis_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOS_TOKEN_KEY", "LOS_SOURCE_TOKEN_KEY"):
        monkeypatch.setenv(name, "one-long-random-value-of-32-bytes-or-more")
    with pytest.raises(ValidationError, match="must differ"):
        Settings(_env_file=None)


def test_a_token_lifetime_of_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOS_TOKEN_MAX_LIFETIME", "PT8H")
    assert Settings(_env_file=None).token_max_lifetime == timedelta(hours=8)
    monkeypatch.setenv("LOS_TOKEN_MAX_LIFETIME", "PT0S")
    with pytest.raises(ValidationError, match="LOS_TOKEN_MAX_LIFETIME must be longer"):
        Settings(_env_file=None)


def test_a_default_key_among_others_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    default = Settings.model_fields["vault_key"].default.get_secret_value()
    monkeypatch.setenv("LOS_VAULT_KEY", f"{default},another")
    assert Settings(_env_file=None).public_defaults(["vault_key"]) == ["vault_key"]
