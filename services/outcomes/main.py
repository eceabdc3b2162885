"""The outcomes process: `python -m services.outcomes.main`.

Ingest (JetStream → journey store), the rule engine (journey store → alerts, deadlines
on the live clock) and the `Alerts` gRPC API, in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.kernel import telemetry
from services.kernel.bus import clock_subject
from services.kernel.rpc import Service, start_server
from services.kernel.runtime import connect, prepare_store, run
from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.outcomes import alerts
from services.outcomes.alerts import AlertFeed
from services.outcomes.api import AlertsServicer
from services.outcomes.application import JourneyStore, open_pool
from services.outcomes.engine import RuleEngine
from services.outcomes.ingest import Ingest
from services.outcomes.owner import Owner
from services.rpc.los.v1 import alerts_pb2_grpc

log = logging.getLogger(__name__)


async def main(settings: Settings, ready: Callable[[int], Awaitable[None]] | None = None) -> None:
    telemetry.setup("outcomes", settings.telemetry)
    store = JourneyStore(env=prepare_store(settings, "outcomes"))
    worker = Worker("outcomes")
    pool = await open_pool(settings.database_url)
    await alerts.create_tables(pool)
    broker = await connect(settings, "outcomes")
    owner = Owner.of(settings)
    ingest = Ingest(broker.connection, store, worker, settings, owner)
    engine = RuleEngine(pool, store, worker, settings, ingest.progress, owner)
    await broker.connection.subscribe(clock_subject(settings), cb=engine.announced)
    feed = AlertFeed(pool)
    await feed.start()
    api = AlertsServicer(
        feed, pool, store, worker, settings.token_key.get_secret_value(), settings.caseload_cap
    )
    servicer = Service(api, alerts_pb2_grpc.add_AlertsServicer_to_server, "los.v1.Alerts")
    server, bound = await start_server(
        [servicer], settings.host, settings.outcomes_port, settings.tls
    )
    log.info("outcomes (%s) serving on %s:%d", owner.name, settings.host, bound)
    if ready is not None:
        await ready(bound)
    try:
        await asyncio.gather(ingest.run(), engine.run())
    finally:
        await server.stop(grace=2)
        await feed.stop()
        await broker.stop()
        await pool.close()
        worker.close()
        store.close()


if __name__ == "__main__":
    run(main, keys=("token_key",))
