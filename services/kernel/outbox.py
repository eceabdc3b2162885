"""The outbox relay: a source service's notification log, published to JetStream in order.

The store is the outbox: an event is on the bus only after it is in the service's own
store, and every stored event reaches the bus. The relay remembers how far it got in a
row of its own schema; after a crash it publishes again from there, and JetStream drops
what it already has by `Nats-Msg-Id` (the event id) within the duplicate window.

Once it has read the store up to its end, the relay publishes each batch the service
commits from memory, handed over by the store right after the commit (`Handover`),
rather than reading it back; if it falls behind by more than `HANDED_OVER` batches (the
bus is slow or down), it reads the store again from its position.

Each time it has published everything stored (at most every `announce_interval`), it
announces on core NATS that everything the service received before the moment it looked
is on the stream, up to the sequence of the last it published (`ClockAnnouncement`):
outcomes' live clock then need not wait out the transit allowance (CONTRACT §3). The
moment is the earliest receive time of any batch the service has not stored yet
(`Arrivals`), so a batch still being stored is never announced as published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Recording
from nats.aio.client import Client as NATS
from opentelemetry.trace import SpanKind
from psycopg import sql

from services.kernel.bus import (
    MSG_ID,
    ClockAnnouncement,
    Outgoing,
    clock_subject,
    publish_all,
    subject_for,
)
from services.kernel.connection import KeptConnection
from services.kernel.settings import Settings
from services.kernel.source import SourceApplication, SourceRecord
from services.kernel.store import Handover, Worker
from services.kernel.telemetry import batch_context, current_traceparent, tracer

log = logging.getLogger(__name__)

HANDED_OVER = 64  # batches committed and not yet published, at most, before reading the store


class Arrivals:
    """The receive times of the batches a source service has received and not yet stored
    (or refused). Used on the event loop only."""

    def __init__(self) -> None:
        self._open: Counter[datetime] = Counter()

    @contextmanager
    def receiving(self, received_at: datetime) -> Iterator[None]:
        self._open[received_at] += 1
        try:
            yield
        finally:
            self._open[received_at] -= 1
            if not self._open[received_at]:
                del self._open[received_at]

    def stored_before(self) -> datetime:
        """A moment before which everything the service received is stored."""
        return min(self._open, default=datetime.now(UTC))


class OutboxRelay:
    def __init__(
        self,
        app: SourceApplication,
        worker: Worker,
        nc: NATS,
        settings: Settings,
        service: str,  # also the schema of its store
    ) -> None:
        assert settings.database_url is not None
        self._app = app
        self._worker = worker
        self._nc = nc
        self._js = nc.jetstream()
        self._settings = settings
        self._table = sql.Identifier(service, "outbox_position")
        self._conn = KeptConnection(settings.database_url)
        self._service = service
        self._published = 0  # the stream sequence of the last event published
        self._announced_at = -float("inf")
        self.arrivals = Arrivals()
        self.wake = asyncio.Event()
        self._handover = Handover[Any](HANDED_OVER)
        self._caught_up = False  # read the store to its end since the handover opened
        app.recorded = self._recorded

    def _read_position(self) -> int:
        conn = self._conn.get()
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, position bigint NOT NULL)"
            ).format(self._table)
        )
        row = conn.execute(sql.SQL("SELECT position FROM {}").format(self._table)).fetchone()
        return int(row[0]) if row else 0

    def _save_position(self, position: int) -> None:
        self._conn.get().execute(
            sql.SQL(
                "INSERT INTO {} (id, position) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position"
            ).format(self._table),
            (position,),
        )

    def _recorded(self, recordings: list[Recording[UUID]]) -> None:
        self._handover.committed([(r.notification.id, r.domain_event) for r in recordings])

    def _message(self, stored: Any) -> Outgoing | None:
        """A source record's stored event as the message that publishes it, still sealed
        (`SealedEvent`); None for the record's creation and its held events, which publish
        nothing."""
        if not isinstance(stored, SourceRecord.Accepted):
            return None
        if stored.body.startswith("{"):  # stored before events were sealed: as it is
            fields = orjson.loads(stored.body)
            participant, event_id, kind = fields["participant"], fields["event_id"], fields["type"]
            body = stored.body.encode()
        else:
            participant, event_id, kind = stored.participant, stored.event_id, stored.type
            body = orjson.dumps({"participant": participant, "sealed": stored.body})
        subject = subject_for(self._settings, self._service, participant, kind)
        return Outgoing(subject, body, {**stored.trace, MSG_ID: event_id})

    def _handed_over(self, after: int) -> tuple[list[Outgoing], int]:
        """The events handed over since notification `after`, and the last of them."""
        handed = self._handover.take(after)
        messages = list(filter(None, (self._message(event) for _, event in handed)))
        return messages, handed[-1][0] if handed else after

    def _next_batch(self, after: int) -> tuple[list[Outgoing], int, bool]:
        """The events to publish after notification `after`, read from the store, the last
        notification read, and whether there may be more (in the worker thread)."""
        limit = self._settings.batch_size
        notifications = self._app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        events = map(self._app.mapper.to_domain_event, notifications)
        messages = list(filter(None, map(self._message, events)))
        last = notifications[-1].id if notifications else after
        return messages, last, len(notifications) == limit

    async def run(self) -> None:
        """Publish everything stored, announce it, then wait to be woken (or poll)."""
        position = await self._worker.run(self._read_position)
        stream = await self._js.stream_info(self._settings.stream)
        self._published = stream.state.last_seq  # all this service published before
        interval = self._settings.announce_interval.total_seconds()
        while True:
            self.wake.clear()
            received_by = self.arrivals.stored_before()
            if not self._handover.is_open:  # first, or closed while the relay fell behind
                self._handover.open()
                self._caught_up = False
            if self._caught_up:
                (messages, last), more = self._handed_over(position), False
            else:
                messages, last, more = await self._worker.run(self._next_batch, position)
                self._caught_up = not more
            if messages:
                self._published = max(self._published, await self._publish(messages))
            if last != position:
                # Also past a batch with nothing to publish (records of refused events).
                await self._worker.run(self._save_position, last)
                position = last
            if more:
                continue
            if time.monotonic() - self._announced_at >= interval:
                await self._announce(received_by)
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=interval)

    async def _announce(self, received_by: datetime) -> None:
        announcement = ClockAnnouncement(
            service=self._service, received_by=received_by, stream_sequence=self._published
        )
        subject = clock_subject(self._settings, self._service)
        await self._nc.publish(subject, announcement.model_dump_json().encode())
        self._announced_at = time.monotonic()

    async def _publish(self, messages: list[Outgoing]) -> int:
        # A child of the first event's submit span, linked to the others'; the messages
        # carry this span on, so a consumer's span follows the publish.
        parent, links = batch_context(m.headers for m in messages)
        with tracer(__name__).start_as_current_span(
            "outbox.publish", context=parent, links=links, kind=SpanKind.PRODUCER
        ) as span:
            span.set_attribute("los.events", len(messages))
            carried = current_traceparent()
            sent = [
                Outgoing(m.subject, m.body, {**carried, MSG_ID: m.headers[MSG_ID]})
                for m in messages
            ]
            return await publish_all(self._js, sent)
