"""6. Memory: peak RSS of the outcomes process as the number of participants grows.

Only the outcomes process runs (ingest, rule engine and the Alerts API, as deployed).
Domain events are published straight to its JetStream stream, as the source services'
outboxes would publish them (sealed with each participant's key, made in the key store
as a source service makes it): per participant a referral (intake) and a measure start
(journey), recorded over the last two years. After each stage (`memory_participants`,
cumulative) the benchmark waits until outcomes has every fact in its journey store and
its rules have judged every participant, then reads the process's peak RSS (`VmHWM` of
/proc/<pid>/status, the high-water mark since it started) and its current RSS.

Outcomes keeps up to `LOS_AGGREGATE_CACHE_SIZE` (default 50,000) journeys cached;
memory should stop growing once participants outnumber the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import Context, Figure, Result, delete_stream, status_kb, wait_for
from bench.ingest import count_facts, rules_settled
from services.cli.platform import start_service, stop, wait_healthy
from services.kernel.bus import MSG_ID, stream_config, subject_for
from services.kernel.embedded import free_port
from services.kernel.events import SealedEvent
from services.kernel.keys import Keys, StoredKeys, create_keys, seal
from services.kernel.settings import Settings, get_settings

EVENTS_PER_PARTICIPANT = 2
SPAN = timedelta(days=730)
PUBLISH_CHUNK = 2_000


def _participant(index: int) -> str:
    return hashlib.sha256(f"bench-memory-{index}".encode()).hexdigest()


def messages(
    settings: Settings, keys: Keys, first: int, last: int, total: int, end: datetime
) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """Subject, body and headers of participants [first, last), in recorded_at order,
    sealed with their keys in `keys` (made for them a thousand at a time)."""
    step = SPAN / total
    made: dict[str, AESGCM] = {}
    for index in range(first, last):
        participant = _participant(index)
        if participant not in made:
            made = keys.for_writing(
                [_participant(i) for i in range(index, min(index + 1_000, last))]
            )
        recorded = end - SPAN + step * index
        base: dict[str, Any] = {
            "source": {"system": "nav", "org": "974760673"},
            "participant": participant,
        }
        referred = {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{participant}/r")),
            "type": "participant.referred",
            "occurred_at": recorded.isoformat(),
            "recorded_at": recorded.isoformat(),
            **base,
            "service": "intake",
            "data": {"channel": "nav", "org_unit": f"nav-{index % 400:04d}"},
        }
        started = {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{participant}/m")),
            "type": "measure.started",
            "occurred_at": (recorded + timedelta(days=3)).isoformat(),
            "recorded_at": (recorded + step / 2).isoformat(),
            **base,
            "service": "journey",
            "data": {"measure_id": f"m-{index}", "measure_code": "AVKLARING",
                     "provider": "974760673"},
        }  # fmt: skip
        for event in (referred, started):
            subject = subject_for(settings, event["service"], participant, event["type"])
            sealed = seal(made[participant], participant, json.dumps(event).encode())
            body = orjson.dumps({"participant": participant, "sealed": sealed})
            yield subject, body, {MSG_ID: event["event_id"]}


async def publish(
    nats_url: str, settings: Settings, keys: Keys, first: int, last: int, total: int, end: datetime
) -> float:
    client = await nats.connect(nats_url)
    started = time.perf_counter()
    try:
        js = client.jetstream()
        pending: list[Any] = []
        for subject, body, headers in messages(settings, keys, first, last, total, end):
            pending.append(js.publish(subject, body, headers=headers))
            if len(pending) == PUBLISH_CHUNK:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await client.close()
    return time.perf_counter() - started


async def run(ctx: Context) -> Result:
    result = Result("memory")
    stages = ctx.scale.memory_participants
    total = stages[-1]
    env = ctx.isolated_env()
    env["LOS_OUTCOMES_PORT"] = str(free_port())
    settings = Settings(
        subject_prefix=env["LOS_SUBJECT_PREFIX"],
        stream=env["LOS_STREAM"],
        dead_letter_subject=env["LOS_DEAD_LETTER_SUBJECT"],
    )
    create_keys(env["DATABASE_URL"])
    keys = StoredKeys(env["DATABASE_URL"])
    sample = next(messages(settings, keys, 0, 1, total, datetime.now(UTC)))
    SealedEvent.model_validate_json(sample[1])  # the published shape is the real one
    client = await nats.connect(ctx.servers.nats_url)
    try:
        await client.jetstream().add_stream(stream_config(settings))
    finally:
        await client.close()

    process_env = dict(os.environ) | env
    log_dir = ctx.log_dir / "memory"
    process = start_service("outcomes", process_env, log_dir)
    end = datetime.now(UTC) - timedelta(days=1)
    stage_details: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(
            wait_healthy,
            "outcomes",
            f"127.0.0.1:{env['LOS_OUTCOMES_PORT']}",
            process,
            log_dir,
            get_settings().tls,  # as the service, which inherits this environment
        )
        idle_kb = status_kb(process.pid, "VmRSS") or 0
        conn = await asyncpg.connect(env["DATABASE_URL"])
        counted = {"facts": 0, "last": 0}
        try:
            done = 0
            for participants in stages:
                started = time.time()
                publish_seconds = await publish(
                    ctx.servers.nats_url, settings, keys, done, participants, total, end
                )
                done = participants
                expected = participants * EVENTS_PER_PARTICIPANT

                async def stored(expected: int = expected) -> bool:
                    return await count_facts(conn, counted) >= expected

                await wait_for(stored, limit=3600, interval=0.5, what="facts in the store")
                in_store = time.time()
                published = datetime.fromtimestamp(in_store, UTC)
                await wait_for(
                    lambda published=published: rules_settled(conn, published),  # type: ignore[misc]
                    limit=3600,
                    interval=0.5,
                    what="the rules judged every participant",
                )
                settled = time.time()
                stage_details.append(
                    {
                        "participants": participants,
                        "facts": counted["facts"],
                        "publish_seconds": round(publish_seconds, 1),
                        "in_store_seconds": round(in_store - started, 1),
                        "settled_seconds": round(settled - started, 1),
                        "peak_rss_mb": round((status_kb(process.pid, "VmHWM") or 0) / 1024, 1),
                        "rss_mb": round((status_kb(process.pid, "VmRSS") or 0) / 1024, 1),
                    }
                )
        finally:
            await conn.close()
    finally:
        stop(process)
        keys.close()
    await delete_stream(ctx.servers.nats_url, env["LOS_STREAM"])

    first, last = stage_details[0], stage_details[-1]
    growth = last["peak_rss_mb"] / first["peak_rss_mb"]
    result.details = {
        "events_per_participant": EVENTS_PER_PARTICIPANT,
        "aggregate_cache_size": Settings().aggregate_cache_size,
        "idle_rss_mb": round(idle_kb / 1024, 1),
        "stages": stage_details,
    }
    for stage in stage_details:
        result.figures.append(
            Figure(
                key=f"memory_peak_{stage['participants']}",
                label=f"Outcomes peak RSS at {stage['participants']:,} participants",
                value=stage["peak_rss_mb"],
                unit="MB",
                note=f"{stage['facts']:,} facts; RSS after settling {stage['rss_mb']} MB",
            )
        )
    result.figures.append(
        Figure(
            key="memory_growth",
            label=(
                f"Peak RSS growth, {first['participants']:,} → {last['participants']:,}"
                " participants"
            ),
            value=round(growth, 2),
            unit="×",
            target="< 2× from 50k to 500k" if last["participants"] >= 500_000 else None,
            met=growth < 2 if last["participants"] >= 500_000 else None,
            note=(
                ""
                if last["participants"] >= 500_000
                else "500k participants only in `make bench-full`"
            ),
        )
    )
    return result
