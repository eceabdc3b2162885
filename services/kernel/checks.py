"""Who asked a source service what became of whose events (DESIGN.md, privacy: every
read of identifiable data is itself recorded).

`Sources/CheckEvents` is asked about events by their id and the person's national id, and
its answer says what the service knows of that person's event. Each question is written,
before it is answered, to the service's own schema: when, the client that asked (its
token's name), and the person asked about, by pseudonym. One row a person a question.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from psycopg import sql

from services.kernel.connection import KeptConnection


class Checks(Protocol):
    def record(self, at: datetime, reader: str, participants: Iterable[str]) -> None: ...


class CheckLog:
    """`Checks` in `{schema}.event_checks`. Call `record` from one thread (the store's
    worker): it keeps one connection for it."""

    def __init__(self, database_url: str, schema: str) -> None:
        self._conn = KeptConnection(database_url)
        table = sql.Identifier(schema, "event_checks")
        insert = "INSERT INTO {} (at, reader, participant) VALUES (%s, %s, %s)"
        self._insert = sql.SQL(insert).format(table)
        self._conn.get().execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}"
                " (at timestamptz NOT NULL, reader text NOT NULL, participant text NOT NULL)"
            ).format(table)
        )

    def record(self, at: datetime, reader: str, participants: Iterable[str]) -> None:
        conn = self._conn.get()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(self._insert, [(at, reader, p) for p in participants])

    def close(self) -> None:
        self._conn.close()
