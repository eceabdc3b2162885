"""The outcomes process: `python -m services.outcomes.main`.

Ingest (JetStream → journey store), the rule engine (journey store → alerts, deadlines
on the live clock) and the `Alerts` gRPC API, in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from services.kernel import telemetry
from services.kernel.bus import clock_subject
from services.kernel.rpc import Service, start_server
from services.kernel.runtime import connect, prepare_store, run
from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.outcomes import schema
from services.outcomes.alerts import AlertFeed
from services.outcomes.api import AlertsServicer
from services.outcomes.application import JourneyStore, open_pool
from services.outcomes.engine import RuleEngine
from services.outcomes.ingest import Ingest
from services.outcomes.owner import Owner, Taken, claim, held
from services.rpc.los.v1 import alerts_pb2_grpc

log = logging.getLogger(__name__)
CLAIM_CHECK = 5.0  # seconds between checks that the instance still holds its partitions


async def main(settings: Settings, ready: Callable[[int], Awaitable[None]] | None = None) -> None:
    telemetry.setup("outcomes", settings.telemetry)
    assert settings.database_url is not None, "`run` refuses to start without DATABASE_URL"
    owner = Owner.of(settings)
    try:
        claimed = await claim(settings.database_url, owner)
    except Taken as taken:
        log.error("%s", taken)
        raise SystemExit(1) from None
    try:
        await _serve(settings, owner, claimed, ready)
    finally:
        await claimed.close()


async def _serve(
    settings: Settings,
    owner: Owner,
    claimed: asyncpg.Connection,
    ready: Callable[[int], Awaitable[None]] | None,
) -> None:
    """Ingest, the rule engine and the Alerts API of the owner's partitions, while
    `claimed` holds them."""
    store = JourneyStore(env=prepare_store(settings, "outcomes"))
    worker = Worker("outcomes")
    pool = await open_pool(settings.database_url)
    await schema.create_tables(pool)
    broker = await connect(settings, "outcomes")
    ingest = Ingest(broker.connection, store, worker, settings, owner)
    engine = RuleEngine(pool, store, worker, settings, ingest.progress, owner)
    await broker.connection.subscribe(clock_subject(settings), cb=engine.announced)
    feed = AlertFeed(pool)
    await feed.start()
    api = AlertsServicer(feed, pool, store, worker, settings)
    servicer = Service(api, alerts_pb2_grpc.add_AlertsServicer_to_server, "los.v1.Alerts")
    server, bound = await start_server(
        [servicer], settings.host, settings.outcomes_port, settings.tls
    )
    log.info("outcomes (%s) serving on %s:%d", owner.name, settings.host, bound)
    if ready is not None:
        await ready(bound)
    try:
        async with asyncio.TaskGroup() as running:  # one failing stops the others
            running.create_task(ingest.run())
            running.create_task(engine.run())
            running.create_task(_keep(claimed, owner))
    finally:
        await server.stop(grace=2)
        await feed.stop()
        await broker.stop()
        await pool.close()
        worker.close()
        store.close()


async def _keep(claimed: asyncpg.Connection, owner: Owner) -> None:
    """Stop once the session that holds the instance's partitions no longer does (gone,
    or a failover to a primary without its locks), or does not answer: then another
    instance may take them. It is restarted and claims them again."""
    while True:
        await asyncio.sleep(CLAIM_CHECK)
        if not await asyncio.wait_for(held(claimed, owner), CLAIM_CHECK):
            raise ConnectionError("this instance's session no longer holds its partitions")


if __name__ == "__main__":
    run(main, keys=("token_key",))
