"""`los demo`: the whole platform on embedded servers, a synthetic cohort, alerts arriving.

The cohort covers the last two years. Its history is replayed as it happened: while
outcomes works through the backlog its clock is the recorded_at watermark, so every
deadline is judged on what was known then. A few people's handover-gap deadlines fall in
the minute after the demo starts; those alerts arrive live, on the wall clock.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.cli.caseload import caseload_tables, get_caseload
from services.cli.importer import Importer, ImportReport
from services.cli.platform import platform
from services.cli.watch import watch
from services.cohort import Cohort, generate_cohort, write_jsonl
from services.kernel.settings import get_settings
from services.outcomes.auth import mint
from services.rpc.los.v1 import alerts_pb2

TIME_LIMIT = timedelta(seconds=150)


@dataclass
class Seen:
    """What the coordinator clients received."""

    started: datetime
    changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    raised: set[tuple[str, datetime]] = field(default_factory=set)  # (subject, raised_at)
    live: int = 0


def recipients(cohort: Cohort) -> list[tuple[str, str]]:
    """Every coordinator and team queue in the cohort, as (kind, id)."""
    found: set[tuple[str, str]] = set()
    for event in cohort.events:
        data = event["data"]
        if "coordinator_id" in data:
            found.add(("coordinator", str(data["coordinator_id"])))
        if "org_unit" in data:
            found.add(("team", str(data["org_unit"])))
    return sorted(found)


def token_for(kind: str, who: str, key: str) -> str:
    """A coordinator's own token, or a team lead's for a team queue."""
    now = datetime.now(UTC)
    if kind == "coordinator":
        return mint(key, who, [], now=now)
    return mint(key, f"lead-{who}", [who], now=now)


async def show(address: str, kind: str, who: str, seen: Seen, console: Console) -> None:
    token = token_for(kind, who, get_settings().token_key.get_secret_value())
    if kind == "coordinator":
        stream = watch(address, token, coordinator=who)
    else:
        stream = watch(address, token, org_unit=who)
    async for update in stream:
        alert: alerts_pb2.Alert = update.alert
        seen.changes[update.change, alert.rule] += 1
        if update.change != "raised":
            continue
        raised_at = alert.raised_at.ToDatetime(UTC)
        seen.raised.add((alert.subject, raised_at))
        live = raised_at >= seen.started
        seen.live += live
        tag = "[bold red]LIVE   [/]" if live else "[dim]history[/]"
        console.print(
            f"{tag} {alert.rule} {alert.subject:<6} due {raised_at:%Y-%m-%d %H:%M:%S}"
            f" → {kind} {who}",
            highlight=False,
        )


def summary(report: ImportReport, cohort: Cohort, seen: Seen) -> Table:
    table = Table(title="Los demo: summary", show_header=False)
    table.add_row("events imported", f"{report.accepted:,} ({report.per_second:,.0f}/s)")
    table.add_row("duplicates / rejected", f"{report.duplicates} / {report.rejected}")
    for (change, rule), count in sorted(seen.changes.items()):
        table.add_row(f"alerts {change}: {rule}", str(count))
    table.add_row("raised live on the wall clock", str(seen.live))
    known = {(gap.measure_id, gap.raised_at.astimezone(UTC)) for gap in cohort.handover_gaps}
    found = len(known & seen.raised)
    table.add_row("known injected gaps alerted", f"{found} of {len(known)}")
    return table


async def show_caseloads(address: str, cohort: Cohort, console: Console) -> None:
    """What a team lead sees of the team that assigned the most people (its queue, its
    coordinators' loads), and the caseload of its busiest coordinator."""
    key = get_settings().token_key.get_secret_value()
    assigned = Counter(
        str(event["data"]["org_unit"])
        for event in cohort.events
        if event["type"] == "coordinator.assigned"
    )
    if not assigned:
        return
    team = assigned.most_common(1)[0][0]
    queue = await get_caseload(address, token_for("team", team, key), org_unit=team, limit=5)
    shown = caseload_tables(queue, team, team=True)
    if queue.coordinators:
        busiest = max(queue.coordinators, key=lambda load: load.participants).coordinator_id
        token = token_for("coordinator", busiest, key)
        theirs = await get_caseload(address, token, coordinator=busiest)
        shown += caseload_tables(theirs, busiest, team=False)
    for part in shown:
        console.print(part)


async def run(
    address: Callable[[str], str], cohort: Cohort, work: Path, started: datetime, console: Console
) -> None:
    seen = Seen(started)
    outcomes = address("outcomes")
    watchers = [
        asyncio.create_task(show(outcomes, kind, who, seen, console))
        for kind, who in recipients(cohort)
    ]
    events_file = work / "cohort.jsonl"
    write_jsonl(events_file, cohort.events)
    importer = Importer({s: address(s) for s in ("intake", "journey", "employer")})
    try:
        report = await importer.run(events_file, work / "rejects.jsonl", show_progress=False)
    finally:
        await importer.close()
    console.print(
        f"Imported {report.accepted:,} events in {report.seconds:.1f} s;"
        " outcomes works through the backlog on its recorded_at clock."
    )
    last = max((gap.deadline for gap in cohort.handover_gaps), default=started)
    until = min(last + timedelta(seconds=3), started + TIME_LIMIT)
    console.print(f"Waiting for the live deadlines, until {until:%H:%M:%S} UTC …")
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()))
    for watcher in watchers:
        watcher.cancel()
    console.print(summary(report, cohort, seen))
    await show_caseloads(outcomes, cohort, console)


def run_demo(*, people: int, seed: int, console: Console) -> None:
    settings = get_settings()
    work = Path(tempfile.mkdtemp(prefix="los-demo-"))
    settings = settings.model_copy(update={"data_dir": work})
    started = datetime.now(UTC)
    cohort = generate_cohort(
        people, seed, start=(started - timedelta(days=730)).date(), end=started.date(), now=started
    )
    console.rule("[bold]Los demo")
    console.print(
        f"A synthetic cohort of {people} people: {len(cohort.events):,} events over two years"
        f" from NAV, kommune, adult education and employers, with {len(cohort.handover_gaps)}"
        " handover gaps in it, a few of them falling due in the next minute."
    )
    console.print("Starting NATS JetStream, PostgreSQL, intake, journey, employer, outcomes …")
    with platform(settings, free_ports=True) as running:
        console.print(
            "Every coordinator and team queue of the cohort watches its alerts over gRPC."
            " [dim]history[/] = raised while the backlog is replayed;"
            " [bold red]LIVE[/] = a deadline passing on the wall clock now."
        )
        asyncio.run(run(running.address, cohort, work, started, console))
    shutil.rmtree(work, ignore_errors=True)
