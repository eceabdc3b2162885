"""`PullConsumer` against a real nats-server: batches in stream order, what an
acknowledgement covers, a live message not kept waiting for its batch to fill, and
reading on after the server restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from services.kernel.bus import PullConsumer
from services.kernel.embedded import Servers, embedded_nats, free_port


@pytest.fixture
async def stream(real_servers: Servers) -> AsyncIterator[tuple[NATS, str]]:
    """A connection and a stream of its own, `{name}.>`, deleted afterwards."""
    nc = await nats.connect(real_servers.nats_url)
    name = f"PULL_{uuid.uuid4().hex[:8]}"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    try:
        yield nc, name
    finally:
        await js.delete_stream(name)
        await nc.close()


def _config(name: str, ack_wait: float = 30.0) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name="reader",
        filter_subject=f"{name}.>",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.ALL,
        ack_wait=ack_wait,
        max_ack_pending=2_000,
    )


async def _publish(nc: NATS, name: str, bodies: list[bytes]) -> None:
    js = nc.jetstream()
    acks = [await js.publish_async(f"{name}.e", body) for body in bodies]
    await asyncio.gather(*acks)


@pytest.mark.servers
async def test_batches_come_whole_and_in_stream_order(stream: tuple[NATS, str]) -> None:
    nc, name = stream
    bodies = [f"m{i}".encode() for i in range(1_250)]
    await _publish(nc, name, bodies)
    consumer = await PullConsumer.create(nc, name, _config(name))
    try:
        # A generous linger: the last, partial batch is all there before it is handed over.
        batches = [await consumer.fetch(500, expires=2.0, linger=1.0) for _ in range(3)]
        after = await consumer.fetch(500, expires=0.3)
    finally:
        await consumer.close()

    assert [len(batch) for batch in batches] == [500, 500, 250]
    got = [m for batch in batches for m in batch]
    assert [m.data for m in got] == bodies
    assert [m.metadata.sequence.stream for m in got] == list(range(1, 1_251))
    assert batches[0][-1].metadata.num_pending == 750
    assert after == []


@pytest.mark.servers
async def test_acknowledging_the_last_message_covers_its_batch_and_no_more(
    stream: tuple[NATS, str],
) -> None:
    nc, name = stream
    await _publish(nc, name, [f"m{i}".encode() for i in range(30)])
    consumer = await PullConsumer.create(nc, name, _config(name, ack_wait=1.0))
    try:
        first = await consumer.fetch(10, expires=2.0)
        await first[-1].ack()
        second = await consumer.fetch(10, expires=2.0)  # never acknowledged
    finally:
        await consumer.close()
    await asyncio.sleep(1.5)  # past ack_wait

    again = await PullConsumer.create(nc, name, _config(name, ack_wait=1.0))
    try:
        # Exactly the 20 expected: the batch fills at once, before ack_wait (1 s) would
        # send the unacknowledged ones yet again.
        redelivered = await again.fetch(20, expires=2.0)
    finally:
        await again.close()

    assert [m.metadata.sequence.stream for m in second] == list(range(11, 21))
    assert [m.metadata.sequence.stream for m in redelivered] == list(range(11, 31))


@pytest.mark.servers
async def test_a_message_published_while_a_fetch_waits_comes_at_once(
    stream: tuple[NATS, str],
) -> None:
    nc, name = stream
    consumer = await PullConsumer.create(nc, name, _config(name))
    try:
        # Expiring long after the test would give up: waiting for the batch to fill fails.
        waiting = asyncio.ensure_future(consumer.fetch(500, expires=60.0))
        await asyncio.sleep(0.2)
        await _publish(nc, name, [b"live"])
        got = await asyncio.wait_for(waiting, 10)
        # What follows in a burst comes with the next fetch, in order.
        await _publish(nc, name, [b"a", b"b", b"c"])
        burst = await consumer.fetch(500, expires=5.0, linger=1.0)
    finally:
        await consumer.close()

    assert [m.data for m in got] == [b"live"]
    assert [m.data for m in burst] == [b"a", b"b", b"c"]


@pytest.mark.servers
async def test_a_fetch_says_it_found_the_consumer_drained_only_when_it_did(
    stream: tuple[NATS, str],
) -> None:
    nc, name = stream
    await _publish(nc, name, [b"a"])
    consumer = await PullConsumer.create(nc, name, _config(name))
    try:
        first = await consumer.fetch(5, expires=1.0, linger=0.1)
        after_first = consumer.drained  # it brought a message
        # The first request is still open, for four more: the fetch waits it out.
        ended = await consumer.fetch(5, expires=0.5)
        after_ended = consumer.drained
        empty = await consumer.fetch(5, expires=0.5)  # a request of its own
        after_empty = consumer.drained
        # A request the server ends because the consumer is gone (409) finds nothing,
        # and says nothing of what the stream holds.
        waiting = asyncio.ensure_future(consumer.fetch(5, expires=5.0))
        await asyncio.sleep(0.2)
        await nc.jetstream().delete_consumer(name, "reader")
        gone = await asyncio.wait_for(waiting, 10)
        after_gone = consumer.drained
    finally:
        await consumer.close()

    assert [m.data for m in first] == [b"a"]
    assert not after_first
    assert ended == []
    assert not after_ended
    assert empty == []
    assert after_empty
    assert gone == []
    assert not after_gone


@pytest.mark.servers
@pytest.mark.timeout(120)
async def test_reading_resumes_where_it_was_after_nats_server_restarts(tmp_path: Path) -> None:
    # A nats-server of this test's own, stopped and started again on its port and folder.
    port, name = free_port(), "RESTART"
    with embedded_nats(tmp_path, port) as url:
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        nc = await nats.connect(
            url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, reconnected_cb=on_reconnect
        )
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        await _publish(nc, name, [f"before-{i}".encode() for i in range(10)])
        consumer = await PullConsumer.create(nc, name, _config(name))
        before = await consumer.fetch(10, expires=2.0)
        await before[-1].ack()
        await nc.flush()
    try:
        # Down: nothing can come, and the fetch gives up after its expiry.
        assert await consumer.fetch(10, expires=0.5) == []
        with embedded_nats(tmp_path, port):
            await asyncio.wait_for(reconnected.wait(), 30)
            await _publish(nc, name, [f"after-{i}".encode() for i in range(5)])
            after: list[Msg] = []
            for _ in range(10):  # a request from before the restart may end one fetch early
                after += await consumer.fetch(10, expires=1.0)
                if len(after) >= 5:
                    break
    finally:
        await consumer.close()
        await nc.close()

    assert [m.data for m in before] == [f"before-{i}".encode() for i in range(10)]
    assert [m.data for m in after] == [f"after-{i}".encode() for i in range(5)]
