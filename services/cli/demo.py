"""`los demo`: the whole platform on embedded servers, a synthetic cohort, alerts arriving.

The cohort covers the last two years. Its history is replayed as it happened: while
outcomes works through the backlog its clock is the recorded_at watermark, so every
deadline is judged on what was known then. A few people's handover-gap deadlines fall in
the minute after the demo starts; those alerts arrive on the wall clock, live.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.cli.importer import Importer
from services.cli.platform import platform
from services.cli.watch import watch
from services.cohort import generate_cohort, write_jsonl
from services.kernel.settings import get_settings
from services.rpc.los.v1 import alerts_pb2

DEMO_LIMIT = timedelta(seconds=150)


def _recipients(events: list[dict[str, object]]) -> tuple[set[str], set[str]]:
    coordinators: set[str] = set()
    teams: set[str] = set()
    for event in events:
        data = event["data"]
        assert isinstance(data, dict)
        if "coordinator_id" in data:
            coordinators.add(str(data["coordinator_id"]))
        if "org_unit" in data:
            teams.add(str(data["org_unit"]))
    return coordinators, teams


async def _show(
    address: str, console: Console, seen: Counter[str], who: dict[str, str], started: float
) -> None:
    async def one(update_stream: object, label: str) -> None:
        async for update in update_stream:  # type: ignore[attr-defined]
            alert: alerts_pb2.Alert = update.alert
            seen[f"{update.change} {alert.rule}"] += 1
            if update.change != "raised":
                continue
            raised = alert.raised_at.ToDatetime(UTC)
            live = time.monotonic() - started > 5 and raised > datetime.now(UTC) - timedelta(
                minutes=5
            )
            tag = "[bold red]LIVE[/]" if live else "[dim]history[/]"
            console.print(
                f"{tag} {alert.rule:<14} → {label:<28} person {alert.participant[:10]}…"
                f" subject {alert.subject:<10} raised {raised:%Y-%m-%d %H:%M:%S} UTC"
                f" ({alert.status}{', ' + alert.resolution if alert.resolution else ''})"
            )

    await asyncio.gather(
        *(
            one(
                watch(address, coordinator=c)
                if kind == "coordinator"
                else watch(address, org_unit=c),
                f"{kind} {c}",
            )
            for c, kind in who.items()
        )
    )


def run_demo(*, people: int, seed: int, console: Console) -> None:
    settings = get_settings()
    embedded = settings.nats_url is None or settings.database_url is None
    work = Path(tempfile.mkdtemp(prefix="los-demo-"))
    if embedded:
        settings = settings.model_copy(update={"data_dir": work})
    now = datetime.now(UTC)
    cohort = generate_cohort(
        people, seed, start=(now - timedelta(days=730)).date(), end=now.date(), now=now
    )
    events_file = work / "cohort.jsonl"
    write_jsonl(events_file, cohort.events)
    coordinators, teams = _recipients(cohort.events)
    console.rule("[bold]Los demo")
    console.print(
        f"A synthetic cohort: {people} people, {len(cohort.events)} events over two years"
        f" (NAV, kommune, VO, employers); {len(cohort.injected_gaps)} known handover gaps."
    )
    console.print("Starting NATS JetStream, PostgreSQL and intake, journey, employer, outcomes…")
    with platform(settings, free_ports=True) as running:
        console.print(
            "Watching the alert streams of"
            f" {len(coordinators)} coordinators and {len(teams)} team queues over gRPC."
        )
        console.print(
            "[dim]history[/] = raised while the backlog is replayed, on its recorded_at clock;"
            " [bold red]LIVE[/] = deadline passing on the wall clock right now."
        )
        asyncio.run(_run(running.address, events_file, work, coordinators, teams, cohort, console))


async def _run(address, events_file, work, coordinators, teams, cohort, console) -> None:  # type: ignore[no-untyped-def]
    seen: Counter[str] = Counter()
    who = {c: "coordinator" for c in sorted(coordinators)} | {t: "team" for t in sorted(teams)}
    started = time.monotonic()
    watcher = asyncio.create_task(_show(address("outcomes"), console, seen, who, started))
    importer = Importer({s: address(s) for s in ("intake", "journey", "employer")})
    try:
        report = await importer.run(events_file, work / "rejects.jsonl", show_progress=False)
    finally:
        await importer.close()
    console.print(
        f"Imported {report.lines} events in {report.seconds:.1f} s ({report.per_second:,.0f}/s):"
        f" {report.accepted} accepted, {report.duplicates} duplicates, {report.rejected} rejected."
    )
    last_deadline = max((g.deadline for g in cohort.injected_gaps), default=datetime.now(UTC))
    wait_until = min(last_deadline + timedelta(seconds=5), datetime.now(UTC) + DEMO_LIMIT)
    console.print(f"Waiting for the live deadlines (until {wait_until:%H:%M:%S} UTC)…")
    await asyncio.sleep(max(0.0, (wait_until - datetime.now(UTC)).total_seconds()))
    watcher.cancel()
    table = Table(title="Alerts seen by the coordinator clients")
    table.add_column("change and rule")
    table.add_column("count", justify="right")
    for key, count in sorted(seen.items()):
        table.add_row(key, str(count))
    console.print(table)
