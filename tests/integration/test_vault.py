"""Intake's identity vault on PostgreSQL: each national id stored once, encrypted."""

from __future__ import annotations

import random
from datetime import date

import psycopg
import pytest

from services.intake import application
from services.intake.application import Vault
from services.kernel.embedded import Servers
from services.kernel.ids import synthetic_national_id
from services.kernel.settings import Settings
from services.kernel.store import create_schema
from tests.support import fresh_database

KEY = Settings().vault_key.get_secret_value()
IDS = {f"p-{n}": synthetic_national_id(random.Random(n), date(1988, 2, 9)) for n in (1, 2, 3)}


def vault_on(servers: Servers) -> tuple[Vault, str]:
    database_url = fresh_database(servers.database_url)
    create_schema(database_url, "intake")
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
    restarted = Vault(database_url, KEY)
    restarted.keep(IDS)
    assert stored(database_url) == {"p-1", "p-2", "p-3"}
    restarted.close()
