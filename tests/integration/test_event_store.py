"""The event stores on PostgreSQL: a batch of many megabytes, many people read at once, and
the rule engine's read of the log planned for the log as it is."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.kernel.embedded import Servers
from services.kernel.store import application_env, create_schema
from services.outcomes.application import JourneyStore, facts_after, open_pool
from tests.support import EVERYONE, deliveries, fresh_database


def store(database_url: str, cache_size: int) -> JourneyStore:
    return JourneyStore(env=application_env(database_url, "outcomes", cache_size=cache_size))


@pytest.mark.servers
@pytest.mark.timeout(120)
def test_a_batch_of_many_megabytes_is_stored_whole_and_in_order(real_servers: Servers) -> None:
    # Inserted in statements of bounded size: one pipelined INSERT of several megabytes
    # has been seen never to complete with psycopg 3.3 (BENCHMARKS.md, findings).
    database_url = fresh_database(real_servers.database_url)
    create_schema(database_url, "outcomes")
    batch = deliveries(people=4_000, facts_each=2, note_bytes=2_000)
    assert sum(len(d.event["data"]["reason"]) for d in batch) > 15_000_000
    writer = store(database_url, cache_size=100)
    try:
        assert writer.ingest(EVERYONE, batch) == len(batch)
    finally:
        writer.close()

    facts = asyncio.run(stored_facts(database_url))
    assert facts == [(d.event["participant"], d.event["recorded_at"]) for d in batch]


async def stored_facts(database_url: str) -> list[tuple[str, str]]:
    """(participant, recorded_at) of every fact in the log, as the rule engine reads them."""
    pool = asyncpg.create_pool(database_url, min_size=1, max_size=1)
    async with pool, pool.acquire() as conn:
        rows = await facts_after(conn, 0, limit=1_000_000)
    return [(participant, recorded_at) for _, participant, _, recorded_at in rows]


@pytest.mark.servers
def test_people_read_together_have_each_their_own_facts(real_servers: Servers) -> None:
    database_url = fresh_database(real_servers.database_url)
    create_schema(database_url, "outcomes")
    batch = deliveries(people=50, facts_each=3, note_bytes=10)
    writer = store(database_url, cache_size=100)
    try:
        writer.ingest(EVERYONE, batch)
    finally:
        writer.close()

    reader = store(database_url, cache_size=100)  # nothing cached: one read for everyone
    try:
        journeys = reader.journeys([f"person-{n}" for n in range(50)] + ["nobody"])
    finally:
        reader.close()

    for n in range(50):
        expected = [d.event["event_id"] for d in batch if d.event["participant"] == f"person-{n}"]
        assert [f.event_id for f in journeys[f"person-{n}"].facts] == expected
    assert not journeys["nobody"].facts


@pytest.mark.servers
def test_the_engines_read_of_the_log_is_planned_for_each_run(real_servers: Servers) -> None:
    # PostgreSQL gives a statement prepared five times a generic plan fitted to the tables
    # as they were: for `facts_after` on a store that was small, a scan of the whole log.
    database_url = fresh_database(real_servers.database_url)
    create_schema(database_url, "outcomes")
    writer = store(database_url, cache_size=100)
    try:
        writer.ingest(EVERYONE, deliveries(people=10, facts_each=1, note_bytes=10))
    finally:
        writer.close()

    async def plans() -> tuple[int, int]:
        pool = await open_pool(database_url)
        async with pool, pool.acquire() as conn:
            for _ in range(8):
                await facts_after(conn, 0, limit=5)
            # This statement is prepared too, and names the log as well.
            row = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%journeystore_events%'"
                " AND statement NOT LIKE '%pg_prepared_statements%'"
            )
        assert row is not None
        return row["generic_plans"], row["custom_plans"]

    assert asyncio.run(plans()) == (0, 8)
