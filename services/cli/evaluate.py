"""The evaluators' commands: `los replay` of a file (CONTRACT §5) or of the journey store
for a study, and `los export` of either for a study."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from services.kernel.settings import get_settings

if TYPE_CHECKING:
    from services.outcomes.replay import Replay

EventsFile = Annotated[
    Path, typer.Argument(help="JSONL of edge events (CONTRACT §1)", exists=True, dir_okay=False)
]
# A FILE of edge events, or --store: the journey store.
OrFile = Annotated[
    Path | None,
    typer.Argument(help="JSONL of edge events (CONTRACT §1)", exists=True, dir_okay=False),
]
OrStore = Annotated[
    bool, typer.Option("--store", help="the journey store DATABASE_URL names, not a FILE")
]
Workers = Annotated[int | None, typer.Option(help="processes (default: one per CPU)")]
R = TypeVar("R")
console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


def replay(
    until: Annotated[str, typer.Option(help="RFC 3339 instant at which the clock stops")],
    file: OrFile = None,
    pseudonym_key: Annotated[
        str | None, typer.Option(help="HMAC-SHA256 key of the pseudonyms (with a FILE)")
    ] = None,
    store: OrStore = False,
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
    # A file's replay takes no study key: one set in LOS_STUDY_KEY for --store is let be.
    if file is not None and pseudonym_key is not None and not store:
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
    from services.outcomes.history import replay_store

    database_url = _database_url()
    _check_study_key(study_key)
    rules = get_settings().rules
    return _from_store(
        "replay", lambda: replay_store(database_url, until, rules, study_key, workers)
    )


def _database_url() -> str:
    database_url = get_settings().database_url
    if database_url is None:
        raise typer.BadParameter("DATABASE_URL is not set: name outcomes' database")
    return database_url


def _from_store(command: str, read: Callable[[], R]) -> R:
    """What `read` makes of the journey store for `command`, or why it cannot be read."""
    import asyncpg

    from services.outcomes.history import NoStore

    try:
        return read()
    except (NoStore, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        console.print(f"{command} stopped: {error}")
        raise typer.Exit(1) from None


def export(
    until: Annotated[str, typer.Option(help="RFC 3339 instant: what was known then")],
    study_key: Annotated[
        str,
        typer.Option(
            envvar="LOS_STUDY_KEY",
            help="the study's own HMAC-SHA256 pseudonym key, 32 bytes or more",
        ),
    ],
    out: Annotated[Path, typer.Option(help="folder for the study's files", file_okay=False)],
    file: OrFile = None,
    store: OrStore = False,
    workers: Workers = None,
) -> None:
    """Write what evaluators study: each engagement and person (Parquet, pseudonymous under
    the study's key) and measure outcomes per measure and provider (CSV, no cell giving
    away fewer than 5 people); of a file, or with --store of the platform's journey store.

    The same replay as `los replay` of the same input, whose output with the same key
    names the same people; a file's skipped lines go to stderr with line number and reason."""
    try:
        import lifelines  # noqa: F401  # imported now, not after the replay, if it is missing

        from services.outcomes.export import export_file, export_store
    except ModuleNotFoundError as missing:
        if missing.name not in {"lifelines", "pyarrow"}:
            raise
        console.print(f"los export needs {missing.name}: pip install 'los[research]'")
        raise typer.Exit(1) from None

    if (file is not None) == store:  # one or the other
        raise typer.BadParameter("give a FILE, or --store")
    clock = _instant(until, "--until")
    settings = get_settings()
    _check_study_key(study_key)
    started = time.perf_counter()
    processes = workers or os.cpu_count() or 1
    if file is not None:
        written = export_file(file, clock, study_key, settings.rules, out, processes)
    else:
        database_url = _database_url()
        written = _from_store(
            "export",
            lambda: export_store(database_url, clock, study_key, settings.rules, out, processes),
        )
    made = f"{written.people:,} people, {written.engagements:,} engagements"
    _report(written.replay, f"{made}: {len(written.files)} files in {out}", started, store=store)


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
