"""Erasing a person (`los erase`) on the whole platform: everything stored or published
about them is sealed with their key, which erasing deletes, and nothing is rewritten;
what was kept about them in clear goes, and no source takes another event about them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from services.cli.main import app
from services.intake.application import Vault, create_vault
from services.kernel import keys as key_store
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.keys import StoredKeys, unseal
from services.kernel.settings import RuleSettings, Settings, get_settings
from services.kernel.store import application_env, create_schema
from services.outcomes.application import JourneyStore
from services.outcomes.history import replay_store
from tests.integration.test_handover_gap_live import KEY, assign, submit
from tests.support import (
    EVERYONE,
    Person,
    alert_rows,
    deliveries,
    events_on_the_stream,
    fresh_database,
    los,
)

STUDY = "a study key"


def sealed_in_stores(database_url: str, participant: str) -> list[str]:
    """What the sources' stores and the journey store keep about `participant`, sealed:
    each stored event's sealed text, in the order stored."""
    found: list[str] = []
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('intake', 'journey', 'employer', 'outcomes')"
            " AND table_name LIKE '%events' ORDER BY 1"
        ).fetchall()
        for table in tables:
            read = sql.SQL("SELECT state FROM {} ORDER BY notification_id")
            for (state,) in conn.execute(read.format(sql.Identifier(*table))):
                stored = orjson.loads(state)
                if stored.get("participant") == participant and "body" in stored:
                    found.append(stored["body"])  # a source's event
                fact = stored.get("fact") or {}
                if fact.get("participant") == participant:
                    found.append(fact["sealed"])  # a fact in the journey store
    return found


async def sealed_on_the_stream(env: dict[str, str], participant: str) -> list[str]:
    """What the stream carries about `participant`, sealed, in stream order."""
    found: list[str] = []
    for message in await events_on_the_stream(env):
        body = orjson.loads(message.data)
        assert set(body) == {"participant", "sealed"}, "nothing but the pseudonym in clear"
        if body["participant"] == participant:
            found.append(body["sealed"])
    return found


def rows_about(database_url: str, participant: str) -> dict[str, int]:
    """How many rows each table kept in clear holds about `participant`."""
    tables = ("intake.vault", "outcomes.alerts", "outcomes.deadlines", "outcomes.caseload")
    with psycopg.connect(database_url) as conn:
        count = sql.SQL("SELECT count(*) FROM {} WHERE participant = %s")
        return {
            table: conn.execute(  # type: ignore[index]
                count.format(sql.Identifier(*table.split("."))), (participant,)
            ).fetchone()[0]
            for table in tables
        }


def erase(env: dict[str, str], national_ids: str) -> tuple[int, str]:
    """`los erase -` with `national_ids` on standard input, in the platform's settings."""
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["erase", "-"], input=national_ids, env=env)
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output  # standard output and error, as printed


@pytest.mark.servers
async def test_an_erased_persons_history_is_unreadable_everywhere_and_nothing_new_is_taken(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT2S") as running:
        url, env = running.env["DATABASE_URL"], running.env
        intake, journey = running.address("intake"), running.address("journey")
        ann, bo = Person.make(91), Person.make(92)
        a, b = pseudonym(ann.national_id, KEY), pseudonym(bo.national_id, KEY)
        start = datetime.now(UTC) - timedelta(days=3)
        for person, coordinator in ((ann, "c-ann"), (bo, "c-bo")):
            await assign(intake, person, coordinator, start)
            ended = person.measure_ended("m-1", start + timedelta(days=1))
            reply = await submit(journey, [person.measure_started("m-1", start), ended])
            assert reply.accepted == 2, reply
        # A handover gap each, two seconds after the measure ended with nothing after.
        for _ in range(150):
            if {row[1] for row in alert_rows(url)} == {a, b}:
                break
            await asyncio.sleep(0.2)
        assert {row[1] for row in alert_rows(url)} == {a, b}
        stored, streamed = sealed_in_stores(url, a), await sealed_on_the_stream(env, a)
        # Three events in the sources' stores and on the stream, three facts in outcomes.
        assert (len(stored), len(streamed)) == (6, 3)
        keys = StoredKeys(url)
        try:
            key = keys.for_reading([a])[a]
            assert all(orjson.loads(unseal(key, a, text)) for text in stored + streamed)
            assert all(ann.national_id not in text for text in stored + streamed)

            code, said = erase(env, f"{ann.national_id}\n")

            assert code == 0, said
            assert said.startswith("line 1: erased their key, 1 national id, "), said
            assert ann.national_id not in said
            # Her key is gone, so nothing sealed for her opens again; all of it is still
            # there as it was: no log was rewritten.
            assert set(keys.for_reading([a, b])) == {b}
            assert sealed_in_stores(url, a) == stored
            assert await sealed_on_the_stream(env, a) == streamed
        finally:
            keys.close()
        # What was kept about her in clear is gone; Bo's is not.
        assert set(rows_about(url, a).values()) == {0}
        assert rows_about(url, b)["intake.vault"] == 1
        assert rows_about(url, b)["outcomes.alerts"] == 1
        # A replay of the store leaves her out.
        rules = RuleSettings(handover_gap=timedelta(seconds=2))  # as the platform runs
        replay = await asyncio.to_thread(replay_store, url, datetime.now(UTC), rules, STUDY)
        persons = {orjson.loads(line)["person"] for _, line in replay.rows}
        assert persons == {pseudonym(b, STUDY)}
        # Her new events are refused, by the field `person`; Bo's are taken.
        now = datetime.now(UTC)
        reply = await submit(
            journey, [ann.measure_started("m-2", now), bo.measure_started("m-2", now)]
        )
        assert reply.accepted == 1, reply
        (refused,) = reply.rejected
        assert (refused.index, refused.field) == (0, "person")
        assert "erased" in refused.reason
        # Nor does intake keep her national id again.
        referral = {"channel": "nav", "org_unit": "nav-0301"}
        reply = await submit(intake, [ann.event("participant.referred", referral, now)])
        assert [r.field for r in reply.rejected] == ["person"]
        assert rows_about(url, a)["intake.vault"] == 0
        # Erasing her again, or someone never seen, changes nothing and says so; a line
        # that is no national id is named, and the others go on.
        never_seen = Person.make(93).national_id
        code, said = erase(env, f"{ann.national_id}\n12345678901\n\n{never_seen}\n")
        assert code == 1, said
        assert said.splitlines() == [
            "line 1: erased before; nothing more to erase",
            "line 2: not a national identity number: the month of its birth date is not a"
            " valid month",
            "line 4: not known to Los; no event about them will be taken",
        ]


@pytest.mark.servers
def test_outcomes_leaves_out_facts_about_someone_erased_and_reads_their_journey_as_empty(
    real_servers: Servers,
) -> None:
    # As when outcomes takes in, after the erasure, what was published before it.
    database_url = fresh_database(real_servers.database_url)
    create_schema(database_url, "outcomes")
    env = application_env(database_url, "outcomes", cache_size=100)
    batch = deliveries(people=2, facts_each=3, note_bytes=10)  # person-0, person-1, ...
    store = JourneyStore(env=env)
    try:
        assert store.ingest(EVERYONE, batch[:2]) == 2
        assert store.keys.erase("person-0", datetime.now(UTC)) == key_store.KEY

        assert store.ingest(EVERYONE, batch[2:]) == 2  # person-1's, not person-0's
        assert store.positions(EVERYONE) == dict.fromkeys(EVERYONE.partitions, 6)
        # Nor is person-0's journey read from the cache, where it was before.
        cached = store.journeys(["person-0", "person-1"])
        assert [len(cached[p].facts) for p in ("person-0", "person-1")] == [0, 3]
    finally:
        store.close()
    again = JourneyStore(env=env)  # nothing in its cache
    try:
        journeys = again.journeys(["person-0", "person-1"])
        assert [len(journeys[p].facts) for p in ("person-0", "person-1")] == [0, 3]
    finally:
        again.close()


@pytest.mark.servers
def test_intake_keeps_no_national_id_for_someone_erased_after_their_batch_read_the_keys(
    real_servers: Servers,
) -> None:
    database_url = fresh_database(real_servers.database_url)
    create_schema(database_url, "intake")
    create_vault(database_url)
    ann, bo = Person.make(94), Person.make(95)
    a, b = pseudonym(ann.national_id, KEY), pseudonym(bo.national_id, KEY)
    keys, vault = (
        StoredKeys(database_url),
        Vault(database_url, Settings().vault_key.get_secret_value()),
    )
    try:
        assert set(keys.for_writing([a, b])) == {a, b}  # the batch's keys, read
        keys.erase(a, datetime.now(UTC))  # erased meanwhile

        vault.keep({a: ann.national_id, b: bo.national_id})

        assert (vault.national_id(a), vault.national_id(b)) == (None, bo.national_id)
    finally:
        keys.close()
        vault.close()
