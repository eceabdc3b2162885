"""`los`: run the platform, generate and import cohorts, watch alerts."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services.cli.importer import Importer
from services.cli.platform import SERVICES, platform
from services.cli.watch import watch
from services.cohort import generate_cohort, write_jsonl
from services.kernel.settings import get_settings

app = typer.Typer(help="Los: follows people across measures and alerts their coordinator.")
alerts_app = typer.Typer(help="Coordinators' alerts.")
app.add_typer(alerts_app, name="alerts")
console = Console(stderr=True)


@app.command()
def up() -> None:
    """Run the whole platform until Ctrl-C (embedded servers unless NATS_URL / DATABASE_URL)."""
    settings = get_settings()
    with platform(settings) as running:
        console.print(f"NATS       {running.servers.nats_url}")
        console.print(f"PostgreSQL {running.servers.database_url}")
        for service in SERVICES:
            console.print(f"{service:<10} grpc://{running.address(service)}")
        console.print("Ctrl-C stops everything.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="JSONL file to write")] = Path("cohort.jsonl"),
    people: Annotated[int, typer.Option(help="how many people")] = 1000,
    seed: Annotated[int, typer.Option(help="same seed, same cohort")] = 1,
    years: Annotated[int, typer.Option(help="history length, ending at --until")] = 3,
    until: Annotated[
        datetime | None, typer.Option(help="nothing recorded after this (default: now)")
    ] = None,
) -> None:
    """Write a synthetic cohort (synthetic national ids only) with known handover gaps.

    The same --seed and --until give the same file."""
    now = (until or datetime.now(UTC)).astimezone(UTC)
    start = now.date() - timedelta(days=365 * years)
    cohort = generate_cohort(people, seed, start=start, end=now.date(), now=now, recent_share=0.0)
    count = write_jsonl(out, cohort.events)
    console.print(f"{count} events for {people} people → {out}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL of edge events (CONTRACT §1)")],
    rejects: Annotated[Path, typer.Option(help="where rejected lines are reported")] = Path(
        "rejects.jsonl"
    ),
    intake: str = "127.0.0.1:50061",
    journey: str = "127.0.0.1:50062",
    employer: str = "127.0.0.1:50063",
) -> None:
    """Send a JSONL file through the source services; importing it twice changes nothing."""

    async def run() -> None:
        importer = Importer({"intake": intake, "journey": journey, "employer": employer})
        try:
            report = await importer.run(file, rejects, show_progress=console.is_terminal)
        finally:
            await importer.close()
        console.print(
            f"{report.lines} lines: {report.accepted} accepted, {report.duplicates} duplicates,"
            f" {report.rejected} rejected (see {rejects}) in {report.seconds:.1f} s"
            f" = {report.per_second:,.0f} events/s"
        )

    asyncio.run(run())


@alerts_app.command("watch")
def watch_alerts(
    coordinator: Annotated[str | None, typer.Option(help="coordinator id")] = None,
    team: Annotated[str | None, typer.Option(help="org_unit of a team queue")] = None,
    outcomes: str = "127.0.0.1:50064",
    after: int = 0,
) -> None:
    """Print a coordinator's (or team queue's) alerts as they arrive; resumes on reconnect."""
    if not (coordinator or team):
        raise typer.BadParameter("give --coordinator or --team")

    async def run() -> None:
        async for update in watch(outcomes, coordinator=coordinator, org_unit=team, after=after):
            alert = update.alert
            print(
                f"{update.cursor}\t{update.change}\t{alert.rule}\t{alert.subject}"
                f"\t{alert.raised_at.ToDatetime(UTC).isoformat()}\t{alert.status}"
                f"\t{alert.resolution}",
                flush=True,
            )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="cohort size")] = 300,
    seed: Annotated[int, typer.Option(help="cohort seed")] = 7,
) -> None:
    """Start everything, push a synthetic cohort through it, and show alerts arriving."""
    from services.cli.demo import run_demo

    run_demo(people=people, seed=seed, console=Console())


if __name__ == "__main__":
    app()
