"""Where each service keeps its events: the `eventsourcing` library on PostgreSQL.

Every service has its own schema in the database named by `DATABASE_URL`; services never
read each other's tables. `eventsourcing` is synchronous (psycopg 3), so services call
their application from one worker thread (`Worker`), which is also the single writer
the library's table lock wants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

P = ParamSpec("P")
T = TypeVar("T")


def application_env(database_url: str, schema: str, *, cache_size: int) -> dict[str, str]:
    """The environment an `eventsourcing` Application needs to store in `schema`."""
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_SCHEMA": schema,
        # Keep the process recorder's Tracking rows (DESIGN.md, pitfalls).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "POSTGRES_POOL_SIZE": "4",
        "CREATE_TABLE": "y",
        "AGGREGATE_CACHE_MAXSIZE": str(cache_size),
        # One writer per application (DESIGN.md), so a cached aggregate is never stale:
        # no query to fast-forward it on every get (measured 1.5x on the journey store).
        "AGGREGATE_CACHE_FASTFORWARD": "n",
    }


def create_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


class Worker:
    """One thread for one synchronous application: calls run in order, off the event loop."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
