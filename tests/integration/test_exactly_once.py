"""An event sent twice, redelivered, or next to a bad one is stored and alerted exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import psycopg
import pytest

from services.cli.platform import Platform
from services.kernel.bus import subject_for
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.settings import Settings
from services.kernel.store import application_env
from services.outcomes.application import JourneyStore
from tests.integration.test_handover_gap_live import KEY, next_update, submit
from tests.support import EVERYONE, Person, los


def journey_facts(running: Platform, participant: str) -> list[str]:
    """The event ids in outcomes' journey store for one participant."""
    store = _journey_store(running)
    try:
        return [f.event_id for f in store.journeys([participant])[participant].facts]
    finally:
        store.close()


def ingested_up_to(running: Platform) -> int:
    """The stream sequence outcomes has recorded its ingest up to."""
    store = _journey_store(running)
    try:
        return min(store.positions(EVERYONE).values())
    finally:
        store.close()


def _journey_store(running: Platform) -> JourneyStore:
    env = application_env(running.env["DATABASE_URL"], "outcomes", cache_size=0)
    return JourneyStore(env=env | {"CREATE_TABLE": "n"})


def alerts_of(running: Platform, participant: str) -> list[tuple[str, str]]:
    with psycopg.connect(running.env["DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT rule, subject FROM outcomes.alerts WHERE participant = %s", (participant,)
        ).fetchall()
    return [(rule, subject) for rule, subject in rows]


async def wait_for(condition: Callable[[], bool], within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


@pytest.mark.servers
async def test_a_batch_sent_twice_and_redelivered_is_stored_and_alerted_once(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT2S") as running:
        person = Person.make(11)
        participant = pseudonym(person.national_id, KEY)
        now = datetime.now(UTC)
        batch = [
            person.measure_started("m-1", now - timedelta(days=3), recorded_at=now),
            person.measure_ended("m-1", now, recorded_at=now),
        ]
        assign = person.event(
            "coordinator.assigned", {"coordinator_id": "c-11", "org_unit": "nav-1"}, now
        )
        assert (await submit(running.address("intake"), [assign])).accepted == 1
        first = await submit(running.address("journey"), batch)
        again = await submit(running.address("journey"), batch)
        assert (first.accepted, first.duplicates) == (2, 0)
        assert (again.accepted, again.duplicates) == (0, 2)

        # A redelivery from the bus itself: the stored end published again under a new
        # message id, as after a relay crash outside JetStream's duplicate window.
        ended = json.loads(batch[1])
        domain = {
            **{k: v for k, v in ended.items() if k != "person"},
            "participant": participant,
            "service": "journey",
        }
        settings = Settings(
            subject_prefix=running.env["LOS_SUBJECT_PREFIX"], stream=running.env["LOS_STREAM"]
        )
        connection = await nats.connect(running.env["NATS_URL"])
        try:
            subject = subject_for(settings, "journey", participant, "measure.ended")
            ack = await connection.jetstream().publish(
                subject, json.dumps(domain).encode(), headers={"Nats-Msg-Id": "republished"}
            )
            assert not ack.duplicate
        finally:
            await connection.close()

        update = await next_update(running.address("outcomes"), "c-11", within=30)
        assert update.alert.subject == "m-1"
        await wait_for(lambda: ingested_up_to(running) >= ack.seq)  # the republished end too
        facts = journey_facts(running, participant)
        assert sorted(facts) == sorted(json.loads(e)["event_id"] for e in [assign, *batch])
        assert alerts_of(running, participant) == [("HANDOVER_GAP", "m-1")]


@pytest.mark.servers
async def test_a_bad_check_digit_rejects_that_event_by_field_and_the_rest_is_stored(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path) as running:
        good, other = Person.make(21), Person.make(22)
        now = datetime.now(UTC)
        broken = json.loads(other.measure_started("m-9", now))
        last = str((int(broken["person"][-1]) + 1) % 10)
        broken["person"] = broken["person"][:-1] + last
        events = [
            good.measure_started("m-1", now),
            json.dumps(broken),
            good.measure_ended("m-1", now + timedelta(minutes=1)),
        ]
        reply = await submit(running.address("journey"), events)

        assert reply.accepted == 2
        assert [(r.index, r.event_id, r.field) for r in reply.rejected] == [
            (1, broken["event_id"], "person")
        ]
        assert "check digit" in reply.rejected[0].reason
        assert broken["person"] not in reply.rejected[0].reason
        participant = pseudonym(good.national_id, KEY)
        expected = sorted(json.loads(events[i])["event_id"] for i in (0, 2))
        await wait_for(lambda: sorted(journey_facts(running, participant)) == expected)


@pytest.mark.servers
async def test_events_stored_after_a_run_of_held_ones_still_reach_outcomes(
    real_servers: Servers, tmp_path: Path
) -> None:
    # Each held end of someone new (its start unknown) leaves the record's creation and
    # the held event in the store, neither published: more of them in a row than the
    # relay reads at once must not stop it there.
    with los(real_servers, tmp_path, batch_size="5") as running:
        now = datetime.now(UTC)
        held = [Person.make(100 + n).measure_ended("m-1", now) for n in range(12)]
        reply = await submit(running.address("journey"), held)
        assert (reply.accepted, len(reply.rejected), len(reply.held)) == (0, 0, 12)

        person = Person.make(99)
        started = person.measure_started("m-1", now)
        assert (await submit(running.address("journey"), [started])).accepted == 1
        participant = pseudonym(person.national_id, KEY)
        expected = [json.loads(started)["event_id"]]
        await wait_for(lambda: journey_facts(running, participant) == expected)
