"""`los`: run the platform, generate, import and check cohorts, watch alerts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import grpc
import typer
from rich.console import Console

from services.cli.caseload import caseload_tables, get_caseload
from services.cli.importer import Importer
from services.cli.platform import SERVICES, platform
from services.cli.token import token
from services.cli.vault import vault_app
from services.cli.watch import watch
from services.cohort import generate_cohort, write_jsonl
from services.kernel.embedded import CannotStart
from services.kernel.settings import get_settings

if TYPE_CHECKING:
    from services.outcomes.replay import Replay

app = typer.Typer(help="Los: follows people across measures and alerts their coordinator.")
alerts_app = typer.Typer(help="Coordinators' alerts.")
app.add_typer(alerts_app, name="alerts")
app.add_typer(vault_app, name="vault")
app.command()(token)
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
EventsFile = Annotated[
    Path, typer.Argument(help="JSONL of edge events (CONTRACT §1)", exists=True, dir_okay=False)
]
Workers = Annotated[int | None, typer.Option(help="processes (default: one per CPU)")]
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


@app.command()
def replay(
    until: Annotated[str, typer.Option(help="RFC 3339 instant at which the clock stops")],
    file: Annotated[
        Path | None,
        typer.Argument(help="JSONL of edge events (CONTRACT §1)", exists=True, dir_okay=False),
    ] = None,
    pseudonym_key: Annotated[
        str | None, typer.Option(help="HMAC-SHA256 key of the pseudonyms (with a FILE)")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store", help="the journey store DATABASE_URL names, not a FILE")
    ] = False,
    study_key: Annotated[
        str | None,
        typer.Option(
            envvar="LOS_STUDY_KEY", help="the study's own pseudonym key, 32 bytes or more (--store)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="alerts as JSONL (default: stdout)")] = None,
    workers: Workers = None,
) -> None:
    """Replay a file through the rules, as the live service judges it (CONTRACT §5); or,
    with --store, the platform's own history, its journey store, for a study.

    Skipped lines go to stderr with line number and reason; same input and key, same bytes."""
    clock = _instant(until, "--until")
    rules = get_settings().rules
    processes = workers or os.cpu_count() or 1
    started = time.perf_counter()
    if file is not None and pseudonym_key is not None and not (store or study_key):
        from services.outcomes.replay import replay_file

        result = replay_file(file, clock, pseudonym_key, rules, processes)
    elif store and study_key is not None and file is None and pseudonym_key is None:
        result = _replay_store(clock, study_key, processes)
    else:
        raise typer.BadParameter("give a FILE and --pseudonym-key, or --store and --study-key")
    alerts = result.alerts
    with out.open("wb") if out else contextlib.nullcontext(sys.stdout.buffer) as sink:
        sink.writelines(f"{line}\n".encode() for line in alerts)
        sink.flush()
    _report(result, f"{len(alerts):,} alerts", started, store=store)


def _replay_store(until: datetime, study_key: str, workers: int) -> Replay:
    """`los replay --store`, or the reason it cannot run."""
    import asyncpg

    from services.outcomes.history import NoStore, replay_store

    settings = get_settings()
    if settings.database_url is None:
        raise typer.BadParameter("DATABASE_URL is not set: name outcomes' database")
    _check_study_key(study_key)
    try:
        return replay_store(settings.database_url, until, settings.rules, study_key, workers)
    except (NoStore, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        console.print(f"replay stopped: {error}")
        raise typer.Exit(1) from None


@app.command()
def export(
    file: EventsFile,
    until: Annotated[str, typer.Option(help="RFC 3339 instant: what was known then")],
    study_key: Annotated[
        str,
        typer.Option(
            envvar="LOS_STUDY_KEY",
            help="the study's own HMAC-SHA256 pseudonym key, 32 bytes or more",
        ),
    ],
    out: Annotated[Path, typer.Option(help="folder for the study's files", file_okay=False)],
    workers: Workers = None,
) -> None:
    """Write what evaluators study: each engagement and person (Parquet, pseudonymous under
    the study's key) and measure outcomes per measure and provider (CSV, no cell giving
    away fewer than 5 people).

    The same replay as `los replay`, whose output with the same key names the same people;
    skipped lines go to stderr with line number and reason."""
    try:
        import lifelines  # noqa: F401  # imported now, not after the replay, if it is missing

        from services.outcomes.export import export_file
    except ModuleNotFoundError as missing:
        if missing.name not in {"lifelines", "pyarrow"}:
            raise
        console.print(f"los export needs {missing.name}: pip install 'los[research]'")
        raise typer.Exit(1) from None

    clock = _instant(until, "--until")
    settings = get_settings()
    _check_study_key(study_key)
    started = time.perf_counter()
    processes = workers or os.cpu_count() or 1
    written = export_file(file, clock, study_key, settings.rules, out, processes)
    made = f"{written.people:,} people, {written.engagements:,} engagements"
    _report(written.replay, f"{made}: {len(written.files)} files in {out}", started)


def _check_study_key(study_key: str) -> None:
    """A study's key: not the platform's (whose pseudonyms lead to the live stores), and
    long enough that no one guesses it from the pseudonyms or its fingerprint."""
    if study_key == get_settings().pseudonym_key.get_secret_value():
        raise typer.BadParameter("must not be LOS_PSEUDONYM_KEY", param_hint="--study-key")
    if len(study_key.encode()) < 32:
        raise typer.BadParameter(
            "must be 32 bytes or more (openssl rand -hex 32)", param_hint="--study-key"
        )


def _instant(text: str, option: str) -> datetime:
    from services.outcomes.replay import parse_instant

    try:
        return parse_instant(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def _report(result: Replay, made: str, started: float, *, store: bool = False) -> None:
    """The lines a replay skipped, then what it read and made, on stderr. (A store has
    nothing to skip: what was invalid, refused or a duplicate never became a fact.)"""
    for problem in result.skipped:
        print(problem, file=sys.stderr)
    seconds = time.perf_counter() - started
    unit = "facts" if store else "events"
    read = f"{result.events:,} {unit}"
    if not store:
        read += (
            f": {result.invalid:,} invalid, {result.refused:,} refused,"
            f" {result.held:,} held, {result.duplicates:,} duplicates"
        )
    typer.echo(
        f"{read}, {result.after_until:,} recorded after --until;"
        f" {made} in {seconds:.1f} s = {result.events / seconds:,.0f} {unit}/s",
        err=True,
    )


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


if __name__ == "__main__":
    app()
