"""2. The raw pipe: the same events over the same hops as ingest, with no logic.

    Importer (the same client, same chunks and batches)
      → gRPC `Sources/SubmitEvents` on three "source" processes (one per source service)
      → asyncpg COPY of the lines into a plain table, then an in-process queue
      → JetStream publish (`publish_all`, as the services publish: every ack awaited, a
        Nats-Msg-Id on each message)
      → one "sink" process: pull consumer (`PullConsumer`, as outcomes reads), batches
        of 500 (the services' batch size), ack-all on the last message
      → asyncpg COPY of (stream sequence, body) into a plain table.

Then the same pipe once more with nats-py's own `PullSubscription.fetch` in the sink: the
bare hop the issue measured its ~13,000 events/s with, before Los had a consumer of its
own (BENCHMARKS.md, findings item 17). It stands beside the ingest as context; the
target is held to the first.

No validation, no pseudonyms, no aggregates, no tracking, no rules: what the servers,
the drivers and Python's per-message cost allow. The clock starts when the first chunk
is sent and stops when the sink has copied the last event (by the sink's own clock).

Run as `python -m bench.raw_pipe source|sink ...` by the benchmark itself.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import nats
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from bench.common import SOURCES, Context, Figure, Result, client_batch
from bench.procs import CpuMeter
from services.cli.importer import Importer
from services.kernel.bus import MSG_ID, Outgoing, PullConsumer, publish_all
from services.kernel.embedded import free_port
from services.kernel.runtime import YOUNG_COLLECTION
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc

BATCH = 500  # publish and fetch batch; `--batch` sets it to the run's service batch
# How the sink reads the stream: as outcomes does (`PullConsumer`), or with nats-py's own
# fetch; the result's figure for each, and what its label calls it.
FETCHES = {
    "los": ("raw_pipe_rate", "Raw pipe"),
    "nats-py": ("raw_pipe_nats_py_fetch_rate", "Raw pipe with nats-py's own `fetch` in the sink"),
}


class RawSource(sources_pb2_grpc.SourcesServicer):
    """Stores each batch as it comes (COPY), then hands it to the publisher."""

    def __init__(self, conn: asyncpg.Connection, queue: asyncio.Queue[list[str]]) -> None:
        self._conn = conn
        self._queue = queue
        self._lock = asyncio.Lock()  # one writer, as in the services

    async def SubmitEvents(
        self, request: sources_pb2.SubmitEventsRequest, context: Any
    ) -> sources_pb2.SubmitEventsResponse:
        lines = list(request.events)
        async with self._lock:
            await self._conn.copy_records_to_table(
                "source_events", schema_name="raw", records=[(line,) for line in lines]
            )
        self._queue.put_nowait(lines)
        return sources_pb2.SubmitEventsResponse(accepted=len(lines))

    # The generated one, which answers UNIMPLEMENTED: the raw pipe only submits.
    CheckEvents = sources_pb2_grpc.SourcesServicer.CheckEvents


async def publisher(
    js: Any, subject: str, queue: asyncio.Queue[list[str]], batch: int = BATCH
) -> None:
    """Publishes what was stored, in order, a batch at a time, awaiting every ack."""
    tag = uuid.uuid4().hex[:8]
    sent = 0
    while True:
        lines = await queue.get()
        while not queue.empty() and len(lines) < batch:
            lines.extend(queue.get_nowait())
        for start in range(0, len(lines), batch):
            part = lines[start : start + batch]
            outgoing = [
                Outgoing(subject, line.encode(), {MSG_ID: f"{tag}-{sent + i}"})
                for i, line in enumerate(part)
            ]
            await publish_all(js, outgoing)  # the services' own publishing
            sent += len(part)


async def serve_source(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.db)
    client = await nats.connect(args.nats)
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    server = grpc.aio.server()
    sources_pb2_grpc.add_SourcesServicer_to_server(RawSource(conn, queue), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    task = asyncio.create_task(publisher(client.jetstream(), args.subject, queue, args.batch))
    try:
        await server.wait_for_termination()
    finally:
        task.cancel()
        await client.close()
        await conn.close()


async def sink(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.db)
    client = await nats.connect(args.nats)
    config = ConsumerConfig(
        durable_name="raw-sink",
        filter_subject=args.subject,
        ack_policy=AckPolicy.ALL,
        max_ack_pending=args.batch * 4,
    )
    fetch: Callable[[], Awaitable[list[Msg]]]
    if args.fetch == "nats-py":
        subscription = await client.jetstream().pull_subscribe(
            args.subject, durable="raw-sink", stream=args.stream, config=config
        )

        async def fetch() -> list[Msg]:
            try:
                return await subscription.fetch(args.batch, timeout=0.5)
            except nats.errors.TimeoutError:  # nothing came
                return []

        close = subscription.unsubscribe
    else:
        consumer = await PullConsumer.create(client, args.stream, config)
        fetch, close = partial(consumer.fetch, args.batch, expires=0.5), consumer.close
    print(json.dumps({"ready": time.time()}), flush=True)
    total = 0
    while total < args.expect:
        messages = await fetch()
        if not messages:
            continue
        records = [(m.metadata.sequence.stream, m.data.decode()) for m in messages]
        await conn.copy_records_to_table("sink_events", schema_name="raw", records=records)
        await messages[-1].ack()
        total += len(messages)
    print(json.dumps({"done": time.time(), "total": total}), flush=True)
    await close()
    await client.close()
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_pipe")
    parser.add_argument("role", choices=["source", "sink"])
    parser.add_argument("--nats", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--stream", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--fetch", choices=FETCHES, default="los")
    args = parser.parse_args()
    # As in a service's process (services/kernel/runtime.py), so the two compare.
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
    asyncio.run(serve_source(args) if args.role == "source" else sink(args))


async def _prepare(ctx: Context, stream: str, prefix: str) -> str:
    database_url = ctx.fresh_database()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE SCHEMA raw")
        await conn.execute("CREATE TABLE raw.source_events (body text NOT NULL)")
        await conn.execute("CREATE TABLE raw.sink_events (seq bigint NOT NULL, body text NOT NULL)")
    finally:
        await conn.close()
    client = await nats.connect(ctx.servers.nats_url)
    try:
        await client.jetstream().add_stream(
            StreamConfig(name=stream, subjects=[f"{prefix}.>"], storage=StorageType.FILE)
        )
    finally:
        await client.close()
    return database_url


async def _ready(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)


async def _read_json_line(
    process: asyncio.subprocess.Process, limit: float, log: Path
) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), limit)
    if not line:
        raise RuntimeError(f"raw pipe sink exited with {await process.wait()}:", *_tail(log))
    found: dict[str, Any] = json.loads(line)
    return found


def _tail(log: Path) -> list[str]:
    """The last lines of a process's log: why it stopped."""
    return log.read_text(errors="replace").splitlines()[-12:]


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


async def run(ctx: Context, path: Path, lines: int) -> Result:
    """Both pipes, one after the other; the details and CPU are the first's."""
    result = Result("raw_pipe")
    ours, result.details = await _pipe(ctx, path, lines, "los")
    result.figures.append(ours)
    try:
        theirs, result.details["nats_py_fetch"] = await _pipe(ctx, path, lines, "nats-py")
    except RuntimeError as failed:  # context only: the baseline the target needs stands
        print("[bench] the raw pipe with nats-py's `fetch` failed:", *failed.args, sep="\n  ")
        result.details["nats_py_fetch"] = {"failed": list(failed.args)}
    else:
        result.figures.append(theirs)
    return result


async def _pipe(ctx: Context, path: Path, lines: int, fetch: str) -> tuple[Figure, dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"RAW_{tag}", f"raw{tag}"
    database_url = await _prepare(ctx, stream, prefix)
    logs = ctx.log_dir / f"raw_pipe_{fetch}"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {service: free_port() for service in SOURCES}
    python = [sys.executable, "-m", "bench.raw_pipe"]
    common = ["--nats", ctx.servers.nats_url, "--db", database_url]
    common += ["--batch", str(ctx.scale.service_batch)]
    sources: list[subprocess.Popen[bytes]] = []
    sink_process: asyncio.subprocess.Process | None = None
    try:
        for service, port in ports.items():
            extra = ["--port", str(port), "--subject", f"{prefix}.{service}"]
            sources.append(_spawn([*python, "source", *common, *extra], logs / f"{service}.log"))
        with (logs / "sink.log").open("ab") as log:
            sink_process = await asyncio.create_subprocess_exec(
                *python, "sink", *common, "--stream", stream, "--subject", f"{prefix}.>",
                "--expect", str(lines), "--fetch", fetch,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        await _read_json_line(sink_process, 60, logs / "sink.log")
        for port in ports.values():
            await _ready(f"127.0.0.1:{port}")
        groups = {service: [p.pid] for service, p in zip(SOURCES, sources, strict=True)}
        groups["sink"] = [sink_process.pid]
        meter = CpuMeter(groups, ctx.work_dir)
        importer = Importer({service: f"127.0.0.1:{port}" for service, port in ports.items()})
        meter.start()
        started = time.time()
        with client_batch(ctx.scale.client_batch):
            report = await importer.run(
                path, ctx.work_dir / "raw-rejects.jsonl", show_progress=False
            )
        imported = time.time()
        done = await _read_json_line(sink_process, 1800, logs / "sink.log")
        cpu = meter.stop()
        await importer.close()
    finally:
        for process in sources:
            process.terminate()
        if sink_process is not None and sink_process.returncode is None:
            sink_process.terminate()
            await sink_process.wait()
        for process in sources:
            process.wait(10)
    from bench.common import delete_stream

    await delete_stream(ctx.servers.nats_url, stream)
    seconds = done["done"] - started
    rate = done["total"] / seconds
    details = {
        "events": done["total"],
        "import_seconds": round(imported - started, 2),
        "import_rate_per_s": round(report.lines / (imported - started), 1),
        "last_event_seconds": round(seconds, 2),
        "cpu_seconds": cpu,
    }
    key, label = FETCHES[fetch]
    figure = Figure(
        key=key,
        label=f"{label}, {done['total']:,} events (same hops, no logic)",
        value=round(rate, 1),
        unit="events/s",
        note=f"last event copied after {seconds:.1f} s",
    )
    return figure, details


if __name__ == "__main__":
    main()
