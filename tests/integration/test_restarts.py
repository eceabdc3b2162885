"""Deadlines and the alert stream survive a restart of outcomes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.cli.platform import stop
from services.cli.watch import watch
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.rpc.los.v1 import alerts_pb2
from tests.integration.test_crash_recovery import restart_outcomes
from tests.integration.test_exactly_once import alerts_of, journey_facts, wait_for
from tests.integration.test_handover_gap_live import KEY, assign, submit
from tests.support import Person, los, token_for


@pytest.mark.servers
async def test_a_deadline_passing_while_outcomes_is_down_fires_after_it_restarts(
    real_servers: Servers, tmp_path: Path
) -> None:
    # Long enough for the facts to be taken in and outcomes stopped before it, on a busy
    # host too (6 s was once not).
    with los(real_servers, tmp_path, rules__handover_gap="PT12S") as running:
        person = Person.make(41)
        participant = pseudonym(person.national_id, KEY)
        now = datetime.now(UTC)
        due = now + timedelta(seconds=12)
        await assign(running.address("intake"), person, "c-41", now - timedelta(days=3))
        ended = [
            person.measure_started("m-1", now - timedelta(days=2), recorded_at=now),
            person.measure_ended("m-1", now, recorded_at=now),
        ]
        assert (await submit(running.address("journey"), ended)).accepted == 2
        await wait_for(lambda: len(journey_facts(running, participant)) == 3)  # taken in
        await asyncio.to_thread(stop, running.processes["outcomes"])
        assert alerts_of(running, participant) == [], "due before outcomes stopped"
        # The deadline passes while outcomes is down.
        await asyncio.sleep((due - datetime.now(UTC)).total_seconds() + 1)
        await asyncio.to_thread(restart_outcomes, running, tmp_path)

        updates = watch(running.address("outcomes"), token_for("c-41"), coordinator="c-41")
        update = await asyncio.wait_for(anext(updates), 30)

        assert (update.change, update.alert.subject) == ("raised", "m-1")
        assert update.alert.raised_at.ToDatetime(UTC) == due


@pytest.mark.servers
async def test_a_watching_client_resumes_after_outcomes_restarts_and_misses_nothing(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT2S") as running:
        first, second = Person.make(51), Person.make(52)
        now = datetime.now(UTC)
        for person in (first, second):
            await assign(running.address("intake"), person, "c-5", now - timedelta(days=3))
        journey = running.address("journey")
        updates = watch(running.address("outcomes"), token_for("c-5"), coordinator="c-5")

        day = timedelta(days=1)
        await submit(
            journey,
            [
                first.measure_started("m-1", now - day, recorded_at=now),
                first.measure_ended("m-1", now),
            ],
        )
        one: alerts_pb2.AlertUpdate = await asyncio.wait_for(anext(updates), 30)
        await asyncio.to_thread(stop, running.processes["outcomes"])
        later = datetime.now(UTC)
        await submit(
            journey,
            [
                second.measure_started("m-2", later - day, recorded_at=later),
                second.measure_ended("m-2", later),
            ],
        )
        await asyncio.to_thread(restart_outcomes, running, tmp_path)
        two: alerts_pb2.AlertUpdate = await asyncio.wait_for(anext(updates), 30)

        assert (one.alert.subject, two.alert.subject) == ("m-1", "m-2")
        assert two.cursor > one.cursor
        assert two.alert.raised_at.ToDatetime(UTC) == later + timedelta(seconds=2)
