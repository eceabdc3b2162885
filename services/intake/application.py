"""Intake's store: case events per participant, and the identity vault.

The vault is the only place inside the platform where a national id is kept: encrypted,
keyed by the pseudonymous participant id, in intake's own schema.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import psycopg
from cryptography.fernet import Fernet

from services.intake.domain import Participant
from services.kernel.source import SourceApplication

# Participants `keep` remembers having stored, so that it neither encrypts nor writes
# them again; the oldest are forgotten first (64 hex digits each).
KEPT = 100_000


class Vault:
    def __init__(self, database_url: str, key: str) -> None:
        self._database_url = database_url
        self._fernet = Fernet(key.encode())
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._kept: dict[str, None] = {}  # in the order they were stored
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS intake.vault"
                " (participant text PRIMARY KEY, national_id bytea NOT NULL)"
            )

    def keep(self, identities: dict[str, str]) -> None:
        """Store the national ids of participants not in the vault yet. Call it from one
        thread (intake's store worker): it keeps one connection for it."""
        fresh = {p: nid for p, nid in identities.items() if p not in self._kept}
        if not fresh:
            return
        rows = [(p, self._fernet.encrypt(nid.encode())) for p, nid in fresh.items()]
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._database_url, autocommit=True)
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO intake.vault (participant, national_id) VALUES (%s, %s)"
                " ON CONFLICT (participant) DO NOTHING",
                rows,
            )
        self._kept.update(dict.fromkeys(fresh))
        excess = len(self._kept) - KEPT
        if excess > 0:
            for oldest in list(islice(self._kept, excess)):
                del self._kept[oldest]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

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

    def close(self) -> None:
        super().close()
        self.vault.close()
