"""Intake's identity vault on PostgreSQL: each national id stored once, encrypted, under a
key that can be rotated."""

from __future__ import annotations

import random
from datetime import date

import psycopg
import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from typer.testing import CliRunner

from services.cli.main import app
from services.intake import application
from services.intake.application import Vault, create_vault, fernet_keys
from services.kernel.embedded import Servers
from services.kernel.ids import synthetic_national_id
from services.kernel.settings import Settings, get_settings
from services.kernel.store import create_schema
from tests.support import fresh_database

KEY = Settings().vault_key.get_secret_value()
IDS = {f"p-{n}": synthetic_national_id(random.Random(n), date(1988, 2, 9)) for n in (1, 2, 3)}


def vault_on(servers: Servers) -> tuple[Vault, str]:
    database_url = fresh_database(servers.database_url)
    create_schema(database_url, "intake")
    create_vault(database_url)
    return Vault(database_url, KEY), database_url


def stored(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT participant FROM intake.vault").fetchall()
    return {row[0] for row in rows}


def forget(database_url: str, participant: str) -> None:
    """Delete a participant's row behind the vault's back, to see whether it writes again."""
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM intake.vault WHERE participant = %s", (participant,))


@pytest.mark.servers
def test_the_vault_keeps_each_id_once_and_gives_it_back(real_servers: Servers) -> None:
    vault, database_url = vault_on(real_servers)
    vault.keep({"p-1": IDS["p-1"], "p-2": IDS["p-2"]})
    vault.keep({"p-1": IDS["p-1"], "p-3": IDS["p-3"]})

    assert stored(database_url) == {"p-1", "p-2", "p-3"}
    assert vault.national_id("p-1") == IDS["p-1"]
    assert vault.national_id("p-4") is None
    vault.close()


@pytest.mark.servers
def test_the_vault_writes_only_participants_it_has_not_stored_lately(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application, "KEPT", 2)
    vault, database_url = vault_on(real_servers)
    vault.keep(IDS)  # p-1 is the oldest of three: no longer remembered
    forget(database_url, "p-1")
    forget(database_url, "p-3")

    vault.keep(IDS)

    assert stored(database_url) == {"p-1", "p-2"}  # p-3 was remembered as stored
    vault.close()
    create_vault(database_url)  # as intake starts again: the table is there
    restarted = Vault(database_url, KEY)
    restarted.keep(IDS)
    assert stored(database_url) == {"p-1", "p-2", "p-3"}
    restarted.close()


def national_ids(database_url: str, keys: str) -> dict[str, str]:
    """Every national id in the vault, read with `keys` alone."""
    fernet = MultiFernet(fernet_keys(keys))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT participant, national_id FROM intake.vault").fetchall()
    return {participant: fernet.decrypt(bytes(token)).decode() for participant, token in rows}


@pytest.mark.servers
def test_the_vault_key_is_rotated_to_the_key_intake_stores_under(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application, "ROTATE_BATCH", 2)  # batches end inside the rows
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    vault, database_url = vault_on(real_servers)
    vault.close()
    before = Vault(database_url, old)
    before.keep({"p-1": IDS["p-1"], "p-2": IDS["p-2"]})
    before.close()
    during = Vault(database_url, f"{new},{old}")  # intake restarted with both keys
    during.keep({"p-3": IDS["p-3"]})
    assert during.national_id("p-1") == IDS["p-1"]

    seen: list[int] = []
    rotation = during.rotate(seen.append)

    assert (rotation.rotated, rotation.current, seen) == (2, 1, [2, 1])
    assert national_ids(database_url, new) == IDS  # the old key is no longer needed
    with pytest.raises(InvalidToken):
        national_ids(database_url, old)
    again = during.rotate()
    assert (again.rotated, again.current) == (0, 3)
    during.close()


@pytest.mark.servers
def test_los_vault_rotate_says_what_it_did(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new, other = (Fernet.generate_key().decode() for _ in range(3))
    vault, database_url = vault_on(real_servers)
    vault.close()
    before = Vault(database_url, old)
    before.keep(IDS)
    before.close()
    elsewhere = fresh_database(real_servers.database_url)  # no vault in it

    said = []
    for keys, database in [
        (f"{new},{old}", database_url),
        (new, database_url),
        (f"{new},not-a-key", database_url),
        (f"{new},{old}", elsewhere),
        (f"{other},{new}", database_url),  # one row no longer under a key given
    ]:
        if keys.startswith(other):  # p-1 stored again under the old key, given no more
            forget(database_url, "p-1")
            with_old = Vault(database_url, old)
            with_old.keep({"p-1": IDS["p-1"]})
            with_old.close()
        monkeypatch.setenv("LOS_VAULT_KEY", keys)
        monkeypatch.setenv("DATABASE_URL", database)
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["vault", "rotate"])
        said.append((result.exit_code, " ".join(result.output.replace("│", " ").split())))
    get_settings.cache_clear()

    assert said[0] == (
        0,
        "3 national ids re-encrypted under the first key, 0 were already;"
        " run it again until it re-encrypts none",
    )
    assert said[1] == (0, "0 national ids re-encrypted under the first key, 3 were already")
    assert said[2][0] == 2
    assert "LOS_VAULT_KEY: key 2 is not a Fernet key" in said[2][1]
    assert said[3] == (1, "vault rotate stopped: the database DATABASE_URL names has no vault")
    assert said[4] == (
        1,
        "vault rotate stopped: the national id of participant p-1 is under none of the"
        " keys, after re-encrypting 0 (give LOS_VAULT_KEY its key too)",
    )
