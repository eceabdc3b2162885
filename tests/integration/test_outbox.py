"""The outbox relay on real servers: what a source service stored before its relay ran
is published first, each batch committed after that is published without reading the
store back, and a relay that falls behind reads the store again, with nothing lost,
repeated or out of order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest

from services.journey.application import JourneyApplication
from services.kernel import outbox
from services.kernel.bus import MSG_ID, ensure_stream
from services.kernel.embedded import Servers
from services.kernel.events import DomainEvent, parse_edge_event
from services.kernel.ids import pseudonym
from services.kernel.outbox import OutboxRelay
from services.kernel.settings import RuleSettings, Settings
from services.kernel.source import ACCEPTED, Waiting
from services.kernel.store import Worker, application_env, create_schema
from tests.support import Person, isolated_env

pytestmark = pytest.mark.servers

KEY = "test-pseudonym-key"
HOLD = RuleSettings().lifecycle_hold


@dataclass
class Relaying:
    app: JourneyApplication
    relay: OutboxRelay
    settings: Settings
    reads: list[int]  # the notification each read of the store started after

    def store(self, *people: int) -> list[str]:
        """A batch with one new measure for each of `people`, stored; its event ids."""
        now = datetime.now(UTC)
        batch: list[tuple[DomainEvent, dict[str, str]]] = []
        for n in people:
            person = Person.make(n)
            edge = parse_edge_event(person.measure_started(f"m-{n}", now))
            batch.append((edge.to_domain(pseudonym(person.national_id, KEY), "journey", now), {}))
        assert self.app.accept_batch(batch, HOLD) == [ACCEPTED] * len(batch)
        return [str(domain_event.event_id) for domain_event, _ in batch]

    async def published(self, count: int) -> list[str]:
        """The event ids on the stream, once it holds `count` messages."""
        connection = await nats.connect(self.settings.nats_url or "")
        try:
            js = connection.jetstream()
            for _ in range(200):
                state = (await js.stream_info(self.settings.stream)).state
                if state.messages >= count:
                    break
                await asyncio.sleep(0.05)
            messages = [
                await js.get_msg(self.settings.stream, seq)
                for seq in range(state.first_seq, state.last_seq + 1)
            ]
            return [(message.headers or {})[MSG_ID] for message in messages]
        finally:
            await connection.close()


@asynccontextmanager
async def relaying(servers: Servers) -> AsyncIterator[Relaying]:
    """A journey store and its outbox relay, not running yet (`running`)."""
    env = isolated_env(servers)
    settings = Settings(
        nats_url=env["NATS_URL"],
        database_url=env["DATABASE_URL"],
        stream=env["LOS_STREAM"],
        subject_prefix=env["LOS_SUBJECT_PREFIX"],
        dead_letter_subject=env["LOS_DEAD_LETTER_SUBJECT"],
    )
    create_schema(env["DATABASE_URL"], "journey")
    app = JourneyApplication(env=application_env(env["DATABASE_URL"], "journey", cache_size=100))
    reads: list[int] = []
    select: Callable[..., Any] = app.recorder.select_notifications

    def counted(start: int, *args: Any, **kwargs: Any) -> Any:
        reads.append(start)
        return select(start, *args, **kwargs)

    app.recorder.select_notifications = counted  # type: ignore[method-assign,assignment]
    connection = await nats.connect(env["NATS_URL"])
    await ensure_stream(connection.jetstream(), settings)
    worker = Worker("journey")
    relay = OutboxRelay(app, worker, connection, settings, "journey")
    try:
        yield Relaying(app, relay, settings, reads)
    finally:
        await connection.close()
        worker.close()
        app.close()


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_what_was_stored_before_the_relay_ran_goes_first_and_the_rest_is_handed_over(
    real_servers: Servers,
) -> None:
    async with relaying(real_servers) as r:
        # Stored while no relay ran, as after a crash between the commit and the publish.
        before = r.store(1, 2, 3)
        async with running(r.relay):
            assert await r.published(3) == before
            reads = len(r.reads)
            after = r.store(4, 5)
            r.relay.wake.set()
            assert await r.published(5) == before + after
            again = r.store(6)
            r.relay.wake.set()
            assert await r.published(6) == before + after + again
        # Published from what the store handed over: not read back.
        assert len(r.reads) == reads


async def test_an_end_held_for_its_start_is_published_right_after_it_and_not_before(
    real_servers: Servers,
) -> None:
    person = Person.make(7)
    now = datetime.now(UTC)

    def received(line: str) -> tuple[DomainEvent, dict[str, str]]:
        participant = pseudonym(person.national_id, KEY)
        return parse_edge_event(line).to_domain(participant, "journey", now), {}

    end = received(person.measure_ended("m-1", now))
    start = received(person.measure_started("m-1", now - timedelta(days=3)))
    async with relaying(real_servers) as r:
        # Held while no relay ran: the relay reads it back from the store, and skips it.
        (held,) = r.app.accept_batch([end], HOLD)
        async with running(r.relay):
            assert isinstance(held, Waiting)
            other = r.store(8)
            r.relay.wake.set()
            assert await r.published(1) == other
            assert r.app.accept_batch([start], HOLD) == [ACCEPTED]
            r.relay.wake.set()
            assert await r.published(3) == [*other, str(start[0].event_id), str(end[0].event_id)]


async def test_a_relay_that_falls_behind_reads_the_store_again(
    real_servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "HANDED_OVER", 2)
    async with relaying(real_servers) as r, running(r.relay):
        first = r.store(1)
        assert await r.published(1) == first
        # More batches than may wait to be published, before the relay gets to any.
        later = [event_id for n in range(2, 7) for event_id in r.store(n)]
        reads = len(r.reads)
        r.relay.wake.set()
        assert await r.published(6) == first + later
        assert len(r.reads) > reads
