"""The one bus wrapper: NATS JetStream through FastStream.

Domain events travel on `{prefix}.events.{service}.p{partition}.{type}`. The partition is
derived from the pseudonymous participant id, so outcomes can split the partitions
between instances and still see each person's events in order. Every message carries
`Nats-Msg-Id` = `event_id`, which JetStream uses to drop a republished duplicate within
the stream's duplicate window, and the W3C trace context of the event.

Beside the stream, each source's outbox announces on core NATS, `{prefix}.clock.{service}`,
how far it has published what it received (`ClockAnnouncement`), for outcomes' live clock.

Outcomes reads the stream through a `PullConsumer`, in batches and in stream order.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass

import orjson
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    DEFAULT_PREFIX,
    ConsumerConfig,
    Header,
    StatusCode,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError
from pydantic import AwareDatetime, BaseModel

from services.kernel.settings import Settings

MSG_ID = "Nats-Msg-Id"
DEAD_REASON = "Los-Dead-Reason"


def partition_of(participant: str, partitions: int) -> int:
    """Stable partition of a pseudonymous participant id (itself a hex digest)."""
    digest = hashlib.blake2b(participant.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def events_subject(settings: Settings, service: str = "*", partition: str = "*") -> str:
    """The subject filter for domain events; with no arguments, all of them."""
    return f"{settings.subject_prefix}.events.{service}.{partition}.>"


def subject_for(settings: Settings, service: str, participant: str, event_type: str) -> str:
    return subject_in(settings, service, partition_of(participant, settings.partitions), event_type)


def subject_in(settings: Settings, service: str, partition: int, event_type: str) -> str:
    return f"{settings.subject_prefix}.events.{service}.p{partition:03d}.{event_type}"


def clock_subject(settings: Settings, service: str = "*") -> str:
    return f"{settings.subject_prefix}.clock.{service}"


class ClockAnnouncement(BaseModel):
    """A source service has published everything it received before `received_by`; the
    last of it is at `stream_sequence` (or before: it is the stream's end when the
    service started, until it publishes). Carries no participant."""

    service: str
    received_by: AwareDatetime
    stream_sequence: int


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream,
        subjects=[f"{settings.subject_prefix}.events.>", settings.dead_letter_subject],
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window.total_seconds(),
    )


def inbox_prefix(service: str) -> str:
    """Where `service` receives its replies: JetStream's answers, publish acks and the
    messages outcomes pulls. Each service's own, so that the NATS permissions can let each
    read only its own (deploy/nats/accounts.conf), not every reply on the bus."""
    return f"_INBOX_{service}"


def make_broker(settings: Settings, service: str) -> NatsBroker:
    assert settings.nats_url is not None, "the runtime resolves NATS_URL before connecting"
    return NatsBroker(
        settings.nats_url,
        max_reconnect_attempts=-1,
        logger=None,
        inbox_prefix=inbox_prefix(service),
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the stream if it is missing. An existing one is left as its operator made it
    (replicas, limits): a service must never scale a clustered stream down."""
    try:
        await js.stream_info(settings.stream)
    except NotFoundError:
        await js.add_stream(stream_config(settings))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for the bus: subject, JSON body and headers (with its Nats-Msg-Id)."""

    subject: str
    body: bytes
    headers: Mapping[str, str]


PUBLISH_TIMEOUT = 10.0  # seconds for a batch's acks


async def publish_all(js: JetStreamContext, messages: Sequence[Outgoing]) -> int:
    """Publish concurrently and wait for every ack; returns the highest stream sequence
    acknowledged (0 for no messages).

    A message JetStream recognises by its Nats-Msg-Id is acknowledged as a duplicate, with
    the sequence it was stored at, and not stored again: a republish after a crash is
    harmless.
    """
    # Sent one after the other without waiting, the acks gathered as they come: no
    # request, inbox and timer of its own for every message.
    pending = [await js.publish_async(m.subject, m.body, headers=dict(m.headers)) for m in messages]
    acks = await asyncio.wait_for(asyncio.gather(*pending), PUBLISH_TIMEOUT)
    return max((ack.seq for ack in acks), default=0)


async def dead_letter(
    js: JetStreamContext, settings: Settings, body: bytes, headers: Mapping[str, str], reason: str
) -> None:
    """Park a message that cannot be processed, with the reason, so the stream goes on."""
    parked = {k: v for k, v in headers.items() if k != MSG_ID}
    parked[DEAD_REASON] = reason
    await js.publish(settings.dead_letter_subject, body, headers=parked)


# Statuses that end a pull request without an error, as nats-py's own fetch takes them;
# of those, the ones that say the consumer had nothing more to deliver (409 may be a
# leader change or a deleted consumer).
_NOTHING_MORE = frozenset({StatusCode.NO_MESSAGES, StatusCode.REQUEST_TIMEOUT})
_REQUEST_ENDED = _NOTHING_MORE | {StatusCode.CONFLICT}
# How long a batch that has begun may wait for more before it is handed over. Under a
# backlog a batch fills at once; caught up, it trades this much latency for batches of
# more than one event (each batch is a transaction and a pass of the rule engine).
LINGER = 0.02


class PullConsumer:
    """A durable JetStream pull consumer, read in batches by one reader in stream order.

    nats-py's `PullSubscription.fetch` waits for each message of a batch with a task and a
    timer of its own (`Subscription.next_msg`): ~50 µs of CPU a message on this machine
    (`bench/findings.md`), more than the rest of a Python consumer's hop. This sends the
    same pull request (NATS ADR-13: `batch`, `expires`) and collects what comes through a
    subscription callback into one queue: ~7 µs a message. The messages are nats-py's
    own (`ack`, `metadata`). One request is open at a time; what it brings after a fetch
    has returned goes to the next fetch, so nothing is reordered or lost.

    After a fetch, `drained` says whether it found the consumer drained: it sent a request
    of its own, which the server ended as having nothing more (no messages, or its time
    up) and which brought nothing. Then every message stored before the fetch began has
    been delivered by earlier fetches, provided fewer than the consumer's
    `max_ack_pending` were unacknowledged (the server holds a request while that many
    are). An empty fetch for another reason (a request still open from before, a leader
    change, a deleted consumer) says nothing of the kind.
    """

    def __init__(self, nc: NATS, stream: str, durable: str) -> None:
        self._nc = nc
        self._next = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._arrived: deque[Msg] = deque()
        self._owed = 0  # messages the open request may still bring: 0 when none is open
        self._open_until = 0.0  # past this, a request that never ended is taken as lost
        self._wanted = 1  # how many arrived messages wake the fetch waiting for them
        self._ready = asyncio.Event()
        self._failure: APIError | None = None
        self._subscription: Subscription | None = None
        self._ended_empty = False  # the last request to end had nothing more
        self.drained = False

    @classmethod
    async def create(cls, nc: NATS, stream: str, config: ConsumerConfig) -> PullConsumer:
        """Create (or update) the durable consumer `config` names, and subscribe to it."""
        assert config.durable_name, "a pull consumer here is durable"
        await nc.jetstream().add_consumer(stream, config)
        consumer = cls(nc, stream, config.durable_name)
        consumer._subscription = await nc.subscribe(consumer._inbox, cb=consumer._arrive)
        return consumer

    async def fetch(self, batch: int, expires: float, linger: float = LINGER) -> list[Msg]:
        """Up to `batch` messages, the next in stream order: once `batch` have come, or
        `linger` seconds after the first; none if none comes within `expires` seconds."""
        # The margin covers the server's answer on its way back.
        sent = self._owed == 0
        if sent or time.monotonic() > self._open_until:
            self._owed = batch
            self._ended_empty = False
            self._open_until = time.monotonic() + expires + 1.0
            request = {"batch": batch, "expires": int(expires * 1e9)}
            await self._nc.publish(self._next, orjson.dumps(request), reply=self._inbox)
        await self._wait(1, expires + 1.0)
        if self._arrived:
            await self._wait(batch, linger)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        messages = [self._arrived.popleft() for _ in range(min(batch, len(self._arrived)))]
        self.drained = sent and not messages and self._owed == 0 and self._ended_empty
        return messages

    async def _wait(self, count: int, seconds: float) -> None:
        """Until `count` messages have come or the open request has ended; `seconds` at most."""
        if len(self._arrived) >= count or self._owed == 0:
            return
        self._wanted = count
        self._ready.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), seconds)

    async def _arrive(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(Header.STATUS)
        if status is None:
            self._arrived.append(msg)
            self._owed = max(self._owed - 1, 0)  # one of an earlier request's may come late
            if len(self._arrived) < self._wanted and self._owed > 0:
                return
        elif status == StatusCode.CONTROL_MESSAGE:
            return  # a heartbeat or flow control, which this consumer does not ask for
        else:
            self._owed = 0  # the request has ended
            self._ended_empty = status in _NOTHING_MORE
            if status not in _REQUEST_ENDED:
                description = headers.get(Header.DESCRIPTION)
                self._failure = APIError(code=int(status), description=description)
        self._ready.set()

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
