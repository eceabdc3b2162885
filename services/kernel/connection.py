"""A connection kept by one thread."""

from __future__ import annotations

from typing import Any

import psycopg


class KeptConnection:
    """One autocommit connection for the statements of one thread (a service's store
    worker), opened when first needed and again if it broke."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def get(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._database_url, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
