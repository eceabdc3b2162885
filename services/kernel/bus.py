"""The one bus wrapper: NATS JetStream through FastStream.

Domain events travel on `{prefix}.events.{service}.p{partition}.{type}`. The partition is
derived from the pseudonymous participant id, so outcomes can split the partitions
between instances and still see each person's events in order. Every message carries
`Nats-Msg-Id` = `event_id`, which JetStream uses to drop a republished duplicate within
the stream's duplicate window, and the W3C trace context of the event.

Beside the stream, each source's outbox announces on core NATS, `{prefix}.clock.{service}`,
how far it has published what it received (`ClockAnnouncement`), for outcomes' live clock.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError
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
    partition = partition_of(participant, settings.partitions)
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


def make_broker(settings: Settings) -> NatsBroker:
    assert settings.nats_url is not None, "the runtime resolves NATS_URL before connecting"
    return NatsBroker(settings.nats_url, max_reconnect_attempts=-1, logger=None)


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
