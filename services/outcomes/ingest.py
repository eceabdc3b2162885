"""Outcomes' consumer: domain events from JetStream into the journey store, exactly once.

A pull consumer reads the subjects of the instance's partitions (`owner.py`; all of them
with one instance), fetches in batches and processes strictly in stream order (one
Tracking name, one writer). The journey store's Tracking rows, not the consumer, say how
far ingest got in each partition: at start the consumer is made anew from the sequence
after the least of them, so a message left unacknowledged by a crash comes again before
anything newer, and one at or below its partition's tracked sequence is skipped. Each
message is opened with its person's key (`keys.py`); an erased person's is left out. A
message that is not a domain event goes straight to the dead-letter subject with the
reason; a batch that fails is retried in place (order is kept), and if it keeps failing
each message is tried alone and the failing ones are dead-lettered, so the stream goes
on.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import NamedTuple

import stamina
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from services.kernel.bus import PullConsumer, dead_letter, partition_of, subject_in
from services.kernel.events import DomainEvent, SealedEvent
from services.kernel.keys import StoredKeys, unseal
from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.kernel.telemetry import batch_context, current_traceparent, tracer
from services.outcomes.application import Delivery, JourneyStore
from services.outcomes.owner import Owner

log = logging.getLogger(__name__)


class Opened(NamedTuple):
    """A message's domain event JSON (None: left out), and if it came sealed, as sealed,
    for whom, with which key (`Ingest._opened`)."""

    data: bytes | None
    sealed: str | None = None
    participant: str | None = None
    key: AESGCM | None = None


# A consumer no instance has read for this long (its instance gone when there came to be
# fewer) is removed by the server.
INACTIVE = 24 * 3600.0


@dataclass
class IngestProgress:
    """What the live clock needs to know from ingest: is there a backlog in the stream,
    and up to which stream sequence is everything of the instance's partitions in the
    journey store. The rule engine notes the furthest sequence the outboxes announced."""

    pending: int | None = None  # None until the first fetch: assume a backlog
    ingested: int = 0
    announced: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Ingest:
    def __init__(
        self, nc: NATS, store: JourneyStore, worker: Worker, settings: Settings, owner: Owner
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._store = store
        self._worker = worker
        self._settings = settings
        self._owner = owner
        self.progress = IngestProgress()
        # Its own connection and thread for the keys, as the store's is busy writing.
        assert settings.database_url is not None
        self._keys = StoredKeys(settings.database_url)
        self._keys_worker = Worker("outcomes-keys")

    async def run(self) -> None:
        settings, owner = self._settings, self._owner
        position = min((await self._worker.run(self._store.positions, owner)).values())
        self.progress.ingested = position
        with suppress(NotFoundError):
            await self._js.delete_consumer(settings.stream, owner.consumer)
        subjects = owner.subjects(settings)
        consumer = await PullConsumer.create(
            self._nc,
            settings.stream,
            ConsumerConfig(
                durable_name=owner.consumer,
                # Several subjects need nats-server 2.10 or later; one is as it always was.
                filter_subject=subjects[0] if len(subjects) == 1 else None,
                filter_subjects=subjects if len(subjects) > 1 else None,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=position + 1,
                # Acknowledging the last message of a batch acknowledges the batch.
                ack_policy=AckPolicy.ALL,
                ack_wait=settings.ack_wait.total_seconds(),
                # A request for more than max_ack_pending waits out its expiry (DESIGN.md).
                max_ack_pending=settings.batch_size * 4,
                inactive_threshold=INACTIVE,
            ),
        )
        # The next batch is fetched and decoded while this one is written.
        upcoming = asyncio.ensure_future(self._next(consumer))
        try:
            while True:
                messages, deliveries, drained_at = await upcoming
                upcoming = asyncio.ensure_future(self._next(consumer))
                if messages:
                    await self._process(messages, deliveries)
                elif drained_at is not None:
                    # What was announced before that fetch was on the stream then, and
                    # the fetch found nothing of ours after what is processed.
                    self.progress.ingested = max(self.progress.ingested, drained_at)
        finally:
            upcoming.cancel()
            # A subscription left open makes the connection's drain wait it out.
            await consumer.close()
            await self._keys_worker.run(self._keys.close)
            self._keys_worker.close()

    async def _next(self, consumer: PullConsumer) -> tuple[list[Msg], list[Delivery], int | None]:
        """The next batch from the stream and its domain events; if there was none and the
        consumer was drained (`PullConsumer.drained`), the furthest stream sequence
        announced before it was asked for. The messages that are not domain events go to
        the dead-letter subject."""
        announced = self.progress.announced
        messages = await consumer.fetch(self._settings.batch_size, expires=0.5)
        if messages:
            self.progress.pending = messages[-1].metadata.num_pending or 0
        elif consumer.drained:
            self.progress.pending = 0
        deliveries: list[Delivery] = []
        for message, opened in zip(messages, await self._opened(messages), strict=True):
            if opened.data is None:
                continue
            try:
                event = DomainEvent.model_validate_json(opened.data)
            except ValidationError as invalid:
                await self._park(message, f"not a domain event: {_first_error(invalid)}")
                continue
            if opened.sealed is not None and event.participant != opened.participant:
                await self._park(message, "sealed for another participant than it names")
                continue
            partition = partition_of(event.participant, self._settings.partitions)
            expected = subject_in(self._settings, event.service, partition, event.type)
            if message.subject != expected:
                # NATS permissions bind a service to its subjects; the body must agree.
                await self._park(message, f"sent on {message.subject}, body says {expected}")
                continue
            sequence = message.metadata.sequence.stream
            fact = event.model_dump(mode="json")
            deliveries.append(Delivery(sequence, partition, fact, opened.sealed, opened.key))
        return messages, deliveries, announced if consumer.drained else None

    async def _opened(self, messages: list[Msg]) -> list[Opened]:
        """Each message's domain event JSON, unsealed with its person's key, the sealed
        text and the key; None for an erased person's (left out), and for one sealed with
        another key (sent to the dead-letter subject). A message that is not sealed is as
        it is: a domain event published before events were sealed, or not one at all."""
        sealed: list[SealedEvent | None] = []
        for message in messages:
            try:
                sealed.append(SealedEvent.model_validate_json(message.data))
            except ValidationError:
                sealed.append(None)
        participants = {each.participant for each in sealed if each is not None}
        keys = {}
        if participants:
            keys = await self._keys_worker.run(self._keys.for_reading, participants)
        opened: list[Opened] = []
        erased = 0
        for message, each in zip(messages, sealed, strict=True):
            if each is None:
                opened.append(Opened(message.data))
            elif (key := keys.get(each.participant)) is None:
                erased += 1
                opened.append(Opened(None))
            else:
                try:
                    plain = unseal(key, each.participant, each.sealed)
                    opened.append(Opened(plain, each.sealed, each.participant, key))
                except (InvalidTag, ValueError):
                    await self._park(message, "sealed: not with its participant's key")
                    opened.append(Opened(None))
        if erased:
            log.info("left out %d events of people erased", erased)
        return opened

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
                    await self._worker.run(self._store.ingest, self._owner, deliveries, trace)
                    return
        except Exception as failure:
            log.warning(
                "ingest of %d events failed, trying one by one: %s", len(deliveries), failure
            )
        by_sequence = {m.metadata.sequence.stream: m for m in messages}
        for delivery in deliveries:
            try:
                await self._worker.run(self._store.ingest, self._owner, [delivery], trace)
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
