"""The services' own bus code against the NATS permissions they are deployed with
(deploy/nats/accounts.conf), on a real nats-server started with that file: each service
connects as its own user and does its work, and none can read another's replies or
publish another's events.

This needs a server with the deployment's accounts, so it starts its own (as `los up`
starts one) whether or not NATS_URL names another.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from services.kernel.bus import (
    MSG_ID,
    Outgoing,
    PullConsumer,
    clock_subject,
    events_subject,
    inbox_prefix,
    publish_all,
    stream_config,
    subject_for,
)
from services.kernel.embedded import embedded_nats
from services.kernel.runtime import connect
from services.kernel.settings import Settings
from services.outcomes.owner import Owner

ACCOUNTS = Path(__file__).parents[2] / "deploy" / "nats" / "accounts.conf"
USERS = ("intake", "journey", "employer", "outcomes", "admin", "sys")
SETTINGS = Settings()


@pytest.fixture
async def bus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[str], str]]:
    """A nats-server with the deployment's accounts and the stream made by `admin`, as an
    operator makes it; yields the URL each user connects with."""
    for user in USERS:
        monkeypatch.setenv(f"NATS_{user.upper()}_PASSWORD", f"pw-{user}")
    (tmp_path / ACCOUNTS.name).write_bytes(ACCOUNTS.read_bytes())  # included by a relative path
    config = tmp_path / "nats.conf"
    config.write_text(f"include {ACCOUNTS.name}\n", encoding="utf-8")
    with embedded_nats(tmp_path / "nats", config=config) as url:

        def url_of(user: str) -> str:
            return url.replace("nats://", f"nats://{user}:pw-{user}@")

        admin = await nats.connect(url_of("admin"))
        await admin.jetstream().add_stream(stream_config(SETTINGS))
        await admin.close()
        yield url_of


def _as(url: str) -> Settings:
    return SETTINGS.model_copy(update={"nats_url": url})


async def _refused(url: str, act: Callable[[NATS], Awaitable[object]]) -> str:
    """What the server said when a connection as the URL's user did `act` (in nats-py's
    lower case)."""
    said: asyncio.Queue[str] = asyncio.Queue()

    async def error(failure: Exception) -> None:
        await said.put(str(failure))

    nc = await nats.connect(url, error_cb=error)
    try:
        await act(nc)
        return await asyncio.wait_for(said.get(), 5)
    finally:
        await nc.close()


@pytest.mark.servers
async def test_each_service_does_its_work_as_its_own_user(bus: Callable[[str], str]) -> None:
    participant = uuid.uuid4().hex
    outcomes = await connect(_as(bus("outcomes")), "outcomes")
    heard: asyncio.Queue[bytes] = asyncio.Queue()

    async def announced(msg: Msg) -> None:
        await heard.put(msg.data)

    await outcomes.connection.subscribe(clock_subject(SETTINGS), cb=announced)
    sequences = []
    for service, event_type in [
        ("intake", "participant.referred"),
        ("journey", "measure.started"),
        ("employer", "placement.started"),
    ]:
        source = await connect(_as(bus(service)), service)
        assert source.connection._inbox_prefix.decode() == inbox_prefix(service)
        message = Outgoing(
            subject_for(SETTINGS, service, participant, event_type),
            b"{}",
            {MSG_ID: str(uuid.uuid4())},
        )
        sequences.append(await publish_all(source.connection.jetstream(), [message]))
        await source.connection.publish(clock_subject(SETTINGS, service), service.encode())
        assert await asyncio.wait_for(heard.get(), 5) == service.encode()
        await source.stop()
    assert sequences == [1, 2, 3]
    # Outcomes makes its consumer, pulls the three through its own inbox and acknowledges.
    consumer = await PullConsumer.create(
        outcomes.connection,
        SETTINGS.stream,
        ConsumerConfig(
            durable_name="outcomes",
            filter_subject=events_subject(SETTINGS),
            ack_policy=AckPolicy.ALL,
            max_ack_pending=100,
        ),
    )
    pulled = await consumer.fetch(10, expires=2.0)
    assert [m.metadata.sequence.stream for m in pulled] == sequences
    await pulled[-1].ack_sync(timeout=5)
    info = await outcomes.connection.jetstream().consumer_info(SETTINGS.stream, "outcomes")
    assert (info.num_ack_pending, info.num_pending) == (0, 0)
    await consumer.close()
    # One of two instances pulls the same through a consumer of its own partitions.
    shared = (
        Owner.of(SETTINGS.model_copy(update={"outcomes_instances": 2, "outcomes_instance": n}))
        for n in (0, 1)
    )
    owner = next(owner for owner in shared if owner.owns(participant))
    consumer = await PullConsumer.create(
        outcomes.connection,
        SETTINGS.stream,
        ConsumerConfig(
            durable_name=owner.consumer,
            filter_subjects=owner.subjects(SETTINGS),
            ack_policy=AckPolicy.ALL,
            max_ack_pending=100,
        ),
    )
    pulled = await consumer.fetch(10, expires=2.0)
    assert [m.metadata.sequence.stream for m in pulled] == sequences
    await pulled[-1].ack_sync(timeout=5)
    await consumer.close()
    await outcomes.stop()


@pytest.mark.servers
@pytest.mark.parametrize(
    ("service", "theirs"),
    [
        ("intake", f"{inbox_prefix('outcomes')}.>"),
        ("outcomes", f"{inbox_prefix('journey')}.>"),
        ("journey", "_INBOX.>"),  # nats-py's default, which every service's inbox was under
    ],
)
async def test_no_service_reads_another_ones_replies(
    bus: Callable[[str], str], service: str, theirs: str
) -> None:
    said = await _refused(bus(service), lambda nc: nc.subscribe(theirs))
    assert said == f'nats: permissions violation for subscription to "{theirs.lower()}"'


@pytest.mark.servers
async def test_no_source_publishes_another_ones_events(bus: Callable[[str], str]) -> None:
    journeys_subject = subject_for(SETTINGS, "journey", uuid.uuid4().hex, "measure.started")
    said = await _refused(bus("intake"), lambda nc: nc.publish(journeys_subject, b"{}"))
    assert said == f'nats: permissions violation for publish to "{journeys_subject}"'
