"""A read of the journey store for a study (`los replay --store`, `los export --store`)
is recorded before it reads, and does not read where it cannot be recorded as this
version records it."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from services.kernel.embedded import Servers
from services.outcomes import schema
from services.outcomes.history import NoStore, begin
from tests.support import fresh_database

STUDY = "a-study's-own-key-of-32-bytes-or-more"


def a_store(servers: Servers) -> str:
    """A database with a journey store (of one event, notification 7) and nothing else."""
    database_url = fresh_database(servers.database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA outcomes")
        conn.execute("CREATE TABLE outcomes.journeystore_events (notification_id bigint)")
        conn.execute("INSERT INTO outcomes.journeystore_events VALUES (7)")
    return database_url


@pytest.mark.servers
def test_a_record_of_reads_from_before_exports_is_not_written_to(real_servers: Servers) -> None:
    database_url = a_store(real_servers)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(  # as the version before `los export --store` made it
            "CREATE TABLE outcomes.history_reads"
            " (at timestamptz, reader text, until timestamptz, study text)"
        )

    with pytest.raises(NoStore, match="missing or old: start outcomes once on this version"):
        begin(database_url, datetime.now(UTC), STUDY, "export")

    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM outcomes.history_reads").fetchone() == (0,)


@pytest.mark.servers
def test_each_read_is_recorded_with_its_command(real_servers: Servers) -> None:
    database_url = a_store(real_servers)
    until = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(NoStore, match="missing or old"):
        begin(database_url, until, STUDY, "replay")  # no record of reads at all

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(schema.SCHEMA_SQL)  # the tables outcomes makes at start
    assert begin(database_url, until, STUDY, "export") == 7

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT until, command FROM outcomes.history_reads").fetchall()
    assert rows == [(until, "export")]
