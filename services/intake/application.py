"""Intake's store: case events per participant, and the identity vault.

The vault is the only place inside the platform where a national id is kept: encrypted,
keyed by the pseudonymous participant id, in intake's own schema.
"""

from __future__ import annotations

import psycopg
from cryptography.fernet import Fernet

from services.intake.domain import Participant
from services.kernel.source import SourceApplication


class Vault:
    def __init__(self, database_url: str, key: str) -> None:
        self._database_url = database_url
        self._fernet = Fernet(key.encode())
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS intake.vault"
                " (participant text PRIMARY KEY, national_id bytea NOT NULL)"
            )

    def keep(self, identities: dict[str, str]) -> None:
        rows = [(p, self._fernet.encrypt(nid.encode())) for p, nid in identities.items()]
        with psycopg.connect(self._database_url) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO intake.vault (participant, national_id) VALUES (%s, %s)"
                " ON CONFLICT (participant) DO NOTHING",
                rows,
            )

    def national_id(self, participant: str) -> str | None:
        with psycopg.connect(self._database_url) as conn:
            row = conn.execute(
                "SELECT national_id FROM intake.vault WHERE participant = %s", (participant,)
            ).fetchone()
        return None if row is None else self._fernet.decrypt(bytes(row[0])).decode()


class IntakeApplication(SourceApplication):
    service = "intake"
    record_type = Participant

    def __init__(self, vault: Vault, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self.vault = vault

    def remember(self, identities: dict[str, str]) -> None:
        if identities:
            self.vault.keep(identities)
