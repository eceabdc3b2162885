"""HANDOVER_GAP end to end on real NATS JetStream and PostgreSQL, on the wall clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import nats
import pytest
from nats.aio.msg import Msg

from services.cli.watch import watch
from services.kernel.bus import ClockAnnouncement, clock_subject
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.settings import Settings
from services.kernel.tokens import bearer
from services.outcomes.owner import Owner
from services.rpc.los.v1 import alerts_pb2, sources_pb2, sources_pb2_grpc
from tests.support import Person, bus_settings, los, source_token, token_for

KEY = "los-development-pseudonym-key"
GAP = timedelta(seconds=3)  # instead of 14 days


async def submit(address: str, events: list[str]) -> sources_pb2.SubmitEventsResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = sources_pb2_grpc.SourcesStub(channel)
        request = sources_pb2.SubmitEventsRequest(events=events)
        return await stub.SubmitEvents(request, metadata=bearer(source_token()))


async def next_update(address: str, coordinator: str, within: float) -> alerts_pb2.AlertUpdate:
    async def first() -> alerts_pb2.AlertUpdate:
        async for update in watch(address, token_for(coordinator), coordinator=coordinator):
            return update
        raise AssertionError("the alert stream ended")

    return await asyncio.wait_for(first(), within)


async def assign(address: str, person: Person, coordinator: str, at: datetime) -> None:
    data = {"coordinator_id": coordinator, "org_unit": "nav-0301"}
    reply = await submit(address, [person.event("coordinator.assigned", data, at)])
    assert reply.accepted == 1, reply


# With a minute's transit allowance only the outboxes' announcements (everything received
# before a moment is on the stream) can bring the clock past the deadline in time.
@pytest.mark.parametrize("transit_allowance", ["PT0.5S", "PT60S"])
@pytest.mark.servers
async def test_a_measure_ending_with_nothing_after_raises_a_gap_on_the_wall_clock(
    real_servers: Servers, tmp_path: Path, transit_allowance: str
) -> None:
    settings = {"rules__handover_gap": "PT3S", "transit_allowance": transit_allowance}
    with los(real_servers, tmp_path, **settings) as running:
        person = Person.make(1)
        now = datetime.now(UTC)
        await assign(running.address("intake"), person, "c-1", now - timedelta(days=20))
        reply = await submit(
            running.address("journey"),
            [
                person.measure_started("m-1", now - timedelta(days=10), recorded_at=now),
                person.measure_ended("m-1", now, recorded_at=now),
            ],
        )
        assert reply.accepted == 2, reply

        update = await next_update(running.address("outcomes"), "c-1", within=30)

        alert = update.alert
        assert (update.change, alert.rule, alert.subject) == ("raised", "HANDOVER_GAP", "m-1")
        assert alert.participant == pseudonym(person.national_id, KEY)
        assert alert.recipient.coordinator_id == "c-1"
        deadline = now + GAP
        assert abs(alert.raised_at.ToDatetime(UTC) - deadline) < timedelta(milliseconds=1)
        # It arrived after the deadline had passed on the wall clock, not before.
        assert datetime.now(UTC) >= deadline


@pytest.mark.servers
async def test_an_instance_sharing_the_partitions_moves_its_clock_on_what_others_published(
    real_servers: Servers, tmp_path: Path
) -> None:
    # Of two instances only the first runs. The journey service's last event is in the
    # second's partitions, so its outbox announces a stream sequence the first never
    # reads: only a fetch that finds nothing more of its own after the announcement tells
    # the first that everything announced is in, and with a minute's transit allowance
    # nothing else brings its clock past the deadline in time.
    halves = [Owner.of(Settings(outcomes_instances=2, outcomes_instance=n)) for n in (0, 1)]
    people = [Person.make(seed) for seed in range(2, 40)]
    mine, theirs = (
        next(p for p in people if half.owns(pseudonym(p.national_id, KEY))) for half in halves
    )
    settings = {"rules__handover_gap": "PT3S", "transit_allowance": "PT60S"}
    with los(real_servers, tmp_path, outcomes_instances="2", **settings) as running:
        now = datetime.now(UTC)
        await assign(running.address("intake"), mine, "c-1", now - timedelta(days=20))
        started = mine.measure_started("m-1", now - timedelta(days=10), recorded_at=now)
        ended = mine.measure_ended("m-1", now, recorded_at=now)
        other = theirs.measure_started("m-2", now - timedelta(days=1), recorded_at=now)
        reply = await submit(running.address("journey"), [started, ended, other])
        assert reply.accepted == 3, reply

        update = await next_update(running.address("outcomes"), "c-1", within=30)

    assert (update.change, update.alert.rule, update.alert.subject) == (
        "raised",
        "HANDOVER_GAP",
        "m-1",
    )
    assert datetime.now(UTC) >= now + GAP


@pytest.mark.servers
async def test_a_successor_inside_the_window_prevents_the_gap_and_one_after_resolves_it(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT3S") as running:
        early, late = Person.make(2), Person.make(3)
        now = datetime.now(UTC)
        await assign(running.address("intake"), early, "c-early", now - timedelta(days=20))
        await assign(running.address("intake"), late, "c-late", now - timedelta(days=20))
        journey = running.address("journey")
        started = now - timedelta(days=10)
        reply = await submit(
            journey,
            [
                early.measure_started("m-1", started, recorded_at=now),
                early.measure_ended("m-1", now, recorded_at=now),
                early.measure_started("m-2", now + timedelta(seconds=1), recorded_at=now),
                late.measure_started("m-1", started, recorded_at=now),
                late.measure_ended("m-1", now, recorded_at=now),
            ],
        )
        assert reply.accepted == 5, reply
        outcomes = running.address("outcomes")

        raised = await next_update(outcomes, "c-late", within=30)
        assert (raised.change, raised.alert.subject) == ("raised", "m-1")
        successor_at = datetime.now(UTC)
        reply = await submit(journey, [late.measure_started("m-2", successor_at)])
        assert reply.accepted == 1, reply

        async def resolution() -> alerts_pb2.AlertUpdate:
            async for update in watch(
                outcomes, token_for("c-late"), coordinator="c-late", after=raised.cursor
            ):
                return update
            raise AssertionError("the alert stream ended")

        resolved = await asyncio.wait_for(resolution(), 30)
        assert (resolved.change, resolved.alert.status) == ("resolved", "resolved")
        assert resolved.alert.resolution == "engagement_started"
        assert resolved.alert.alert_id == raised.alert.alert_id

        # The early person's successor started inside the window: nothing for c-early,
        # although their deadline has long passed on the clock that raised c-late's alert.
        with pytest.raises(TimeoutError):
            await next_update(outcomes, "c-early", within=2)


@pytest.mark.servers
async def test_an_outbox_announces_what_it_has_published_up_to_which_stream_sequence(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path) as running:
        env = running.env
        settings = bus_settings(env)
        connection = await nats.connect(env["NATS_URL"])
        try:
            heard: asyncio.Queue[ClockAnnouncement] = asyncio.Queue()

            async def hear(message: Msg) -> None:
                heard.put_nowait(ClockAnnouncement.model_validate_json(message.data))

            await connection.subscribe(clock_subject(settings, "journey"), cb=hear)
            person = Person.make(4)
            now = datetime.now(UTC)
            reply = await submit(running.address("journey"), [person.measure_started("m-1", now)])
            assert reply.accepted == 1, reply
            stored_by = datetime.now(UTC)

            announcement = await asyncio.wait_for(heard.get(), 10)
            while announcement.received_by < stored_by:
                announcement = await asyncio.wait_for(heard.get(), 10)
            assert announcement.service == "journey"
            stream = await connection.jetstream().stream_info(settings.stream)
            # The one event published is the stream's last message, and it is covered.
            assert stream.state.messages == 1
            assert announcement.stream_sequence == stream.state.last_seq
        finally:
            await connection.close()
