"""DESIGN.md's scale-out: outcomes instances share the stream's partitions with no loss,
duplicate or reordering per person. A cohort is imported in three parts: while one
instance owns every partition; after two have taken over from it; and after one of them
has stopped, the other going on alone, before one instance takes everything over again.
Then the journey store holds each accepted event once, each person's in the order the
stream has them, and the alerts are those of the same import with one instance
throughout. And one partition has one running owner at a time."""

from __future__ import annotations

import asyncio
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import nats
import nats.errors
import orjson
import psycopg
import pytest

from services.cli.platform import Platform, start_service, stop, wait_healthy
from services.cohort import generate_cohort, write_jsonl
from services.kernel.bus import MSG_ID
from services.kernel.embedded import Servers, free_port
from services.kernel.settings import Settings, TlsSettings
from services.outcomes.owner import CLAIM_WAIT, Owner, Taken, claim, held
from tests.integration.test_crash_recovery import import_file, settle
from tests.integration.test_differential import alerts_in
from tests.support import bus_settings, events_on_the_stream, facts_recorded, fresh_database, los

PEOPLE = 600
HALVES = [Owner.of(Settings(outcomes_instances=2, outcomes_instance=n)) for n in (0, 1)]


@dataclass
class Run:
    accepted: int
    alerts: set[tuple[str, ...]]
    positions: dict[str, int]  # the journey store's Tracking rows
    in_stream: dict[str, list[str]]  # each person's event ids in the stream's order
    in_store: dict[str, list[str]]  # and in their journey's


@pytest.mark.servers
async def test_instances_take_over_from_each_other_with_no_loss_duplicate_or_reordering(
    real_servers: Servers, tmp_path: Path
) -> None:
    cohort = generate_cohort(PEOPLE, 7, start=date(2023, 1, 1), end=date(2025, 12, 31))
    third = len(cohort.events) // 3
    parts = [tmp_path / f"part-{n}.jsonl" for n in range(3)]
    for n, part in enumerate(parts):
        write_jsonl(part, cohort.events[n * third : (n + 1) * third if n < 2 else None])

    alone = await import_parts(real_servers, tmp_path / "alone", parts, shared=False)
    shared = await import_parts(real_servers, tmp_path / "shared", parts, shared=True)

    # Two took over from one, each its own share; then one of them stopped, the other
    # went on with its share, and one instance took over all the partitions from them,
    # each from where it had got.
    first, second = (shared.positions[owner.name] for owner in HALVES)
    assert first > second
    assert shared.positions["outcomes"] > second
    assert shared.accepted == alone.accepted
    assert sum(map(len, shared.in_store.values())) == shared.accepted, "each event, once"
    assert shared.in_store == shared.in_stream, "each person's events in the stream's order"
    # Facts of a later part, recorded long before, turn some alerts an earlier part
    # raised into late information: shared, as with one instance throughout.
    assert len(shared.alerts) > PEOPLE // 10
    assert shared.alerts == alone.alerts


async def import_parts(servers: Servers, folder: Path, parts: list[Path], shared: bool) -> Run:
    """Three files imported one after the other, each taken in before the next. Shared:
    two outcomes instances take over from the one before the second; the second of them
    stops before the third, which the first takes in alone; then one takes over again."""
    with los(servers, folder) as running:
        database_url = running.env["DATABASE_URL"]
        accepted = await import_file(running, parts[0], folder / "rejects-0.jsonl")
        await settle(running, accepted, datetime.now(UTC))
        extra = []
        if shared:
            extra = start_instances(running, folder / "two", 2)
            await refused_while_owned(running, folder)
        try:
            accepted += await import_file(running, parts[1], folder / "rejects-1.jsonl")
            await settled(database_url, accepted, datetime.now(UTC), 2 if shared else 1)
            if shared:
                stop(extra[0])  # its partitions wait in the stream
            accepted += await import_file(running, parts[2], folder / "rejects-2.jsonl")
            if shared:
                await drained(running, HALVES[0].consumer)
                start_instances(running, folder / "one-again", 1)
            await settled(database_url, accepted, datetime.now(UTC), 1)
            with psycopg.connect(database_url) as conn:
                alerts = alerts_in(conn)
            in_stream = await stream_order(running)
        finally:
            for process in extra:
                stop(process)
    return Run(accepted, alerts, tracked(database_url), in_stream, store_order(database_url))


async def drained(running: Platform, consumer: str) -> None:
    """Until the consumer has delivered and had acknowledged all it has."""
    settings = bus_settings(running.env)
    client = await nats.connect(running.env["NATS_URL"])
    try:
        for _ in range(300):
            info = await client.jetstream().consumer_info(settings.stream, consumer)
            if (info.num_pending, info.num_ack_pending) == (0, 0):
                return
            await asyncio.sleep(0.2)
    finally:
        await client.close()
    raise AssertionError(f"{consumer} did not drain")


def start_instances(
    running: Platform, folder: Path, instances: int
) -> list[subprocess.Popen[bytes]]:
    """`instances` outcomes instances in place of the one running (stopped first); the
    platform stops the first as its own, the others are returned."""
    stop(running.processes["outcomes"])
    processes = []
    for n in range(instances):
        port = free_port()
        env = running.env | {
            "LOS_OUTCOMES_INSTANCES": str(instances),
            "LOS_OUTCOMES_INSTANCE": str(n),
            "LOS_OUTCOMES_PORT": str(port),
        }
        log_dir = folder / f"instance-{n}"
        process = start_service("outcomes", env, log_dir)
        processes.append(process)
        wait_healthy("outcomes", f"127.0.0.1:{port}", process, log_dir, TlsSettings())
    running.processes["outcomes"] = processes[0]
    return processes[1:]


async def refused_while_owned(running: Platform, folder: Path) -> None:
    """A second instance 1 of 2 does not start while the first runs, and says why."""
    env = running.env | {
        "LOS_OUTCOMES_INSTANCES": "2",
        "LOS_OUTCOMES_INSTANCE": "1",
        "LOS_OUTCOMES_PORT": str(free_port()),
    }
    log_dir = folder / "instance-1-again"
    process = start_service("outcomes", env, log_dir)
    code = await asyncio.to_thread(process.wait, CLAIM_WAIT + 30)
    said = (log_dir / "outcomes.log").read_text()
    assert code == 1, said
    assert "is owned by another running outcomes instance" in said


@pytest.mark.servers
async def test_a_partition_is_claimed_by_one_instance_at_a_time(real_servers: Servers) -> None:
    database_url = fresh_database(real_servers.database_url)
    first = await claim(database_url, HALVES[0])
    try:
        with pytest.raises(Taken, match="partition 0 is owned by another running"):
            await claim(database_url, Owner.of(Settings()), wait=0.5)  # it owns them all
        other = await claim(database_url, HALVES[1], wait=0.5)
        await other.close()
        assert await held(first, HALVES[0])
    finally:
        await first.close()
    again = await claim(database_url, Owner.of(Settings()), wait=0.5)
    # Its session ended from the server's side (a failover, an administrator): it is
    # known not to hold them any more.
    killer = await asyncpg.connect(database_url)
    pid = again.get_server_pid()
    await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    for _ in range(100):  # the backend ends a moment after it is told to
        if not await killer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            break
        await asyncio.sleep(0.05)
    await killer.close()
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
        await held(again, Owner.of(Settings()))
    await again.close()


def tracked(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT application_name, notification_id FROM outcomes.journeystore_tracking"
        ).fetchall()
    return dict(rows)


async def settled(database_url: str, facts: int, since: datetime, instances: int) -> None:
    """Until the store holds `facts` facts and each instance has taken in its own and
    judged them, its clock past `since` with none of its people due."""
    owners = [
        Owner.of(Settings(outcomes_instances=instances, outcomes_instance=n))
        for n in range(instances)
    ]
    for _ in range(600):
        if await asyncio.to_thread(_settled, database_url, facts, since, owners):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"outcomes did not settle: {facts_recorded(database_url)}/{facts}")


def _settled(database_url: str, facts: int, since: datetime, owners: list[Owner]) -> bool:
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT notification_id, state FROM outcomes.journeystore_events"
            " WHERE topic LIKE '%.FactRecorded' ORDER BY notification_id"
        ).fetchall()
        if len(stored) != facts:
            return False
        whose = [(n, orjson.loads(state)["fact"]["participant"]) for n, state in stored]
        for owner in owners:
            row = conn.execute(
                "SELECT position, clock FROM outcomes.rule_state WHERE id = %s", (owner.name,)
            ).fetchone()
            if row is None or row[1] is None or row[1] < since:
                return False
            due = conn.execute(
                "SELECT count(*) FROM outcomes.deadlines"
                " WHERE due_at <= %s AND partition = ANY(%s)",
                (row[1], list(owner.partitions)),
            ).fetchone()
            own = [n for n, participant in whose if owner.owns(participant)]
            if due is None or due[0] or row[0] < own[-1]:
                return False
    return True


async def stream_order(running: Platform) -> dict[str, list[str]]:
    """Each person's event ids in the order of the stream."""
    found: dict[str, list[str]] = defaultdict(list)
    for message in await events_on_the_stream(running.env):
        # Sealed for the person (keys.py); the event id is the message's id.
        person = orjson.loads(message.data)["participant"]
        found[person].append((message.headers or {})[MSG_ID])
    return dict(found)


def store_order(database_url: str) -> dict[str, list[str]]:
    """Each person's event ids in the order of their journey in the store."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT state FROM outcomes.journeystore_events WHERE topic LIKE '%.FactRecorded'"
            " ORDER BY originator_id, originator_version"
        ).fetchall()
    found: dict[str, list[str]] = defaultdict(list)
    for (state,) in rows:
        fact = orjson.loads(state)["fact"]
        found[fact["participant"]].append(fact["event_id"])
    return dict(found)
