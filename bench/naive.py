"""3. The naive baseline: what a first attempt would do — the `eventsourcing` library
saving one event per transaction.

It is outcomes' own journey store (`JourneyStore.ingest`, the code the service runs,
with its Tracking row), fed the same domain events in the same order, once with one
event per call (one transaction each) and once with the service's batch size. Only the
batch size differs, so the two figures say what batching buys at the store, the hop
every event must pass. The bus and the source services are left out: a naive pipeline
cannot be faster than this one hop, so the figure is an upper bound for it. The batched
store is also run with the library's own defaults for its aggregate cache (fast-forward
and deep copies on), to show what turning them off buys.

The events are converted to domain events (validated, pseudonymised) before the clock
starts. The one-per-transaction run stops after `naive_events` or `naive_seconds`,
whichever comes first; its rate is over the events it saved.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from bench.common import Context, Figure, Result
from services.kernel.bus import partition_of
from services.kernel.events import owner, parse_edge_event
from services.kernel.ids import pseudonym
from services.kernel.settings import Settings
from services.kernel.store import application_env, create_schema
from services.outcomes.application import Delivery, JourneyStore
from services.outcomes.owner import Owner

ONE_INSTANCE = Owner.of(Settings())  # outcomes as one instance: every partition


def deliveries(path: Path, count: int, key: str) -> list[Delivery]:
    """The first `count` lines as outcomes receives them: domain events, with a sequence."""
    received = datetime.now(UTC)
    found: list[Delivery] = []
    with path.open(encoding="utf-8") as lines:
        for sequence, line in enumerate(islice(lines, count), start=1):
            edge = parse_edge_event(line)
            participant = pseudonym(edge.person, key)
            domain = edge.to_domain(participant, owner(edge.type), received)
            partition = partition_of(participant, ONE_INSTANCE.total)
            found.append(Delivery(sequence, partition, domain.model_dump(mode="json")))
    return found


def _store(ctx: Context, settings: Settings, **library: str) -> JourneyStore:
    database_url = ctx.fresh_database()
    create_schema(database_url, "outcomes")
    env = application_env(database_url, "outcomes", cache_size=settings.aggregate_cache_size)
    return JourneyStore(env=env | library)


async def _batched_run(
    ctx: Context, settings: Settings, events: list[Delivery], size: int, **library: str
) -> float:
    store = _store(ctx, settings, **library)
    try:
        return await asyncio.to_thread(batched, store, events, size)
    finally:
        store.close()


def one_per_transaction(
    store: JourneyStore, events: list[Delivery], seconds: float
) -> tuple[int, float]:
    started = time.perf_counter()
    stop = started + seconds
    saved = 0
    for delivery in events:
        store.ingest(ONE_INSTANCE, [delivery])
        saved += 1
        if saved % 100 == 0 and time.perf_counter() > stop:
            break
    return saved, time.perf_counter() - started


def batched(store: JourneyStore, events: list[Delivery], size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(events), size):
        store.ingest(ONE_INSTANCE, events[start : start + size])
    return time.perf_counter() - started


async def run(ctx: Context, path: Path) -> Result:
    result = Result("naive")
    settings = Settings()
    scale = ctx.scale
    events = await asyncio.to_thread(
        deliveries, path, scale.naive_events, settings.pseudonym_key.get_secret_value()
    )
    naive_store = _store(ctx, settings)
    try:
        saved, naive_seconds = await asyncio.to_thread(
            one_per_transaction, naive_store, events, scale.naive_seconds
        )
    finally:
        naive_store.close()
    batch_seconds = await _batched_run(ctx, settings, events, scale.service_batch)
    # The same batched store with the library's defaults for its aggregate cache:
    # fast-forward on (a query for newer events on every get of a cached aggregate) and a
    # deep copy of every aggregate it hands out from the cache.
    defaults_seconds = await _batched_run(
        ctx,
        settings,
        events,
        scale.service_batch,
        AGGREGATE_CACHE_FASTFORWARD="y",
        DEEPCOPY_FROM_AGGREGATE_CACHE="y",
    )
    naive_rate = saved / naive_seconds
    batch_rate = len(events) / batch_seconds
    defaults_rate = len(events) / defaults_seconds
    deployed = application_env("postgresql:///x", "x", cache_size=1)
    result.details = {
        "one_per_transaction": {"events": saved, "seconds": round(naive_seconds, 2)},
        "batched": {
            "events": len(events),
            "batch_size": scale.service_batch,
            "seconds": round(batch_seconds, 2),
            "cache_settings": {
                key: deployed.get(key, "library default")
                for key in ("AGGREGATE_CACHE_FASTFORWARD", "DEEPCOPY_FROM_AGGREGATE_CACHE")
            },
        },
        "batched_library_cache_defaults": {"seconds": round(defaults_seconds, 2)},
    }
    result.figures.append(
        Figure(
            key="naive_rate",
            label=f"Naive: journey store, 1 event per transaction ({saved:,} events)",
            value=round(naive_rate, 1),
            unit="events/s",
        )
    )
    result.figures.append(
        Figure(
            key="store_batched_rate",
            label=(
                f"Journey store, {scale.service_batch} events per transaction "
                f"({len(events):,} events), settings as the services run"
            ),
            value=round(batch_rate, 1),
            unit="events/s",
            baseline_label="naive, 1 per transaction",
            baseline=round(naive_rate, 1),
        )
    )
    result.figures.append(
        Figure(
            key="store_batched_rate_vs_defaults",
            label="The same store as the services run it",
            value=round(batch_rate, 1),
            unit="events/s",
            baseline_label="library cache defaults (fast-forward and deep copy on)",
            baseline=round(defaults_rate, 1),
        )
    )
    return result
