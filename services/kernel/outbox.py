"""The outbox relay: a source service's notification log, published to JetStream in order.

The store is the outbox: an event is on the bus only after it is in the service's own
store, and every stored event reaches the bus. The relay remembers how far it got in a
row of its own schema; after a crash it publishes again from there, and JetStream drops
what it already has by `Nats-Msg-Id` (the event id) within the duplicate window.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from dataclasses import replace
from typing import Any

import psycopg
from eventsourcing.application import Application
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind
from psycopg import sql

from services.kernel.bus import MSG_ID, Outgoing, publish_all, subject_for
from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.kernel.telemetry import batch_context, current_traceparent, tracer

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        app: Application,  # type: ignore[type-arg]
        worker: Worker,
        js: JetStreamContext,
        settings: Settings,
        schema: str,
    ) -> None:
        assert settings.database_url is not None
        self._app = app
        self._worker = worker
        self._js = js
        self._settings = settings
        self._database_url = settings.database_url
        self._table = sql.Identifier(schema, "outbox_position")
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self.wake = asyncio.Event()

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

    def _next_batch(self, after: int) -> tuple[list[Outgoing], int]:
        notifications = self._app.recorder.select_notifications(
            start=after, limit=self._settings.batch_size, inclusive_of_start=False
        )
        messages = []
        for notification in notifications:
            accepted = self._app.mapper.to_domain_event(notification)
            body: str | None = getattr(accepted, "body", None)
            if body is None:
                continue  # the record's creation, not an accepted event
            fields = json.loads(body)
            headers = {**getattr(accepted, "trace", {}), MSG_ID: fields["event_id"]}
            subject = subject_for(
                self._settings, fields["service"], fields["participant"], fields["type"]
            )
            messages.append(Outgoing(subject, body.encode(), headers))
        last = notifications[-1].id if notifications else after
        return messages, last

    async def run(self) -> None:
        """Publish everything stored, then wait to be woken (or poll once a second)."""
        position = await self._worker.run(self._read_position)
        while True:
            messages, last = await self._worker.run(self._next_batch, position)
            if messages:
                await self._publish(messages)
            if last != position:
                # Also past a batch with nothing to publish (records of refused events).
                await self._worker.run(self._save_position, last)
                position = last
                continue
            self.wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)

    async def _publish(self, messages: list[Outgoing]) -> None:
        # A child of the first event's submit span, linked to the others'; the messages
        # carry this span on, so a consumer's span follows the publish.
        parent, links = batch_context(m.headers for m in messages)
        with tracer(__name__).start_as_current_span(
            "outbox.publish", context=parent, links=links, kind=SpanKind.PRODUCER
        ) as span:
            span.set_attribute("los.events", len(messages))
            carried = current_traceparent()
            sent = [replace(m, headers={**carried, MSG_ID: m.headers[MSG_ID]}) for m in messages]
            await publish_all(self._js, sent)
