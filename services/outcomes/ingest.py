"""Outcomes' consumer: domain events from JetStream into the journey store, exactly once.

A pull consumer fetches in batches and processes strictly in stream order (one Tracking
name, one writer). The journey store's Tracking row, not the consumer, says how far
ingest got: at start the consumer is made anew from the sequence after it, so a message
left unacknowledged by a crash comes again before anything newer, and one at or below
the tracked sequence is skipped. A message that is not a domain event goes straight to
the dead-letter subject with the reason; a batch that fails is retried in place (order
is kept), and if it keeps failing each message is tried alone and the failing ones are
dead-lettered, so the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field

import stamina
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from services.kernel.bus import PullConsumer, dead_letter, events_subject, subject_for
from services.kernel.events import DomainEvent
from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.kernel.telemetry import batch_context, current_traceparent, tracer
from services.outcomes.application import Delivery, JourneyStore

log = logging.getLogger(__name__)

CONSUMER = "outcomes"


@dataclass
class IngestProgress:
    """What the live clock needs to know from ingest: is there a backlog in the stream,
    and up to which stream sequence is everything in the journey store."""

    pending: int | None = None  # None until the first fetch: assume a backlog
    ingested: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Ingest:
    def __init__(self, nc: NATS, store: JourneyStore, worker: Worker, settings: Settings) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._store = store
        self._worker = worker
        self._settings = settings
        self.progress = IngestProgress()

    async def run(self) -> None:
        settings = self._settings
        position = await self._worker.run(self._store.position, CONSUMER)
        self.progress.ingested = position
        with suppress(NotFoundError):
            await self._js.delete_consumer(settings.stream, CONSUMER)
        consumer = await PullConsumer.create(
            self._nc,
            settings.stream,
            ConsumerConfig(
                durable_name=CONSUMER,
                filter_subject=events_subject(settings),
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=position + 1,
                # Acknowledging the last message of a batch acknowledges the batch.
                ack_policy=AckPolicy.ALL,
                ack_wait=settings.ack_wait.total_seconds(),
                # A request for more than max_ack_pending waits out its expiry (DESIGN.md).
                max_ack_pending=settings.batch_size * 4,
            ),
        )
        # The next batch is fetched and decoded while this one is written.
        upcoming = asyncio.ensure_future(self._next(consumer))
        try:
            while True:
                messages, deliveries = await upcoming
                upcoming = asyncio.ensure_future(self._next(consumer))
                if messages:
                    await self._process(messages, deliveries)
        finally:
            upcoming.cancel()
            # A subscription left open makes the connection's drain wait it out.
            await consumer.close()

    async def _next(self, consumer: PullConsumer) -> tuple[list[Msg], list[Delivery]]:
        """The next batch from the stream and its domain events; the messages that are
        not domain events go to the dead-letter subject."""
        messages = await consumer.fetch(self._settings.batch_size, expires=0.5)
        self.progress.pending = (messages[-1].metadata.num_pending or 0) if messages else 0
        deliveries: list[Delivery] = []
        for message in messages:
            try:
                event = DomainEvent.model_validate_json(message.data)
            except ValidationError as invalid:
                await self._park(message, f"not a domain event: {_first_error(invalid)}")
                continue
            expected = subject_for(self._settings, event.service, event.participant, event.type)
            if message.subject != expected:
                # NATS permissions bind a service to its subjects; the body must agree.
                await self._park(message, f"sent on {message.subject}, body says {expected}")
                continue
            deliveries.append(
                Delivery(message.metadata.sequence.stream, event.model_dump(mode="json"))
            )
        return messages, deliveries

    async def _process(self, messages: list[Msg], deliveries: list[Delivery]) -> None:
        # A child of the first message's publish span, linked to the others'; each fact
        # keeps this span's context, for the rule engine to link its alerts to.
        parent, links = batch_context(m.headers for m in messages)
        with tracer(__name__).start_as_current_span(
            "outcomes.ingest", context=parent, links=links, kind=SpanKind.CONSUMER
        ) as span:
            span.set_attribute("los.events", len(deliveries))
            if deliveries:
                trace = current_traceparent()
                await self._record(deliveries, messages, trace)
        await messages[-1].ack()
        self.progress.ingested = messages[-1].metadata.sequence.stream
        self.progress.wake.set()

    async def _record(
        self, deliveries: list[Delivery], messages: list[Msg], trace: dict[str, str]
    ) -> None:
        try:
            async for attempt in stamina.retry_context(
                on=Exception, attempts=self._settings.ingest_attempts, wait_max=2.0
            ):
                with attempt:
                    await self._worker.run(self._store.ingest, CONSUMER, deliveries, trace)
                    return
        except Exception as failure:
            log.warning(
                "ingest of %d events failed, trying one by one: %s", len(deliveries), failure
            )
        by_sequence = {m.metadata.sequence.stream: m for m in messages}
        for delivery in deliveries:
            try:
                await self._worker.run(self._store.ingest, CONSUMER, [delivery], trace)
            except Exception as failure:
                await self._park(
                    by_sequence[delivery.sequence], f"could not be recorded: {failure}"
                )

    async def _park(self, message: Msg, reason: str) -> None:
        await dead_letter(self._js, self._settings, message.data, message.headers or {}, reason)


def _first_error(invalid: ValidationError) -> str:
    error = invalid.errors(include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "message"
    return f"{where}: {error['msg']}"
