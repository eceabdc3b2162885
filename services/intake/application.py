"""Intake's store: case events per participant, and the identity vault.

The vault is the only place inside the platform where a national id is kept: encrypted,
keyed by the pseudonymous participant id, in intake's own schema. Its key can be rotated
while intake serves: `LOS_VAULT_KEY` holds one or more Fernet keys, comma-separated;
the first encrypts, any of them decrypts, and `rotate` re-encrypts under the first what
another key encrypted (`los vault rotate`; deploy/README.md says in which order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

import psycopg
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.intake.domain import Participant
from services.kernel.connection import KeptConnection
from services.kernel.keys import create_keys
from services.kernel.source import SourceApplication

# Participants `keep` remembers having stored, so that it neither encrypts nor writes
# them again; the oldest are forgotten first (64 hex digits each).
KEPT = 100_000
ROTATE_BATCH = 1000  # rows re-encrypted a transaction


def fernet_keys(keys: str) -> list[Fernet]:
    """The comma-separated Fernet keys of `LOS_VAULT_KEY`, newest first; ValueError naming
    the one that is not a Fernet key, by its position (never the key itself)."""
    fernets = []
    for position, key in enumerate(keys.split(","), start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except ValueError:
            raise ValueError(
                f"LOS_VAULT_KEY: key {position} is not a Fernet key"
                " (32 random bytes, URL-safe base64)"
            ) from None
    return fernets


def create_vault(database_url: str) -> None:
    """The vault's table, at intake's start, if it is not there yet; and the people's keys
    it looks at (who was erased)."""
    create_keys(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS intake.vault"
            " (participant text PRIMARY KEY, national_id bytea NOT NULL)"
        )


def vault_exists(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT to_regclass('intake.vault')").fetchone()
    return row is not None and row[0] is not None


@dataclass
class Rotation:
    """What `Vault.rotate` did: rows re-encrypted under the first key, and rows that
    already were."""

    rotated: int = 0
    current: int = 0


class Unreadable(Exception):
    """A national id that none of the keys decrypts, and what the rotation did before."""

    def __init__(self, participant: str, rotation: Rotation) -> None:
        super().__init__(f"the national id of participant {participant} is under none of the keys")
        self.rotation = rotation


class Vault:
    """The vault's rows in `intake.vault` (`create_vault` makes the table)."""

    def __init__(self, database_url: str, keys: str) -> None:
        self._database_url = database_url
        fernets = fernet_keys(keys)
        self._newest = fernets[0]
        self._fernet = MultiFernet(fernets)
        self._conn = KeptConnection(database_url)
        self._kept: dict[str, None] = {}  # in the order they were stored

    def keep(self, identities: dict[str, str]) -> None:
        """Store the national ids of participants not in the vault yet. Call it from one
        thread (intake's store worker): it keeps one connection for it."""
        fresh = {p: nid for p, nid in identities.items() if p not in self._kept}
        if not fresh:
            return
        rows = [(p, self._fernet.encrypt(nid.encode()), p) for p, nid in fresh.items()]
        conn = self._conn.get()
        with conn.transaction(), conn.cursor() as cur:
            # Not for someone erased since their batch read the keys (services/kernel/keys.py).
            cur.executemany(
                "INSERT INTO intake.vault (participant, national_id) SELECT %s, %s"
                " WHERE NOT EXISTS (SELECT 1 FROM keys.people"
                " WHERE participant = %s AND key IS NULL)"
                " ON CONFLICT (participant) DO NOTHING",
                rows,
            )
        self._kept.update(dict.fromkeys(fresh))
        excess = len(self._kept) - KEPT
        if excess > 0:
            for oldest in list(islice(self._kept, excess)):
                del self._kept[oldest]

    def close(self) -> None:
        self._conn.close()

    def national_id(self, participant: str) -> str | None:
        with psycopg.connect(self._database_url) as conn:
            row = conn.execute(
                "SELECT national_id FROM intake.vault WHERE participant = %s", (participant,)
            ).fetchone()
        return None if row is None else self._fernet.decrypt(bytes(row[0])).decode()

    def rotate(self, done: Callable[[int], None] = lambda rows: None) -> Rotation:
        """Re-encrypt under the first key every national id that another key encrypted, a
        batch a transaction, in the participants' order; `done` hears how many rows each
        batch went through. Intake may go on storing meanwhile, with the same keys: a row
        it stored under an older key behind the rotation is found by the next run, which
        is why a rotation is over only once a run re-encrypts none. `Unreadable` if a row
        is under none of the keys."""
        rotation = Rotation()
        after = ""
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            while rows := conn.execute(
                "SELECT participant, national_id FROM intake.vault WHERE participant > %s"
                " ORDER BY participant LIMIT %s",
                (after, ROTATE_BATCH),
            ).fetchall():
                fresh = []
                for participant, token in rows:
                    if self._current(bytes(token)):
                        rotation.current += 1
                        continue
                    try:
                        fresh.append((self._fernet.rotate(bytes(token)), participant))
                    except InvalidToken:
                        raise Unreadable(participant, rotation) from None
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE intake.vault SET national_id = %s WHERE participant = %s", fresh
                    )
                rotation.rotated += len(fresh)
                after = rows[-1][0]
                done(len(rows))
        return rotation

    def count(self) -> int:
        """How many people the vault holds."""
        with psycopg.connect(self._database_url) as conn:
            row = conn.execute("SELECT count(*) FROM intake.vault").fetchone()
        return int(row[0]) if row else 0

    def _current(self, token: bytes) -> bool:
        """Whether the first key encrypted `token`."""
        try:
            self._newest.decrypt(token)
        except InvalidToken:
            return False
        return True


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
