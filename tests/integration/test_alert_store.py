"""The alerts as stored: one write of many changes, and the read of a judging pass, against a
real PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest

from services.kernel.embedded import Servers
from services.outcomes import alerts, schema
from services.outcomes.alerts import Change, StoredAlert
from services.outcomes.application import open_pool
from tests.support import fresh_database

RAISED = datetime(2025, 3, 1, 9, tzinfo=UTC)


def alert(alert_id: str, participant: str) -> StoredAlert:
    return StoredAlert(
        alert_id, participant, "HANDOVER_GAP", "m-1", "c-anna", "nav-1", RAISED, "open", None, None
    )


async def alert_store(servers: Servers, connections: int) -> asyncpg.Pool:
    """A pool of `connections` on a fresh database holding outcomes' alert tables."""
    pool = await asyncpg.create_pool(
        fresh_database(servers.database_url), min_size=connections, max_size=connections
    )
    async with pool.acquire() as conn:
        await conn.execute("CREATE SCHEMA outcomes")
    await schema.create_tables(pool)
    return pool


@pytest.mark.servers
async def test_one_write_keeps_each_alerts_last_state_and_logs_every_change_in_order(
    real_servers: Servers,
) -> None:
    pool = await alert_store(real_servers, connections=1)
    async with pool, pool.acquire() as conn:
        earlier = alert("a-earlier", "p-1")
        await alerts.write(conn, [("raised", earlier)])

        resolved_at = RAISED + timedelta(days=3)
        both = alert("a-both", "p-2")
        changes = [
            # Raised and resolved in one pass, as a late end can make a gap.
            ("raised", both),
            ("resolved", replace(both, status="resolved", resolved_at=RAISED, resolution="x")),
            (
                "resolved",
                replace(earlier, status="resolved", resolved_at=resolved_at, resolution="y"),
            ),
            ("raised", alert("a-new", "p-1")),
        ]
        await alerts.write(conn, changes)

        stored = await alerts.current(conn, ["p-1", "p-2"])
        assert stored == {
            "a-earlier": changes[2][1],
            "a-both": changes[1][1],
            "a-new": changes[3][1],
        }
        log = await conn.fetch("SELECT alert_id, change FROM outcomes.alert_log ORDER BY cursor")
        assert [tuple(row) for row in log] == [
            ("a-earlier", "raised"),
            ("a-both", "raised"),
            ("a-both", "resolved"),
            ("a-earlier", "resolved"),
            ("a-new", "raised"),
        ]


@pytest.mark.servers
async def test_a_judging_pass_reads_the_alerts_of_its_people_along_the_index(
    real_servers: Servers,
) -> None:
    # With PostgreSQL's default cost of a random read, the planner chose to read every
    # alert ever raised to find those of one batch of people (65,000 of them here).
    pool = await open_pool(fresh_database(real_servers.database_url))
    async with pool, pool.acquire() as conn:
        await conn.execute("CREATE SCHEMA outcomes")
        await conn.execute(schema.SCHEMA_SQL)
        await conn.execute(
            """INSERT INTO outcomes.alerts (alert_id, participant, rule, subject, raised_at,
                 status)
               SELECT 'a-' || n, 'p-' || n / 2, 'HANDOVER_GAP', 'm-1', $1, 'open'
               FROM generate_series(1, 65000) AS n""",
            RAISED,
        )
        await conn.execute("ANALYZE outcomes.alerts")
        people = [f"p-{n}" for n in range(1, 32_500, 65)]  # 500 of them, 1,000 alerts

        assert len(await alerts.current(conn, people)) == 1_000
        # The plan of the very statement `current` ran (asyncpg prepared it), for them.
        name = await conn.fetchval(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT%outcomes.alerts%'"
        )
        plan = await conn.fetch(f"""EXPLAIN EXECUTE "{name}"('{{{",".join(people)}}}')""")
    assert not [row[0] for row in plan if "Seq Scan" in row[0]]


async def _waits_for_a_lock(watcher: alerts.Connection, pid: int, task: asyncio.Task[None]) -> None:
    """Until the backend `pid` waits for a lock; fails if `task` ends first."""
    async with asyncio.timeout(30):
        while not task.done():
            waiting = await watcher.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("it did not wait for the transaction before it")


@pytest.mark.servers
async def test_an_acknowledgement_made_while_a_pass_judges_the_person_is_kept(
    real_servers: Servers,
) -> None:
    # The pass writes the alert's next state from what it read; an acknowledgement that
    # went in meanwhile would be overwritten (and one that read before the pass's write
    # would undo the pass's resolution), so each waits for the other.
    pool = await alert_store(real_servers, connections=3)
    async with pool, pool.acquire() as judge, pool.acquire() as coordinator:
        await alerts.write(judge, [("raised", alert("a-1", "p-1"))])

        async def acknowledge() -> None:  # as the Alerts API's AcknowledgeAlert
            async with coordinator.transaction():
                found = await alerts.find(coordinator, "a-1")
                assert found is not None
                acked_at = RAISED + timedelta(days=2)
                await alerts.write(coordinator, [alerts.acknowledged(found, "c-anna", acked_at)])

        async with judge.transaction():
            read = await alerts.current(judge, ["p-1"])
            acknowledging = asyncio.create_task(acknowledge())
            async with pool.acquire() as watcher:
                await _waits_for_a_lock(watcher, coordinator.get_server_pid(), acknowledging)
            closed = RAISED + timedelta(days=1)
            resolved = replace(
                read["a-1"], status="resolved", resolved_at=closed, resolution="journey_closed"
            )
            await alerts.write(judge, [("resolved", resolved)])
        await acknowledging

        kept = await alerts.find(judge, "a-1")
    assert kept is not None
    assert (kept.status, kept.resolution, kept.acknowledged_by) == (
        "resolved",
        "journey_closed",
        "c-anna",
    )


@pytest.mark.servers
async def test_the_log_is_committed_in_the_order_of_its_cursors(real_servers: Servers) -> None:
    # A watcher reads the log past the last cursor it saw: a change given a smaller cursor
    # but committed after a larger one would never reach it. So a second writer waits.
    pool = await alert_store(real_servers, connections=3)
    async with pool, pool.acquire() as judge, pool.acquire() as coordinator:

        async def acknowledge() -> None:
            async with coordinator.transaction():
                await alerts.write(coordinator, [("raised", alert("a-2", "p-2"))])

        async with judge.transaction():
            await alerts.write(judge, [("raised", alert("a-1", "p-1"))])
            second = asyncio.create_task(acknowledge())
            async with pool.acquire() as watcher:
                await _waits_for_a_lock(watcher, coordinator.get_server_pid(), second)
        await second

        log = await judge.fetch("SELECT alert_id FROM outcomes.alert_log ORDER BY cursor")
    assert [row["alert_id"] for row in log] == ["a-1", "a-2"]


async def _listeners(pool: asyncpg.Pool) -> list[int]:
    """The backends LISTENing for the alert feed."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE query = $1", f'LISTEN "{alerts.CHANNEL}"'
        )
    return [row["pid"] for row in rows]


@asynccontextmanager
async def started(feed: alerts.AlertFeed) -> AsyncIterator[alerts.AlertFeed]:
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()


async def what_anna_gets(
    feed: alerts.AlertFeed, pool: asyncpg.Pool, change: Callable[[Any], Awaitable[object]]
) -> Change:
    """What a watcher of c-anna, waiting already, gets once `change` is made."""
    changes = feed.watch(coordinator="c-anna", org_unit=None, after=0)
    waiting = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.2)  # the watcher found nothing and waits
    async with pool.acquire() as conn:
        await change(conn)
    try:
        return await asyncio.wait_for(waiting, 5)
    finally:
        await changes.aclose()


async def raise_a_1(conn: Any) -> None:
    await alerts.write(conn, [("raised", alert("a-1", "p-1"))])


@pytest.mark.servers
async def test_the_feed_listens_again_when_it_loses_its_connection(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The feed does not read the log by itself in this test: only a notification wakes it.
    monkeypatch.setattr(alerts.AlertFeed, "LOOK_AGAIN", 600.0)
    monkeypatch.setattr(alerts.AlertFeed, "LISTEN_AGAIN", 0.1)
    pool = await alert_store(real_servers, connections=4)
    async with pool, started(alerts.AlertFeed(pool)) as feed:
        [first] = await _listeners(pool)
        async with pool.acquire() as conn:  # as PostgreSQL does when it restarts
            await conn.execute("SELECT pg_terminate_backend($1)", first)
        for _ in range(100):
            again = await _listeners(pool)
            if again and again != [first]:
                break
            await asyncio.sleep(0.05)
        assert again
        assert first not in again

        change = await what_anna_gets(feed, pool, raise_a_1)
    assert (change.change, change.alert.alert_id) == ("raised", "a-1")


@pytest.mark.servers
async def test_the_feed_reads_the_log_without_a_notification(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts.AlertFeed, "LOOK_AGAIN", 0.2)
    pool = await alert_store(real_servers, connections=3)

    async def without_notify(conn: Any) -> None:  # a change whose NOTIFY was lost
        await conn.execute(
            "INSERT INTO outcomes.alert_log (alert_id, change, coordinator, alert)"
            " VALUES ('a-1', 'raised', 'c-anna', $1::jsonb)",
            alert("a-1", "p-1").as_json(),
        )

    async with pool, started(alerts.AlertFeed(pool)) as feed:
        change = await what_anna_gets(feed, pool, without_notify)
    assert change.alert.alert_id == "a-1"


@pytest.mark.servers
async def test_the_feed_reads_on_after_a_read_that_failed(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every watcher waits on the feed's one reader: a failure must not end it.
    monkeypatch.setattr(alerts.AlertFeed, "LOOK_AGAIN", 0.2)
    pool = await alert_store(real_servers, connections=3)
    feed = alerts.AlertFeed(pool)
    reads = feed._wake_recipients
    failures = [RuntimeError("a bug")]

    async def failing_once() -> None:
        if failures:
            raise failures.pop()
        await reads()

    monkeypatch.setattr(feed, "_wake_recipients", failing_once)
    async with pool, started(feed):
        change = await what_anna_gets(feed, pool, raise_a_1)
    assert change.alert.alert_id == "a-1"
    assert failures == []


@pytest.mark.servers
async def test_watchers_of_one_recipient_are_woken_together_and_forgotten_when_gone(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts.AlertFeed, "LOOK_AGAIN", 600.0)
    pool = await alert_store(real_servers, connections=4)
    feed = alerts.AlertFeed(pool)
    seen: dict[str, list[str]] = {"anna-1": [], "anna-2": [], "bo": []}

    async def stream(client: str) -> None:  # as WatchAlerts serves one client
        coordinator = f"c-{client.split('-')[0]}"
        async for change in feed.watch(coordinator=coordinator, org_unit=None, after=0):
            seen[client].append(change.alert.alert_id)

    async with pool, started(feed):
        streams = [asyncio.create_task(stream(client)) for client in seen]
        await asyncio.sleep(0.2)  # all found nothing and wait
        assert set(feed._waiting) == {("coordinator", "c-anna"), ("coordinator", "c-bo")}
        async with pool.acquire() as conn:
            await raise_a_1(conn)
        for _ in range(100):
            if seen["anna-1"] and seen["anna-2"]:
                break
            await asyncio.sleep(0.05)
        assert seen == {"anna-1": ["a-1"], "anna-2": ["a-1"], "bo": []}

        for task in streams:  # the clients go away
            task.cancel()
        await asyncio.wait(streams)
        del streams, task  # no one holds a finished call
        gc.collect()
        # Nothing is kept for a recipient no one watches any more.
        assert set(feed._waiting) == set()


class _CountingPool:
    """The real pool, counting the connections taken from it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.taken = 0

    def acquire(self) -> Any:
        self.taken += 1
        return self.pool.acquire()


@pytest.mark.servers
async def test_a_change_wakes_only_the_watchers_of_its_recipient(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Thousands of coordinators may watch at once: one alert must not make each of them
    # read the log again.
    monkeypatch.setattr(alerts.AlertFeed, "LOOK_AGAIN", 600.0)
    pool = await alert_store(real_servers, connections=4)
    counting = _CountingPool(pool)
    feed = alerts.AlertFeed(cast(asyncpg.Pool, counting))
    async with pool, started(feed):
        try:
            watchers = [feed.watch(coordinator=f"c-{n}", org_unit=None, after=0) for n in range(50)]
            team = feed.watch(coordinator=None, org_unit="nav-1", after=0)
            waiting = [asyncio.ensure_future(anext(each)) for each in [*watchers, team]]
            for _ in range(100):
                # Started: the last cursor, then LISTEN and a first read; and a read each.
                if counting.taken == 3 + len(waiting):
                    break
                await asyncio.sleep(0.05)
            assert counting.taken == 3 + len(waiting)

            async with pool.acquire() as conn:
                await alerts.write(
                    conn, [("raised", replace(alert("a-1", "p-1"), coordinator="c-7"))]
                )
            change = await asyncio.wait_for(waiting[7], 5)
            assert change.alert.alert_id == "a-1"
            await asyncio.sleep(0.3)  # time enough for any other watcher to read again
            # The feed read the log once, and c-7's watcher its own lines once.
            assert counting.taken == 3 + len(waiting) + 2
            assert not any(each.done() for n, each in enumerate(waiting) if n != 7)

            async with pool.acquire() as conn:  # now a change in the team's queue
                await alerts.write(
                    conn, [("raised", replace(alert("a-2", "p-2"), coordinator=None))]
                )
            change = await asyncio.wait_for(waiting[-1], 5)
            assert change.alert.alert_id == "a-2"
        finally:
            for each in waiting:
                each.cancel()


@pytest.mark.servers
async def test_pages_of_a_listing_hold_every_alert_once_even_when_raise_times_tie(
    real_servers: Servers,
) -> None:
    pool = await alert_store(real_servers, connections=1)
    async with pool, pool.acquire() as conn:
        stored = [
            replace(alert(f"a-{n}", f"p-{n}"), raised_at=RAISED + timedelta(days=n // 3))
            for n in range(7)
        ]  # raised on three days, three of them at each of the first two instants
        await alerts.write(conn, [("raised", a) for a in stored])
        pages: list[list[str]] = []
        before = None
        while True:
            where = alerts.Filter(coordinator="c-anna", org_unit=None, limit=2, before=before)
            page = await alerts.listed(conn, where)
            pages.append([a.alert_id for a in page])
            if len(page) < 2:
                break
            before = (page[-1].raised_at, page[-1].alert_id)

    newest_first = sorted(stored, key=lambda a: (a.raised_at, a.alert_id), reverse=True)
    assert [a for page in pages for a in page] == [a.alert_id for a in newest_first]
    assert [len(page) for page in pages] == [2, 2, 2, 1]
