"""The outbox relay: a source service's notification log, published to JetStream in order.

The store is the outbox: an event is on the bus only after it is in the service's own
store, and every stored event reaches the bus. The relay remembers how far it got in a
row of its own schema; after a crash it publishes again from there, and JetStream drops
what it already has by `Nats-Msg-Id` (the event id) within the duplicate window.

Once it has read the store up to its end, the relay publishes each batch the service
commits from memory, handed over by the store's worker thread right after the commit
(`recorded`), rather than reading it back: commits and reads of the store happen in that
one thread, so nothing committed after the read is missed. If it falls behind by more
than `HANDED_OVER` batches (the bus is slow or down), it drops what was handed over and
reads the store again from its position.

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
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
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
from services.kernel.settings import Settings
from services.kernel.source import SourceApplication
from services.kernel.store import Worker
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
        self._database_url = settings.database_url
        self._table = sql.Identifier(service, "outbox_position")
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._service = service
        self._published = 0  # the stream sequence of the last event published
        self._announced_at = -float("inf")
        self.arrivals = Arrivals()
        self.wake = asyncio.Event()
        # (last notification id, events) of each batch committed since the store was read
        # to its end, while `_reading` is False. The worker thread appends and sets
        # `_reading`; the relay takes from the left on the event loop.
        self._handed: deque[tuple[int, list[Any]]] = deque()
        self._reading = True
        app.recorded = self._recorded

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """One connection for the relay's position, opened again if it broke."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._database_url, autocommit=True)
        return self._conn

    def _read_position(self) -> int:
        conn = self._connection()
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, position bigint NOT NULL)"
            ).format(self._table)
        )
        row = conn.execute(sql.SQL("SELECT position FROM {}").format(self._table)).fetchone()
        return int(row[0]) if row else 0

    def _save_position(self, position: int) -> None:
        self._connection().execute(
            sql.SQL(
                "INSERT INTO {} (id, position) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position"
            ).format(self._table),
            (position,),
        )

    def _recorded(self, recordings: list[Recording[UUID]]) -> None:
        """A batch just committed (in the worker thread)."""
        if self._reading:
            return  # the next read of the store will find it
        if len(self._handed) >= HANDED_OVER:
            self._handed.clear()
            self._reading = True
            return
        last = max(recording.notification.id for recording in recordings)
        self._handed.append((last, [recording.domain_event for recording in recordings]))

    def _message(self, accepted: Any) -> Outgoing | None:
        """A source record's stored event as the message that publishes it; None for the
        record's creation, which publishes nothing."""
        body: str | None = getattr(accepted, "body", None)
        if body is None:
            return None
        fields = orjson.loads(body)
        headers = {**getattr(accepted, "trace", {}), MSG_ID: fields["event_id"]}
        subject = subject_for(
            self._settings, fields["service"], fields["participant"], fields["type"]
        )
        return Outgoing(subject, body.encode(), headers)

    def _take_handed(self, after: int) -> tuple[list[Outgoing], int]:
        """The events handed over since the last take, and the last notification of them."""
        messages: list[Outgoing] = []
        last = after
        while self._handed:
            last, events = self._handed.popleft()
            messages.extend(filter(None, map(self._message, events)))
        return messages, last

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
        more = len(notifications) == limit
        if not more:  # read to the end: from now on each batch is handed over
            self._reading = False
        return messages, last, more

    async def run(self) -> None:
        """Publish everything stored, announce it, then wait to be woken (or poll)."""
        position = await self._worker.run(self._read_position)
        stream = await self._js.stream_info(self._settings.stream)
        self._published = stream.state.last_seq  # all this service published before
        interval = self._settings.announce_interval.total_seconds()
        while True:
            self.wake.clear()
            received_by = self.arrivals.stored_before()
            if self._reading:
                messages, last, more = await self._worker.run(self._next_batch, position)
            else:
                (messages, last), more = self._take_handed(position), False
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
