"""4. Replay: the same events through every rule with no bus, next to a raw read of them.

Two ways in, each beside its own raw read:

- the journey store that the ingest benchmark filled, through `los replay --store`'s own
  code (`services/outcomes/history.py`): every `FactRecorded` row read a range of the
  journeys' ids a query, each journey's rows together as the store keeps them (its
  primary key: the participant's log, then the version), its JSON decoded, the facts
  turned into journeys exactly as `JourneyLog.journey()` builds them (`to_fact`), all
  rules evaluated per journey at the end of the cohort window (`rules.evaluate`, the
  function the live engine calls) and each alert made into its output line, under a
  study's pseudonyms; in one process and in one process per core, each taking ranges of
  the participants. Baseline: the same rows read and decoded
  the same way (`history.journeys`), nothing else. (Read in the order they were stored
  instead, one journey's facts lie scattered over memory: the same replay took ~15 %
  longer, `bench/findings.md` item 20);
- the same replay with the rules as plain Python rather than compiled by mypyc as the
  services run them (`bench/compiled.py`), to show what compiling buys;
- the JSONL file, through `los replay`'s own `replay_file` (validation, study pseudonym,
  the source services' lifecycle checks, then the rules), in one process and in one
  process per core. Baseline: reading the file and decoding each line (orjson).

The journey store is vacuumed and analysed first, as a store an evaluator replays has
long been: just after the ingest, autovacuum ran during the replays being measured
(`VACUUM (ANALYZE)`; its seconds are in the results' details). Every replay and raw read
runs in a newly started process (`fresh`), as a `los replay` does: in the harness, after
the ingest and the raw reads, a 1-process replay took 4.09 s where a fresh process took
3.57 s (two runs 20 minutes apart, quiet host).

Rates are events per second over the events in the input. Every replay and every raw
read runs with Python's cycle collector paused, as `los replay` runs (`collector_paused`):
with it on, collections walking the decoded rows took over half of the raw read.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from multiprocessing import get_context, set_start_method
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson

from bench.common import COHORT_END, Context, Figure, Replayed, Result
from bench.compiled import plain_tree, store_replay_plain
from services.kernel.settings import Settings
from services.outcomes.build import COMPILED
from services.outcomes.history import id_ranges, journeys, replay_store, stored_up_to
from services.outcomes.replay import collector_paused, replay_file

UNTIL = datetime.combine(COHORT_END + timedelta(days=1), day_time(0), tzinfo=UTC)
STUDY_KEY = "bench-study-key-of-32-bytes-or-more"
T = TypeVar("T")


def fresh(measure: Callable[..., T], *args: Any) -> T:
    """`measure` run in a newly started Python process, as a `los replay` runs: not in
    this one, whose heap the ingest, the raw reads and the replays before have churned.
    Its own processes start as a `los replay`'s do, forked (a spawned process would
    otherwise spawn them too)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_forking) as process:
        return process.submit(measure, *args).result()


def _forking() -> None:
    set_start_method("fork", force=True)


def best_of(runs: int, measure: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    """The fastest of a few runs (the machine is shared): (events, seconds)."""
    results = [measure() for _ in range(runs)]
    return min(results, key=lambda r: r[1])


async def settle(database_url: str) -> float:
    """Vacuum and analyse the freshly ingested store; the seconds it took."""
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        return time.perf_counter() - started
    finally:
        await conn.close()


def store_raw_read(database_url: str) -> tuple[int, float]:
    with collector_paused():
        started = time.perf_counter()
        last = stored_up_to(database_url)
        events = sum(
            len(journey)
            for ids in id_ranges(last, 1)
            for journey in journeys(database_url, ids, last)
        )
        return events, time.perf_counter() - started


def store_replay(database_url: str, until: datetime, workers: int = 1) -> Replayed:
    """`los replay --store` in `workers` processes: (events, seconds, alerts)."""
    started = time.perf_counter()
    found = replay_store(database_url, until, Settings().rules, STUDY_KEY, workers)
    return found.events, time.perf_counter() - started, len(found.rows)


def file_raw_read(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    with collector_paused(), path.open("rb") as lines:
        for line in lines:
            if line.strip():
                orjson.loads(line)
                count += 1
    return count, time.perf_counter() - started


def file_replay(path: Path, until: datetime, workers: int) -> tuple[int, float, int]:
    settings = Settings()
    started = time.perf_counter()
    found = replay_file(
        path, until, settings.pseudonym_key.get_secret_value(), settings.rules, workers=workers
    )
    return found.events, time.perf_counter() - started, len(found.rows)


async def run(ctx: Context, path: Path) -> Result:
    result = Result("replay")
    details: dict[str, Any] = {"until": UNTIL.isoformat()}
    database_url = ctx.shared.get("journey_store_url")
    if database_url is not None:
        vacuum_seconds = await settle(database_url)
        raw_events, raw_seconds = await asyncio.to_thread(
            best_of, 2, lambda: fresh(store_raw_read, database_url)
        )
        events, seconds, alerts = await asyncio.to_thread(fresh, store_replay, database_url, UNTIL)
        cores = os.cpu_count() or 1
        parallel = await asyncio.to_thread(fresh, store_replay, database_url, UNTIL, cores)
        details["journey_store"] = {
            "events": events,
            "replay_seconds": round(seconds, 2),
            f"replay_seconds_{cores}_processes": round(parallel[1], 2),
            "alerts": alerts,
            "alerts_parallel": parallel[2],
            "raw_read_seconds": round(raw_seconds, 2),
            "vacuum_analyze_seconds": round(vacuum_seconds, 2),
        }
        raw_rate = round(raw_events / raw_seconds, 1)
        result.figures.append(
            Figure(
                key="replay_store_rate",
                label=f"Replay of the journey store, all rules, 1 process ({events:,} events)",
                value=round(events / seconds, 1),
                unit="events/s",
                baseline_label="raw read + JSON decode of the same rows",
                baseline=raw_rate,
            )
        )
        tree = await asyncio.to_thread(plain_tree, ctx.work_dir)
        _, plain_seconds, plain_alerts = await asyncio.to_thread(
            store_replay_plain, tree, database_url, UNTIL
        )
        details["journey_store"]["plain_python"] = {
            "compiled_modules": list(COMPILED),
            "replay_seconds": round(plain_seconds, 2),
            "alerts": plain_alerts,
            "same_alerts_as_compiled": plain_alerts == alerts,
        }
        result.figures.append(
            Figure(
                key="replay_store_rate_compiled",
                label="The same replay, compiled rules against plain Python, 1 process",
                value=round(events / seconds, 1),
                unit="events/s",
                baseline_label="the rules as plain Python (`bench/compiled.py`), 1 process",
                baseline=round(events / plain_seconds, 1),
            )
        )
        result.figures.append(
            Figure(
                key="replay_store_rate_parallel",
                label=f"Replay of the journey store, all rules, {cores} processes",
                value=round(parallel[0] / parallel[1], 1),
                unit="events/s",
                baseline_label="raw read + JSON decode (1 process)",
                baseline=raw_rate,
            )
        )
    raw_events, raw_seconds = await asyncio.to_thread(
        best_of, 2, lambda: fresh(file_raw_read, path)
    )
    raw_rate = raw_events / raw_seconds
    events, seconds, alerts = await asyncio.to_thread(fresh, file_replay, path, UNTIL, 1)
    cores = os.cpu_count() or 1
    parallel = await asyncio.to_thread(fresh, file_replay, path, UNTIL, cores)
    details["file"] = {
        "events": events,
        "alerts": alerts,
        "replay_seconds_1_process": round(seconds, 2),
        f"replay_seconds_{cores}_processes": round(parallel[1], 2),
        "raw_read_seconds": round(raw_seconds, 2),
    }
    result.figures.append(
        Figure(
            key="replay_file_rate",
            label=f"`los replay` of the JSONL file, 1 process ({events:,} events)",
            value=round(events / seconds, 1),
            unit="events/s",
            baseline_label="raw read + JSON decode of the same lines",
            baseline=round(raw_rate, 1),
        )
    )
    result.figures.append(
        Figure(
            key="replay_file_rate_parallel",
            label=f"`los replay` of the JSONL file, {cores} processes",
            value=round(parallel[0] / parallel[1], 1),
            unit="events/s",
            baseline_label="raw read + JSON decode (1 process)",
            baseline=round(raw_rate, 1),
        )
    )
    result.details = details
    return result
