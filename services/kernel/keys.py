"""Each person's data key: what lets their history be erased (DESIGN.md, privacy).

A source service seals every event it takes with the key of its person (AES-256-GCM,
their pseudonym as associated data), and the sealed event is what its store keeps, what
the stream carries and what outcomes' journey store keeps. Beside it, in clear, is only
what routes, deduplicates and orders it: the pseudonym, the event id, the service, its
type (in the stream's subject) and, in the journey store, `recorded_at`.

`los erase` deletes the person's key and notes when they were erased (`keys.people`):
from then on nothing sealed for them can be read, anywhere, without rewriting any log,
and no source service takes another event about them. A reader that meets a sealed
event whose key is gone leaves the person out (`Erased`).

The keys are kept where the events are: in the schema `keys` of the services' database
(`StoredKeys`), the one table every service reads and adds to; for an application on the
library's in-memory recorder, in memory (`Keys`). A batch asks for
its people's keys once (`for_writing`, `for_reading`), and an aggregate reads its events
back with the keys a `with opened(keys)` block holds.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

import pybase64
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.kernel.connection import KeptConnection

NONCE = 12  # bytes, AES-GCM's own
# An erased person keeps their row, without a key: a key made for them at the same
# moment conflicts with it rather than coming back.
SCHEMA = """
CREATE SCHEMA IF NOT EXISTS keys;
CREATE TABLE IF NOT EXISTS keys.people (
    participant text PRIMARY KEY,
    key bytea,
    erased_at timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
"""
# Taken around the schema's creation, which several services may start at once.
SCHEMA_LOCK = 0x4C6F734B  # "LosK"


# What a person had when they were erased.
KEY, ERASED, NOTHING = "key", "erased", "nothing"


class Erased(Exception):
    """Something sealed for a person whose key is gone: they were erased."""


def seal(key: AESGCM, participant: str, plaintext: bytes) -> str:
    """`plaintext` sealed for `participant` with their key: nonce and ciphertext, base64."""
    nonce = os.urandom(NONCE)
    sealed = nonce + key.encrypt(nonce, plaintext, participant.encode())
    return pybase64.b64encode_as_string(sealed)


def unseal(key: AESGCM, participant: str, sealed: str) -> bytes:
    """What `seal` sealed for `participant` (`cryptography`'s `InvalidTag` if it was
    sealed for someone else, or with another key, or changed)."""
    raw = pybase64.b64decode(sealed)
    return key.decrypt(raw[:NONCE], raw[NONCE:], participant.encode())


_OPENED: ContextVar[Mapping[str, AESGCM] | None] = ContextVar("opened", default=None)


@contextmanager
def opened(keys: Mapping[str, AESGCM]) -> Iterator[None]:
    """Seal and unseal with `keys` (by pseudonym) inside the block (`sealed_for`,
    `opened_for`): how an aggregate reached from the library gets at its person's key."""
    token = _OPENED.set(keys)
    try:
        yield
    finally:
        _OPENED.reset(token)


def _key(participant: str) -> AESGCM:
    key = (_OPENED.get() or {}).get(participant)
    if key is None:
        raise Erased("a sealed event whose person's key is gone")
    return key


def sealed_for(participant: str, plaintext: bytes) -> str:
    """`seal` with the person's key among those `opened`; `Erased` if it is not."""
    return seal(_key(participant), participant, plaintext)


def opened_for(participant: str, sealed: str) -> bytes:
    """`unseal` with the person's key among those `opened`; `Erased` if it is not."""
    return unseal(_key(participant), participant, sealed)


class Keys:
    """People's keys in memory: for an application on the library's in-memory recorder."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._erased: set[str] = set()

    def for_writing(self, participants: Collection[str]) -> dict[str, AESGCM]:
        """The keys of these people, made for those who have none yet; an erased person
        gets none."""
        for participant in set(participants) - self._erased:
            self._keys.setdefault(participant, AESGCM.generate_key(256))
        return self.for_reading(participants)

    def for_reading(self, participants: Collection[str]) -> dict[str, AESGCM]:
        """The keys these people have (none for an erased person, or one not known)."""
        return self.read(participants)[0]

    def read(self, participants: Collection[str]) -> tuple[dict[str, AESGCM], set[str]]:
        """The keys these people have, and which of them were erased."""
        keys = {p: AESGCM(self._keys[p]) for p in participants if p in self._keys}
        return keys, self._erased & set(participants)

    def erase(self, participant: str, at: datetime) -> str:
        """Delete the person's key and note when they were erased; what they had before:
        `KEY`, `ERASED` (erased already) or `NOTHING` (never written about)."""
        if participant in self._erased:
            return ERASED
        self._erased.add(participant)
        return KEY if self._keys.pop(participant, None) is not None else NOTHING

    def close(self) -> None:
        """Nothing to close."""


class StoredKeys(Keys):
    """People's keys in the schema `keys` (`create_keys` makes it), from one thread."""

    def __init__(self, database_url: str) -> None:
        self._conn = KeptConnection(database_url)

    def for_writing(self, participants: Collection[str]) -> dict[str, AESGCM]:
        people = set(participants)
        found, erased = self.read(people)
        missing = sorted(people - found.keys() - erased)
        if not missing:  # as for nearly every batch: people have keys from their first event
            return found
        # Made in one order by every service, so none deadlocks another. The INSERT waits
        # for one that another service is making to commit, and passes it over; the
        # keys of those it passed over are read again after. One made as the person is
        # erased conflicts with their row, and is left out.
        made = self._conn.get().execute(
            """
            INSERT INTO keys.people (participant, key)
            SELECT * FROM unnest(%s::text[], %s::bytea[]) AS made(participant, key)
            ORDER BY participant
            ON CONFLICT (participant) DO NOTHING
            RETURNING participant, key
            """,
            (missing, [AESGCM.generate_key(256) for _ in missing]),
        )
        found |= {participant: AESGCM(key) for participant, key in made}
        if len(found) < len(people) - len(erased):
            found |= self.for_reading([p for p in missing if p not in found])
        return found

    def read(self, participants: Collection[str]) -> tuple[dict[str, AESGCM], set[str]]:
        rows = self._conn.get().execute(
            "SELECT participant, key FROM keys.people WHERE participant = ANY(%s)",
            (list(set(participants)),),
        )
        found: dict[str, AESGCM] = {}
        erased: set[str] = set()
        for participant, key in rows:
            if key is None:
                erased.add(participant)
            else:
                found[participant] = AESGCM(key)
        return found, erased

    def erase(self, participant: str, at: datetime) -> str:
        conn = self._conn.get()
        with conn.transaction():
            row = conn.execute(
                "SELECT key IS NOT NULL FROM keys.people WHERE participant = %s FOR UPDATE",
                (participant,),
            ).fetchone()
            if row is not None and not row[0]:
                return ERASED
            conn.execute(
                """
                INSERT INTO keys.people (participant, key, erased_at) VALUES (%s, NULL, %s)
                ON CONFLICT (participant) DO UPDATE SET key = NULL, erased_at = EXCLUDED.erased_at
                """,
                (participant, at),
            )
        return NOTHING if row is None else KEY

    def close(self) -> None:
        self._conn.close()


def create_keys(database_url: str) -> None:
    """The key store's table, if it is not there yet (made by an administrator, the
    services need no right to create it: deploy/README.md)."""
    with KeptConnection(database_url).get() as conn:
        if conn.execute("SELECT to_regclass('keys.people')").fetchone() != (None,):
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(SCHEMA)
