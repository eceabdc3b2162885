"""How a service process runs: settings, telemetry, store, bus and gRPC server, wired once.

`serve_source` runs one of the three source services; outcomes has its own `main.py`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from faststream.nats import NatsBroker

from services.kernel import sources, telemetry
from services.kernel.bus import ensure_stream, make_broker
from services.kernel.checks import CheckLog
from services.kernel.outbox import OutboxRelay
from services.kernel.rpc import Service, start_server
from services.kernel.settings import Settings, get_settings
from services.kernel.source import SourceApplication
from services.kernel.sources import SourcesServicer
from services.kernel.store import Worker, application_env, create_schema

log = logging.getLogger(__name__)

# The cycle collector's youngest generation is collected after this many allocations
# (Python's default is 700). A service allocates many short-lived objects for every event
# (pydantic models, dicts, the library's events) and frees nearly all of them by reference
# counting, so at 700 most collections find nothing: at 50,000 the services spent about a
# quarter less CPU per event, at 200,000 a few per cent less again (BENCHMARKS.md,
# findings item 21). The older generations keep their defaults, relative to this one.
YOUNG_COLLECTION = 200_000


def run(main: Callable[[Settings], Coroutine[Any, Any, None]], keys: tuple[str, ...]) -> None:
    """Run a service until SIGTERM or SIGINT, then stop cleanly. `keys` are the secret
    settings it uses: it warns of each left at its public default."""
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    servers = {"NATS_URL": settings.nats_url, "DATABASE_URL": settings.database_url}
    if missing := [name for name, url in servers.items() if url is None]:
        log.error(
            "%s not set: `los up` starts the services on embedded servers, or name yours",
            " and ".join(missing),
        )
        raise SystemExit(2)
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
    for key in settings.public_defaults(keys):
        log.warning(
            "LOS_%s is the public development default: fit for synthetic data only", key.upper()
        )

    async def until_signalled() -> None:
        task = asyncio.create_task(main(settings))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        orphaned = asyncio.create_task(_parent_gone(task))
        try:
            await task
        except asyncio.CancelledError:
            log.info("stopped")
        finally:
            orphaned.cancel()

    asyncio.run(until_signalled())


async def _parent_gone(task: asyncio.Task[None]) -> None:
    """Stop when the process that started this one (`los up`, a test) is gone, so a killed
    parent leaves no orphans. Polling, because a `preexec_fn` is unsafe once gRPC threads run."""
    parent = os.getppid()
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent:
            break
    log.warning("parent process %d is gone; stopping", parent)
    task.cancel()


async def connect(settings: Settings, service: str) -> NatsBroker:
    broker = make_broker(settings, service)
    await broker.connect()
    await ensure_stream(broker.connection.jetstream(), settings)
    return broker


def prepare_store(settings: Settings, schema: str) -> dict[str, str]:
    """Create the service's schema and return the environment of its Application."""
    assert settings.database_url is not None, "`run` refuses to start without DATABASE_URL"
    create_schema(settings.database_url, schema)
    return application_env(settings.database_url, schema, cache_size=settings.aggregate_cache_size)


async def serve_source(
    settings: Settings,
    service: str,
    port: int,
    make_app: Callable[[dict[str, str]], SourceApplication],
    ready: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Run a source service: its gRPC `Sources` API, its store and its outbox relay."""
    telemetry.setup(service, settings.telemetry)
    app = make_app(prepare_store(settings, service))
    worker = Worker(service)
    broker = await connect(settings, service)
    relay = OutboxRelay(app, worker, broker.connection, settings, service)
    assert settings.database_url is not None, "`run` refuses to start without DATABASE_URL"
    checks = CheckLog(settings.database_url, service)
    servicer = SourcesServicer(app, worker, settings, relay, checks)
    registered = Service(servicer, sources.register, sources.SERVICE)
    server, bound = await start_server([registered], settings.host, port, settings.tls)
    log.info("%s serving on %s:%d", service, settings.host, bound)
    if ready is not None:
        await ready(bound)
    try:
        await relay.run()
    finally:
        await server.stop(grace=2)
        await broker.stop()
        worker.close()
        checks.close()
        app.close()
