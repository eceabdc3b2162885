"""1. Ingest, end to end: generated edge events → the source services (gRPC) → their stores
→ outbox → JetStream → outcomes' journey store, with every rule that exists running on it.

The file is sent by `los import`'s own `Importer` (chunks of 2,000 lines, batches of
500 per service, concurrently). The clock starts when the first chunk is sent and stops
when the last fact is in the journey store; the rate is the events accepted over that
time. How far the rules lagged is measured too: the time until outcomes has judged
everything (its live clock waits out the quiet period of `LOS_QUIET_PERIOD` first).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import (
    SOURCES,
    Context,
    Figure,
    Result,
    client_batch,
    delete_stream,
    status_kb,
    wait_for,
)
from bench.procs import CpuMeter
from services.cli.importer import Importer
from services.cli.platform import running_services

FACTS = "%.FactRecorded"


async def count_facts(conn: asyncpg.Connection, state: dict[str, int]) -> int:
    """Facts in the journey store, counted incrementally by notification id (cheap).

    Read in id order and in runs, so that the plan reads only the rows since the last
    poll, along the index. As `SELECT count(*) ... WHERE notification_id > $1` PostgreSQL
    chose a sequential scan of the whole store (0.42 s a poll at 1,100,000 rows, 4 polls a
    second): ~45 % of a core, taken from the services being measured, between the end of
    a 1,000,000-event import and the last fact."""
    rows = await conn.fetch(
        "SELECT notification_id, topic LIKE $2 AS fact FROM outcomes.journeystore_events"
        " WHERE notification_id > $1 ORDER BY notification_id LIMIT 50000",
        state["last"],
        FACTS,
    )
    if rows:
        state["facts"] += sum(row["fact"] for row in rows)
        state["last"] = rows[-1]["notification_id"]
    return state["facts"]


async def rules_settled(conn: asyncpg.Connection, since: datetime) -> bool:
    """Outcomes has read every fact into the rule engine, its clock has passed `since`,
    and no participant is due before its clock."""
    state = await conn.fetchrow(
        "SELECT position, clock FROM outcomes.rule_state WHERE id = 'outcomes'"
    )
    if state is None or state["clock"] is None or state["clock"] < since:
        return False
    last = await conn.fetchval("SELECT max(notification_id) FROM outcomes.journeystore_events")
    if state["position"] != last:
        return False
    due = await conn.fetchval(
        "SELECT count(*) FROM outcomes.deadlines WHERE due_at <= $1", state["clock"]
    )
    return bool(due == 0)


async def fact_timeline(conn: asyncpg.Connection, started: float) -> dict[str, Any]:
    """When the facts were recorded (the event timestamps outcomes gave them), relative
    to `started`: first, quantiles, last, and the rate between 10 % and 90 % of them."""
    row = await conn.fetchrow(
        """
        WITH facts AS (
          SELECT (convert_from(state, 'UTF8')::jsonb -> 'timestamp' ->> '_data_')::timestamptz
                 AS at
          FROM outcomes.journeystore_events WHERE topic LIKE $1
        )
        SELECT count(*) AS n, min(at) AS first, max(at) AS last,
               percentile_disc(0.1) WITHIN GROUP (ORDER BY at) AS p10,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY at) AS p50,
               percentile_disc(0.9) WITHIN GROUP (ORDER BY at) AS p90
        FROM facts
        """,
        FACTS,
    )
    assert row is not None

    def since(at: datetime) -> float:
        return round(at.timestamp() - started, 3)

    middle = (row["p90"] - row["p10"]).total_seconds()
    return {
        "facts": row["n"],
        "first_fact_s": since(row["first"]),
        "p10_s": since(row["p10"]),
        "p50_s": since(row["p50"]),
        "p90_s": since(row["p90"]),
        "last_fact_s": since(row["last"]),
        "sustained_10_90_per_s": round(0.8 * row["n"] / middle, 1) if middle > 0 else None,
    }


def py_spy() -> str:
    """py-spy from this environment's scripts, else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


@contextlib.contextmanager
def profiled(pids: dict[str, int], out_dir: Path | None) -> Iterator[dict[str, Path]]:
    """py-spy attached to each service process while the body runs (raw collapsed stacks)."""
    if out_dir is None:
        yield {}
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    spies: dict[str, subprocess.Popen[bytes]] = {}
    outputs = {name: out_dir / f"{name}.txt" for name in pids}
    for name, pid in pids.items():
        spies[name] = subprocess.Popen(
            [py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
             "--nonblocking", "--output", str(outputs[name]), "--duration", "3600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        yield outputs
    finally:
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)
        for spy in spies.values():
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()


async def run(ctx: Context, path: Path, lines: int, profile_dir: Path | None = None) -> Result:
    result = Result("ingest")
    env = ctx.isolated_env()
    database_url = env["DATABASE_URL"]
    ctx.shared["journey_store_url"] = database_url
    rejects = ctx.work_dir / "ingest-rejects.jsonl"
    with running_services(ctx.servers, ctx.log_dir / "ingest", env) as platform:
        pids = {name: process.pid for name, process in platform.processes.items()}
        outcomes_pid = pids["outcomes"]
        importer = Importer({service: platform.address(service) for service in SOURCES})
        conn = await asyncpg.connect(database_url)
        meter = CpuMeter({name: [pid] for name, pid in pids.items()}, ctx.work_dir)
        counted = {"facts": 0, "last": 0}
        rss_samples: list[int] = []

        async def stored() -> bool:
            rss = status_kb(outcomes_pid, "VmRSS")
            if rss is not None:
                rss_samples.append(rss)
            return await count_facts(conn, counted) >= report.accepted

        try:
            with profiled(pids, profile_dir) as profiles:
                meter.start()
                started = time.time()
                with client_batch(ctx.scale.client_batch):
                    report = await importer.run(path, rejects, show_progress=False)
                imported = time.time()
                await wait_for(stored, limit=1800, what="every accepted event in the store")
                in_store = time.time()
                cpu_ingest = dict(meter.stop())
                meter.start()
                # The rules' catching up is measured, but for five minutes at most.
                settle_limit = 300.0
                settled: float | None = None
                with contextlib.suppress(TimeoutError):
                    settled = await wait_for(
                        lambda: rules_settled(conn, datetime.fromtimestamp(imported).astimezone()),
                        limit=settle_limit,
                        interval=0.5,
                        what="the rules judged every participant",
                    )
                cpu_rules_tail = meter.stop()
                rule_position = await conn.fetchval(
                    "SELECT position FROM outcomes.rule_state WHERE id = 'outcomes'"
                )
                last_notification = await conn.fetchval(
                    "SELECT max(notification_id) FROM outcomes.journeystore_events"
                )
            timeline = await fact_timeline(conn, started)
            alerts = await conn.fetchval("SELECT count(*) FROM outcomes.alerts")
            by_rule = await conn.fetch(
                "SELECT rule, count(*) AS n FROM outcomes.alerts GROUP BY rule ORDER BY rule"
            )
            participants = await conn.fetchval(
                "SELECT count(DISTINCT originator_id) FROM outcomes.journeystore_events"
            )
        finally:
            await conn.close()
            await importer.close()
        peaks_kb = {name: status_kb(pid, "VmHWM") or 0 for name, pid in pids.items()}
    await delete_stream(ctx.servers.nats_url, env["LOS_STREAM"])

    # The last fact's own timestamp (set by outcomes as it recorded it) is the end of the
    # ingest; the poll that saw it can only be later.
    last_fact = started + timeline["last_fact_s"]
    seconds = last_fact - started
    rate = report.accepted / seconds
    settled_text = (
        f"rules settled after {settled - started:.1f} s"
        if settled is not None
        else (
            f"rules not settled {settle_limit:.0f} s after the last fact: the engine had read"
            f" {rule_position:,} of {last_notification:,} journey-store notifications"
        )
    )
    result.details = {
        "events_in_file": lines,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "duplicates": report.duplicates,
        "participants": participants,
        "import_seconds": round(imported - started, 2),
        "import_rate_per_s": round(report.accepted / (imported - started), 1),
        "last_fact_seconds": round(seconds, 2),
        "last_fact_seen_by_poll_seconds": round(in_store - started, 2),
        "rules_settled_seconds": None if settled is None else round(settled - started, 2),
        "rules_settle_limit_seconds": round(settle_limit, 1),
        "rules_position_when_measured": rule_position,
        "journey_store_last_notification": last_notification,
        "timeline": timeline,
        "alerts": alerts,
        "alerts_by_rule": {row["rule"]: row["n"] for row in by_rule},
        "outcomes_peak_rss_mb": round(peaks_kb["outcomes"] / 1024, 1),
        "outcomes_rss_max_sampled_mb": round(max(rss_samples, default=0) / 1024, 1),
        "peak_rss_mb": {name: round(kb / 1024, 1) for name, kb in peaks_kb.items()},
        "cpu_seconds_until_last_fact": cpu_ingest,
        "cpu_seconds_rules_tail": cpu_rules_tail,
        "profiles": {name: str(p) for name, p in profiles.items()},
    }
    result.figures.append(
        Figure(
            key="ingest_rate",
            label=f"Ingest end to end, {report.accepted:,} events",
            value=round(rate, 1),
            unit="events/s",
            note=(
                f"last event in the journey store after {seconds:.1f} s; {settled_text};"
                " sustained 10-90 %: "
                f"{timeline['sustained_10_90_per_s']} events/s"
            ),
        )
    )
    result.figures.append(
        Figure(
            key="ingest_outcomes_peak_rss",
            label=(
                f"Outcomes peak RSS during ingest ({participants:,} participants,"
                f" {report.accepted / max(participants, 1):.1f} facts each)"
            ),
            value=result.details["outcomes_peak_rss_mb"],
            unit="MB",
        )
    )
    result.figures.append(
        Figure(
            key="ingest_seconds",
            label="Time until the last event is in the journey store",
            value=round(seconds, 2),
            unit="s",
        )
    )
    return result
