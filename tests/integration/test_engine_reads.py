"""How the rule engine takes in new facts, on a real PostgreSQL: it reads the journey
store's log up to its end, then takes each ingested batch as ingest hands it over, and
reads the log again when it falls behind; every fact's participant is due either way,
written with the engine's position before it next judges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.kernel.embedded import Servers
from services.kernel.settings import Settings
from services.kernel.store import Worker, application_env, create_schema
from services.outcomes import engine, schema
from services.outcomes.application import Delivery, JourneyStore, facts_after, open_pool
from services.outcomes.engine import RuleEngine
from services.outcomes.ingest import IngestProgress
from services.outcomes.owner import Owner
from tests.support import EVERYONE, deliveries, fresh_database

pytestmark = pytest.mark.servers


@dataclass
class Engine:
    rules: RuleEngine
    store: JourneyStore
    worker: Worker
    pool: asyncpg.Pool
    progress: IngestProgress
    settings: Settings
    reads: list[int]  # the position each read of the log started after

    async def ingest(self, batch: list[Delivery]) -> None:
        await self.worker.run(self.store.ingest, EVERYONE, batch)
        self.progress.ingested = batch[-1].sequence

    async def due(self) -> set[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT participant FROM outcomes.deadlines")
        return {row["participant"] for row in rows}


@asynccontextmanager
async def rule_engine(
    servers: Servers, monkeypatch: pytest.MonkeyPatch, catch_up_judging: timedelta = timedelta(0)
) -> AsyncIterator[Engine]:
    """An engine on a fresh store; by default it judges, and so writes who is due, every
    step (in service, at most once a `catch_up_judging` while there is a backlog)."""
    database_url = fresh_database(servers.database_url)
    create_schema(database_url, "outcomes")
    store = JourneyStore(env=application_env(database_url, "outcomes", cache_size=1_000))
    worker = Worker("outcomes")
    pool = await open_pool(database_url)
    await schema.create_tables(pool)
    reads: list[int] = []

    async def counted(conn: Any, after: int, limit: int) -> list[asyncpg.Record]:
        reads.append(after)
        return await facts_after(conn, after, limit)

    monkeypatch.setattr(engine, "facts_after", counted)
    progress = IngestProgress()
    settings = Settings(database_url=database_url, batch_size=50, catch_up_judging=catch_up_judging)
    rules = RuleEngine(pool, store, worker, settings, progress, EVERYONE)
    try:
        yield Engine(rules, store, worker, pool, progress, settings, reads)
    finally:
        await pool.close()
        worker.close()
        store.close()


def participants(batch: list[Delivery]) -> set[str]:
    return {delivery.event["participant"] for delivery in batch}


async def run_until_due(e: Engine, rules: RuleEngine, expected: set[str]) -> None:
    """Run `rules` until the participants due are `expected` (10 s at most), then stop."""
    running = asyncio.create_task(rules.run())
    try:
        for _ in range(200):
            if await e.due() == expected:
                break
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        with suppress(asyncio.CancelledError):
            await running


async def test_after_reading_the_log_to_its_end_the_engine_takes_what_ingest_hands_over(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = deliveries(people=40, facts_each=3, note_bytes=10)
    before, after = facts[:70], facts[70:]
    async with rule_engine(real_servers, monkeypatch) as e:
        await e.ingest(before)  # ingested before the engine ran
        while await e.rules.step():
            pass
        assert await e.due() == participants(before)
        assert len(e.reads) == 2  # 50 facts a read: the second found the end
        for start in range(0, len(after), 25):
            await e.ingest(after[start : start + 25])
            await e.rules.step()
        assert await e.due() == participants(facts)
        assert len(e.reads) == 2  # not read back
        assert e.rules.state.position == await e.worker.run(e.store.recorder.max_notification_id)


async def test_an_engine_that_falls_behind_reads_the_log_again(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "HANDED_OVER", 2)
    facts = deliveries(people=40, facts_each=1, note_bytes=10)
    async with rule_engine(real_servers, monkeypatch) as e:
        await e.ingest(facts[:5])
        await e.rules.step()
        assert e.reads == [0]
        for start in range(5, 40, 5):  # seven batches before the engine steps again
            await e.ingest(facts[start : start + 5])
        await e.rules.step()
        await e.rules.step()
        assert await e.due() == participants(facts)
        assert len(e.reads) == 2


async def test_facts_taken_in_and_not_yet_written_are_read_again_after_a_restart(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = deliveries(people=20, facts_each=1, note_bytes=10)
    first, second = facts[:10], facts[10:]
    async with rule_engine(real_servers, monkeypatch, timedelta(hours=1)) as e:
        await e.ingest(first)
        await e.rules.step()  # judges, writing who is due and its position
        written = e.rules.state.position
        await e.ingest(second)
        await e.rules.step()  # a backlog, judged within the hour: takes in, writes nothing
        assert e.rules.state.position > written
        assert await e.due() == participants(first)
        # The engine stops here (a crash); a new one goes on from what was written.
        restarted = RuleEngine(e.pool, e.store, e.worker, e.settings, e.progress, EVERYONE)
        await run_until_due(e, restarted, participants(facts))
        assert await e.due() == participants(facts)
        assert e.reads[-1] == written


async def test_with_more_due_than_a_batch_the_engine_judges_the_most_recently_due_first(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Their journeys are the likeliest to be in the cache still (bench/findings.md, 22).
    facts = deliveries(people=60, facts_each=1, note_bytes=10)
    for n, delivery in enumerate(facts):  # every source heard from, so the clock moves
        delivery.event["service"] = ("intake", "journey", "employer")[n % 3]
    async with rule_engine(real_servers, monkeypatch) as e:
        await e.rules.step()  # the log read to its end: what is ingested is handed over
        await e.ingest(facts)
        await e.rules.step()  # takes in all 60, judges 50 (the batch size)
        clock = e.rules.state.clock
        assert clock is not None
        due = [d for d in facts if datetime.fromisoformat(d.event["recorded_at"]) <= clock]
        assert len(due) > 50
        async with e.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT participant FROM outcomes.deadlines WHERE due_at <= $1", clock
            )
        assert {row["participant"] for row in rows} == participants(due[: len(due) - 50])


async def test_engines_sharing_the_partitions_take_in_their_own_people_from_where_one_got(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = deliveries(people=40, facts_each=2, note_bytes=10)
    before, after = facts[:40], facts[40:]
    halves = [Owner.of(Settings(outcomes_instances=2, outcomes_instance=i)) for i in (0, 1)]
    async with rule_engine(real_servers, monkeypatch, timedelta(hours=1)) as e:
        await e.ingest(before)
        await e.rules.step()  # one instance for every partition writes who is due
        written = e.rules.state.position
        assert await e.due() == participants(before)
        async with e.pool.acquire() as conn:
            await conn.execute("DELETE FROM outcomes.deadlines")  # to see whom they write
        # Then two instances share the partitions (one after the other here), and more
        # facts come.
        await e.ingest(after)
        for n, owner in enumerate(halves):
            reads = len(e.reads)
            instance = RuleEngine(e.pool, e.store, e.worker, e.settings, e.progress, owner)
            expected = {p for p in participants(after) if any(h.owns(p) for h in halves[: n + 1])}
            await run_until_due(e, instance, expected)
            assert await e.due() == expected
            assert e.reads[reads] == written, "from where the instance before it got"
        async with e.pool.acquire() as conn:
            rows = await conn.fetch("SELECT participant, partition FROM outcomes.deadlines")
            names = {row["id"] for row in await conn.fetch("SELECT id FROM outcomes.rule_state")}
    assert {row["participant"] for row in rows if halves[0].owns(row["participant"])}
    assert all(
        row["partition"] in next(h for h in halves if h.owns(row["participant"])).partitions
        for row in rows
    )
    assert names == {"outcomes", halves[0].name, halves[1].name}
