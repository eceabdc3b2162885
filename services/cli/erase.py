"""`los erase`: people erased from the platform (DESIGN.md, privacy; `kernel/keys.py`).

Each person's key is deleted, so that every event sealed for them (in the sources' stores,
on the stream, in outcomes' journey store) can no longer be read, and no source service
takes another about them. Then what is kept about them in clear goes: their national id
in intake's vault, and outcomes' alerts, deadlines and caseload entries about them. Logs
are not rewritten, and the records of who read what (`journey_reads`, the sources'
checks) stay, naming the pseudonym only.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg import sql
from rich.console import Console

from services.kernel.connection import KeptConnection
from services.kernel.ids import pseudonym, validate_national_id
from services.kernel.keys import ERASED, KEY, StoredKeys, create_keys
from services.kernel.settings import get_settings

console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)

# What is kept about a person in clear, by table: what deletes it, and what a row is
# called, one and many.
KEPT = (
    (
        "intake.vault",
        "DELETE FROM intake.vault WHERE participant = %s",
        ("national id", "national ids"),
    ),
    (
        "outcomes.alert_log",
        "DELETE FROM outcomes.alert_log WHERE alert_id IN"
        " (SELECT alert_id FROM outcomes.alerts WHERE participant = %s)",
        ("alert change", "alert changes"),
    ),
    (
        "outcomes.alerts",
        "DELETE FROM outcomes.alerts WHERE participant = %s",
        ("alert", "alerts"),
    ),
    (
        "outcomes.deadlines",
        "DELETE FROM outcomes.deadlines WHERE participant = %s",
        ("deadline", "deadlines"),
    ),
    (
        "outcomes.caseload",
        "DELETE FROM outcomes.caseload WHERE participant = %s",
        ("caseload entry", "caseload entries"),
    ),
)


@dataclass(frozen=True)
class Erasure:
    had: str  # `keys.KEY`, `ERASED` or `NOTHING`
    deleted: dict[tuple[str, str], int]  # rows kept in clear, by what they were

    def __str__(self) -> str:
        gone = [f"{n:,} {one if n == 1 else many}" for (one, many), n in self.deleted.items() if n]
        key = ["their key"] if self.had == KEY else []
        if key or gone:
            return "erased " + ", ".join(key + gone)
        if self.had == ERASED:
            return "erased before; nothing more to erase"
        return "not known to Los; no event about them will be taken"


class Eraser:
    """Erases people from the database `database_url` names, one at a time."""

    def __init__(self, database_url: str, pseudonym_key: str) -> None:
        create_keys(database_url)
        self._keys = StoredKeys(database_url)
        self._conn = KeptConnection(database_url)
        self._pseudonym_key = pseudonym_key

    def erase(self, national_id: str, at: datetime) -> Erasure:
        """Their key first (what makes their history unreadable), then what is kept
        about them in clear; erasing someone again finishes what a failure left."""
        participant = pseudonym(national_id, self._pseudonym_key)
        had = self._keys.erase(participant, at)
        conn = self._conn.get()
        deleted: dict[tuple[str, str], int] = {}
        with conn.transaction():
            for table, statement, what in KEPT:
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,):
                    deleted[what] = conn.execute(sql.SQL(statement), (participant,)).rowcount
        return Erasure(had, deleted)

    def close(self) -> None:
        self._keys.close()
        self._conn.close()


def erase(
    people: Annotated[
        Path,
        typer.Argument(
            help="a file of national ids, one a line ('-': standard input)", allow_dash=True
        ),
    ],
) -> None:
    """Erase people from the platform, in the database DATABASE_URL names: their key (no
    event about them can be read again, and none is taken), their national id in the
    vault, and outcomes' alerts, deadlines and caseload entries about them. The ids are
    read from a file or standard input, never the command line (shell history, `ps`)."""
    settings = get_settings()
    if settings.database_url is None:
        raise typer.BadParameter("DATABASE_URL is not set: name the platform's database")
    text = typer.get_text_stream("stdin").read() if str(people) == "-" else _read(people)
    invalid = 0
    try:
        with closing(
            Eraser(settings.database_url, settings.pseudonym_key.get_secret_value())
        ) as eraser:
            for number, line in enumerate(text.splitlines(), start=1):
                if not (national_id := line.strip()):
                    continue
                try:
                    validate_national_id(national_id)
                except ValueError as error:
                    console.print(f"line {number}: not a national identity number: {error}")
                    invalid += 1
                    continue
                console.print(f"line {number}: {eraser.erase(national_id, datetime.now(UTC))}")
    except psycopg.Error as error:
        console.print(f"erase stopped: {error}")
        raise typer.Exit(1) from None
    if invalid:
        raise typer.Exit(1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise typer.BadParameter(f"{path}: {error.strerror}") from None
