"""`los`: run the platform, generate, import and check cohorts, watch alerts."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.console import Console

from services.cli.caseload import caseload_tables, get_caseload
from services.cli.erase import erase
from services.cli.evaluate import EventsFile, export, replay
from services.cli.importer import Importer
from services.cli.platform import SERVICES, platform
from services.cli.token import token
from services.cli.vault import vault_app
from services.cli.watch import watch
from services.cohort import generate_cohort, write_jsonl
from services.kernel.embedded import CannotStart
from services.kernel.settings import get_settings

app = typer.Typer(help="Los: follows people across measures and alerts their coordinator.")
alerts_app = typer.Typer(help="Coordinators' alerts.")
app.add_typer(alerts_app, name="alerts")
# What it prints is plain text: reasons from servers and libraries may hold [brackets].
console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


@app.command()
def up() -> None:
    """Run the whole platform until Ctrl-C (embedded servers unless NATS_URL / DATABASE_URL)."""
    settings = get_settings()
    with _stops_with_the_reason("up"), platform(settings) as running:
        console.print(f"NATS       {running.servers.nats_url}")
        console.print(f"PostgreSQL {running.servers.database_url}")
        scheme = "grpc" if settings.tls.cert is None else "grpcs"  # grpcs: TLS only
        for service in SERVICES:
            console.print(f"{service:<10} {scheme}://{running.address(service)}")
        console.print("Ctrl-C stops everything.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


@contextlib.contextmanager
def _stops_with_the_reason(what: str) -> Iterator[None]:
    """A platform that cannot start (a server missing, a service unhealthy) stops `what`
    with the reason and exit 1, not a traceback."""
    try:
        yield
    except CannotStart as error:
        console.print(f"{what} stopped: {error}")
        raise typer.Exit(1) from None


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="JSONL file to write")] = Path("cohort.jsonl"),
    people: Annotated[int, typer.Option(min=1, help="how many people")] = 1000,
    seed: Annotated[int, typer.Option(help="same seed, same cohort")] = 1,
    years: Annotated[int, typer.Option(min=1, help="history length, ending at --until")] = 3,
    until: Annotated[
        datetime | None,
        typer.Option(
            help="nothing recorded after this; UTC unless it has an offset (default: now)"
        ),
    ] = None,
) -> None:
    """Write a synthetic cohort (synthetic national ids only) with known handover gaps.

    The same --seed and --until give the same file."""
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)  # not the local time zone: the same file anywhere
    now = (until or datetime.now(UTC)).astimezone(UTC)
    start = now.date() - timedelta(days=365 * years)
    cohort = generate_cohort(people, seed, start=start, end=now.date(), now=now, recent_share=0.0)
    count = write_jsonl(out, cohort.events)
    console.print(f"{count} events for {people} people → {out}")


Address = Annotated[str, typer.Option(help="host:port of the source service")]
SourceToken = Annotated[
    str | None,
    typer.Option(
        envvar="LOS_SOURCE_TOKEN",
        help="source token (los token --source); default: one for every source system,"
        " signed with LOS_SOURCE_TOKEN_KEY",
    ),
]


@app.command("import")
def import_(
    file: EventsFile,
    rejects: Annotated[Path, typer.Option(help="where rejected lines are reported")] = Path(
        "rejects.jsonl"
    ),
    intake: Address = "127.0.0.1:50061",
    journey: Address = "127.0.0.1:50062",
    employer: Address = "127.0.0.1:50063",
    token: SourceToken = None,
) -> None:
    """Send a JSONL file through the source services; importing it twice changes nothing."""

    async def run(importer: Importer) -> None:
        report = await importer.run(file, rejects, show_progress=console.is_terminal)
        console.print(
            f"{report.lines} lines: {report.accepted} accepted, {report.duplicates} duplicates,"
            f" {report.held} held until their start comes,"
            f" {report.rejected} rejected (see {rejects}) in {report.seconds:.1f} s"
            f" = {report.per_second:,.0f} events/s"
        )

    addresses = {"intake": intake, "journey": journey, "employer": employer}
    _with_sources("import", run, addresses, token)


@app.command()
def check(
    file: Annotated[
        Path, typer.Argument(help="JSONL of edge events sent before", exists=True, dir_okay=False)
    ],
    out: Annotated[Path, typer.Option(help="where events not accepted are listed")] = Path(
        "states.jsonl"
    ),
    intake: Address = "127.0.0.1:50061",
    journey: Address = "127.0.0.1:50062",
    employer: Address = "127.0.0.1:50063",
    token: SourceToken = None,
) -> None:
    """Ask the source services what became of each event of a file sent before: accepted,
    held until its start comes, refused when it came, or not known (rejected when sent)."""

    async def run(importer: Importer) -> None:
        states = (await importer.check(file, out)).states
        console.print(
            f"{states.total()} lines: {states['ACCEPTED']} accepted,"
            f" {states['HELD']} held until their start comes,"
            f" {states['REFUSED']} refused when their start came,"
            f" {states['NOT_KNOWN']} not known (rejected when sent, or never sent),"
            f" {states['INVALID']} unreadable (see {out})"
        )

    addresses = {"intake": intake, "journey": journey, "employer": employer}
    _with_sources("check", run, addresses, token)


def _with_sources(
    what: str,
    run: Callable[[Importer], Awaitable[None]],
    addresses: dict[str, str],
    token: str | None,
) -> None:
    """Run `run` with the source services at `addresses`; one line and exit 1 if they fail."""

    async def running() -> None:
        importer = Importer(addresses, token)
        try:
            await run(importer)
        finally:
            await importer.close()

    failed = None
    try:
        asyncio.run(running())
    except* grpc.aio.AioRpcError as group:
        failed = group.exceptions[0]
    if isinstance(failed, grpc.aio.AioRpcError):
        # For an import: the lines sent before it are stored; importing again skips them.
        console.print(f"{what} stopped: {failed.code().name}: {failed.details()}")
        if failed.code() == grpc.StatusCode.UNAUTHENTICATED and token is None:
            console.print(
                "(it signed its own token with LOS_SOURCE_TOKEN_KEY: set that to the source"
                " services' key, or give --token / LOS_SOURCE_TOKEN)"
            )
        raise typer.Exit(1)


app.command()(replay)
app.command()(export)
app.command()(token)
app.command()(erase)


@alerts_app.command("watch")
def watch_alerts(
    token: Annotated[str, typer.Option(envvar="LOS_TOKEN", help="bearer token (los token)")],
    coordinator: Annotated[str | None, typer.Option(help="coordinator id")] = None,
    team: Annotated[str | None, typer.Option(help="org_unit of a team queue")] = None,
    outcomes: str = "127.0.0.1:50064",
    after: int = 0,
) -> None:
    """Print a coordinator's (or team queue's) alerts as they arrive; resumes on reconnect.
    With neither --coordinator nor --team, the token's own coordinator."""

    def broke(why: str) -> None:
        console.print(f"cannot reach outcomes at {outcomes} ({why}); trying again")

    async def run() -> None:
        updates = watch(
            outcomes, token, coordinator=coordinator, org_unit=team, after=after, broke=broke
        )
        async for update in updates:
            alert = update.alert
            print(
                f"{update.cursor}\t{update.change}\t{alert.rule}\t{alert.subject}"
                f"\t{alert.raised_at.ToDatetime(UTC).isoformat()}\t{alert.status}"
                f"\t{alert.resolution}",
                flush=True,
            )

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except grpc.aio.AioRpcError as refused:
        console.print(f"{refused.code().name}: {refused.details()}")
        raise typer.Exit(1) from None


@app.command()
def caseload(
    token: Annotated[str, typer.Option(envvar="LOS_TOKEN", help="bearer token (los token)")],
    coordinator: Annotated[str | None, typer.Option(help="coordinator id")] = None,
    team: Annotated[str | None, typer.Option(help="org_unit of a team queue")] = None,
    outcomes: str = "127.0.0.1:50064",
    limit: Annotated[int, typer.Option(min=0, help="at most this many (0: 100)")] = 0,
) -> None:
    """Print a coordinator's caseload now, or a team's queue and its coordinators' loads.
    With neither --coordinator nor --team, the token's own coordinator."""
    try:
        found = asyncio.run(
            get_caseload(outcomes, token, coordinator=coordinator, org_unit=team, limit=limit)
        )
    except grpc.aio.AioRpcError as refused:
        console.print(f"{refused.code().name}: {refused.details()}")
        raise typer.Exit(1) from None
    whose = team or coordinator or "the token's coordinator"
    for shown in caseload_tables(found, whose, team=team is not None):
        Console(soft_wrap=True).print(shown)


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="cohort size")] = 300,
    seed: Annotated[int, typer.Option(help="cohort seed")] = 7,
) -> None:
    """Start everything, push a synthetic cohort through it, and show alerts arriving."""
    from services.cli.demo import run_demo

    with _stops_with_the_reason("demo"):
        run_demo(people=people, seed=seed, console=Console(soft_wrap=True))


app.add_typer(vault_app, name="vault")

if __name__ == "__main__":
    app()
