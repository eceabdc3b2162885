"""What every benchmark shares: the scale of a run, its figures, the servers, a fresh
database and stream per benchmark, a cached cohort file, and a few measuring helpers.

Every benchmark gets its own database and its own stream and subjects on the same
servers, so the figures of one run are measured side by side on the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from services.cohort import generate_cohort, write_jsonl
from services.kernel.embedded import Servers

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"
Replayed = tuple[int, float, int]  # a replay: events, seconds, alerts
SOURCES = ("intake", "journey", "employer")
BENCHMARKS = ("ingest", "raw_pipe", "naive", "replay", "latency", "memory")
COHORT_SEED = 20_251_123
COHORT_START = date(2023, 1, 1)
COHORT_END = date(2025, 12, 31)
# A cohort averages ~7.76 events per person in a three-year window (services/cohort).
EVENTS_PER_PERSON = 7.76


@dataclass(frozen=True)
class Scale:
    """How big a run is. `bench` fits in about five minutes on a 2-core machine."""

    name: str
    ingest_events: int  # end-to-end events (the raw pipe and the replays use the same file)
    naive_events: int  # at most this many events for the one-per-transaction baseline ...
    naive_seconds: float  # ... or this long, whichever comes first
    latency_warmup: float  # seconds of background load before the first probe
    latency_seconds: float  # seconds of probing under `background_rate`
    light_seconds: float  # seconds of probing under `light_rate` first
    light_rate: int  # events/s of background in the light phase
    latency_drain: float  # seconds to wait for the last probes' alerts
    probes_per_second: float  # of each kind (deciding event, deadline)
    background_rate: int  # events/s of background load during the latency benchmark
    memory_participants: tuple[int, ...]  # outcomes' peak RSS is read at each of these
    # Events per SubmitEvents call (the importer's BATCH) and per store transaction in the
    # services (LOS_BATCH_SIZE), for ingest and the raw pipe alike.
    client_batch: int = 500
    service_batch: int = 500

    @property
    def ingest_people(self) -> int:
        return round(self.ingest_events / EVENTS_PER_PERSON)


QUICK = Scale(
    name="bench",
    ingest_events=200_000,
    naive_events=10_000,
    naive_seconds=10.0,
    latency_warmup=4.0,
    latency_seconds=15.0,
    light_seconds=12.0,
    light_rate=200,
    latency_drain=30.0,
    probes_per_second=2.5,
    background_rate=1_000,
    memory_participants=(10_000, 50_000),
)
FULL = Scale(
    name="bench-full",
    ingest_events=1_000_000,
    naive_events=100_000,
    naive_seconds=60.0,
    latency_warmup=10.0,
    latency_seconds=120.0,
    light_seconds=60.0,
    light_rate=200,
    latency_drain=120.0,
    probes_per_second=2.5,
    background_rate=1_000,
    memory_participants=(50_000, 500_000),
)


@dataclass
class Figure:
    """One measured figure, with the baseline it is compared with in the same run and the
    target it is held to (if any)."""

    key: str
    label: str
    value: float
    unit: str
    baseline_label: str | None = None
    baseline: float | None = None
    target: str | None = None
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


@dataclass
class Result:
    """What one benchmark returns: its figures and the details behind them."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for figure, data in zip(self.figures, out["figures"], strict=True):
            data["ratio"] = figure.ratio
        return out


@dataclass
class Context:
    """One run: its scale, the servers, where its scratch files and logs go."""

    scale: Scale
    servers: Servers
    work_dir: Path
    shared: dict[str, Any] = field(default_factory=dict)  # handed from one benchmark to the next
    databases: list[str] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def fresh_database(self) -> str:
        """A new, empty database on the run's PostgreSQL server; dropped at the end."""
        name = f"los_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.servers.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        parts = urlsplit(self.servers.database_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def isolated_env(self, **settings: str) -> dict[str, str]:
        """Environment for service processes that share the servers with nothing else."""
        tag = uuid.uuid4().hex[:8]
        settings.setdefault("batch_size", str(self.scale.service_batch))
        return {
            "NATS_URL": self.servers.nats_url,
            "DATABASE_URL": self.fresh_database(),
            "LOS_STREAM": f"BENCH_{tag}",
            "LOS_SUBJECT_PREFIX": f"bench{tag}",
            "LOS_DEAD_LETTER_SUBJECT": f"bench{tag}.dead",
            "LOS_TELEMETRY": "none",
            **{f"LOS_{key.upper()}": value for key, value in settings.items()},
        }

    def drop_databases(self) -> None:
        with psycopg.connect(self.servers.database_url, autocommit=True) as conn:
            for name in self.databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()


async def delete_stream(nats_url: str, stream: str) -> None:
    """Drop a benchmark's stream so a long run does not fill the disk."""
    import nats
    from nats.js.errors import NotFoundError

    client = await nats.connect(nats_url)
    try:
        with contextlib.suppress(NotFoundError):
            await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


@contextlib.contextmanager
def client_batch(size: int) -> Iterator[None]:
    """`los import`'s Importer sending `size` events per SubmitEvents call."""
    from services.cli import importer

    before = importer.BATCH
    importer.BATCH = size
    try:
        yield
    finally:
        importer.BATCH = before


def cohort_file(people: int, seed: int = COHORT_SEED) -> tuple[Path, int]:
    """A synthetic cohort as JSONL (generated once, then kept in bench/.cache), and its
    number of lines."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"cohort-{people}-{seed}.jsonl"
    count_path = path.with_suffix(".count")
    if path.exists() and count_path.exists():
        return path, int(count_path.read_text())
    cohort = generate_cohort(people, seed, start=COHORT_START, end=COHORT_END)
    partial = path.with_suffix(".partial")
    written = write_jsonl(partial, cohort.events)
    partial.rename(path)
    count_path.write_text(str(written))
    return path, written


def status_kb(pid: int, field_name: str) -> int | None:
    """A `VmRSS` / `VmHWM` (peak RSS) line of /proc/<pid>/status, in kB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def wait_for(
    check: Callable[[], Awaitable[bool]], limit: float, interval: float = 0.25, what: str = ""
) -> float:
    """Poll `check` until it is true (for at most `limit` seconds); returns the time.time()
    at which it was seen true."""
    deadline = time.monotonic() + limit
    while True:
        if await check():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {limit:.0f} s: {what}")
        await asyncio.sleep(interval)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)
