"""A test run leaves nothing behind on servers that outlive it (`DATABASE_URL`,
`NATS_URL`): the databases and streams its tests made are dropped at the end."""

from __future__ import annotations

import asyncio

import nats
import psycopg
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from services.kernel.embedded import Servers
from tests.support import drop_what_the_run_made, fresh_bus, fresh_database


async def _stream_exists(nats_url: str, name: str) -> bool:
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().stream_info(name)
        return True
    except NotFoundError:
        return False
    finally:
        await client.close()


async def _add_stream(nats_url: str, name: str) -> None:
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    finally:
        await client.close()


def test_the_databases_and_streams_a_run_made_are_dropped(real_servers: Servers) -> None:
    database = fresh_database(real_servers.database_url).rsplit("/", 1)[1]
    # One stream the run named was made; the other never was, and is no error to drop.
    used, _ = fresh_bus(real_servers.nats_url), fresh_bus(real_servers.nats_url)
    asyncio.run(_add_stream(real_servers.nats_url, used["LOS_STREAM"]))

    drop_what_the_run_made(real_servers.database_url, real_servers.nats_url)

    with psycopg.connect(real_servers.database_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        assert found.fetchone() is None
    assert not asyncio.run(_stream_exists(real_servers.nats_url, used["LOS_STREAM"]))
