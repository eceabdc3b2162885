"""Alerts as stored for coordinators: current state, an append-only log, and live feed.

The rules decide; this module keeps what they decided. `alerts` holds each alert's current
state; `alert_log` every change in order, whose position is the cursor a coordinator's
client resumes from; a NOTIFY on `los_alerts` tells the feed to look again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any, TypeAlias
from weakref import WeakValueDictionary

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

CHANNEL = "los_alerts"
_TIMES = ("raised_at", "resolved_at", "acknowledged_at")
# CONTRACT §4: only a person's acknowledgement resolves these.
RESOLVED_BY_ACKNOWLEDGEMENT = frozenset({"EARLY_JOB_EXIT", "MEASURE_CHURN"})
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
Recipient: TypeAlias = tuple[str, str]  # ("coordinator", id) or ("org_unit", team)
# The transaction lock writers of `alert_log` take, so that its cursors are committed in
# their order: a watcher that has read past a cursor never finds a smaller one later.
_LOG_LOCK = 0x4C6F73_A1E47


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert_id: str
    participant: str
    rule: str
    subject: str
    coordinator: str | None
    org_unit: str | None
    raised_at: datetime
    status: str
    resolved_at: datetime | None
    resolution: str | None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def unresolved(self) -> bool:
        return self.status != "resolved"

    def as_json(self) -> str:
        row = asdict(self)
        for key in _TIMES:
            row[key] = row[key].isoformat() if row[key] else None
        return json.dumps(row)

    @classmethod
    def from_json(cls, text: str) -> StoredAlert:
        row: dict[str, Any] = json.loads(text)
        for key in _TIMES:
            row[key] = datetime.fromisoformat(row[key]) if row[key] else None
        return cls(**row)


# The columns of `outcomes.alerts`, in order.
_FIELDS = tuple(field.name for field in fields(StoredAlert))


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the alert log: what happened to which alert."""

    cursor: int
    change: str
    alert: StoredAlert


async def current(conn: Connection, participants: Sequence[str]) -> dict[str, StoredAlert]:
    """The alerts of `participants`, locked until the transaction ends: a judging pass
    writes their next state from this read, so an acknowledgement must wait for it, not
    be overwritten by it."""
    rows = await conn.fetch(
        "SELECT * FROM outcomes.alerts WHERE participant = ANY($1::text[]) FOR UPDATE",
        list(participants),
    )
    return {row["alert_id"]: StoredAlert(**dict(row)) for row in rows}


async def write(conn: Connection, changes: Sequence[tuple[str, StoredAlert]]) -> None:
    """Upsert each alert's new state and append the changes to the log, in their order:
    one statement each, whatever the number of changes (rows as arrays, `unnest`)."""
    # An alert raised and resolved in one pass is in `changes` twice: its last state stands.
    latest = list({alert.alert_id: alert for _, alert in changes}.values())
    await conn.execute(
        """INSERT INTO outcomes.alerts
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::timestamptz[], $8::text[], $9::timestamptz[], $10::text[],
             $11::text[], $12::timestamptz[])
           ON CONFLICT (alert_id) DO UPDATE SET status = EXCLUDED.status,
             resolved_at = EXCLUDED.resolved_at, resolution = EXCLUDED.resolution,
             acknowledged_by = EXCLUDED.acknowledged_by,
             acknowledged_at = EXCLUDED.acknowledged_at""",
        *[[getattr(alert, name) for alert in latest] for name in _FIELDS],
    )
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOG_LOCK)
    # Sorted by position in `changes`, so the log's cursors follow their order.
    await conn.execute(
        """INSERT INTO outcomes.alert_log (alert_id, change, coordinator, org_unit, alert)
           SELECT alert_id, change, coordinator, org_unit, alert::jsonb
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
             WITH ORDINALITY AS changes (alert_id, change, coordinator, org_unit, alert, n)
           ORDER BY n""",
        [a.alert_id for _, a in changes],
        [change for change, _ in changes],
        [a.coordinator for _, a in changes],
        [a.org_unit for _, a in changes],
        [a.as_json() for _, a in changes],
    )
    await conn.execute(f"NOTIFY {CHANNEL}")


async def find(conn: Connection, alert_id: str) -> StoredAlert | None:
    """One alert, locked until the transaction ends (as `current`): an acknowledgement
    writes its next state from this read, so a judging pass must wait for it."""
    row = await conn.fetchrow(
        "SELECT * FROM outcomes.alerts WHERE alert_id = $1 FOR UPDATE", alert_id
    )
    return None if row is None else StoredAlert(**dict(row))


def acknowledged(alert: StoredAlert, by: str, at: datetime) -> tuple[str, StoredAlert]:
    """The change an acknowledgement makes: it resolves the rules only a person resolves."""
    if alert.rule in RESOLVED_BY_ACKNOWLEDGEMENT and alert.unresolved:
        return "resolved", replace(
            alert, status="resolved", resolved_at=at, resolution="acknowledged",
            acknowledged_by=by, acknowledged_at=at,
        )  # fmt: skip
    status = alert.status if alert.status == "resolved" else "acknowledged"
    return "acknowledged", replace(alert, status=status, acknowledged_by=by, acknowledged_at=at)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which alerts to list: one recipient, and optionally status, rule and raise time."""

    coordinator: str | None
    org_unit: str | None
    status: str | None = None
    rule: str | None = None
    raised_from: datetime | None = None
    raised_until: datetime | None = None
    limit: int = 100
    before: tuple[datetime, str] | None = None  # the last alert of the page before


async def listed(conn: Connection, where: Filter) -> list[StoredAlert]:
    rows = await conn.fetch(
        """SELECT * FROM outcomes.alerts
           WHERE ($1::text IS NOT NULL AND coordinator = $1
                  OR $1::text IS NULL AND coordinator IS NULL AND org_unit = $2)
             AND ($3::text IS NULL OR status = $3)
             AND ($4::text IS NULL OR rule = $4)
             AND ($5::timestamptz IS NULL OR raised_at >= $5)
             AND ($6::timestamptz IS NULL OR raised_at < $6)
             AND ($8::timestamptz IS NULL OR (raised_at, alert_id) < ($8, $9::text))
           ORDER BY raised_at DESC, alert_id DESC LIMIT $7""",
        where.coordinator, where.org_unit, where.status, where.rule,
        where.raised_from, where.raised_until, where.limit,
        *(where.before or (None, None)),
    )  # fmt: skip
    return [StoredAlert(**dict(row)) for row in rows]


async def of_participant(conn: Connection, participant: str) -> list[StoredAlert]:
    rows = await conn.fetch(
        "SELECT * FROM outcomes.alerts WHERE participant = $1 ORDER BY raised_at, rule, subject",
        participant,
    )
    return [StoredAlert(**dict(row)) for row in rows]


async def record_reads(
    conn: Connection, reader: str, participants: Sequence[str], at: datetime
) -> None:
    """Every read of a person's journey is itself recorded (DESIGN.md, privacy)."""
    await conn.execute(
        "INSERT INTO outcomes.journey_reads SELECT $1, $2, unnest($3::text[])",
        at,
        reader,
        list(participants),
    )


async def unresolved_counts(conn: Connection, participants: Sequence[str]) -> dict[str, int]:
    """How many alerts about each of these people are not resolved (none: left out)."""
    rows = await conn.fetch(
        "SELECT participant, count(*) FROM outcomes.alerts"
        " WHERE participant = ANY($1::text[]) AND status <> 'resolved' GROUP BY participant",
        list(participants),
    )
    return {row["participant"]: row["count"] for row in rows}


class AlertFeed:
    """Changes for one coordinator or one team queue: the backlog, then live ones.

    One connection LISTENs for the engine's NOTIFY. On each, the feed reads once which
    recipients the new lines of the log are for, and wakes only their watchers: an idle
    watcher costs PostgreSQL nothing, however many there are. If the connection is lost
    (PostgreSQL restarted, a failover) the feed listens again on a new one; it also reads
    the log every `LOOK_AGAIN` seconds, so a lost notification delays a change by that
    at most."""

    LOOK_AGAIN = 5.0
    LISTEN_AGAIN = 1.0  # seconds between attempts to listen again

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._look = asyncio.Event()
        self._read_up_to = 0  # the last cursor of the log the feed has read
        # An event per recipient someone watches, set and dropped when their log grows.
        self._waiting: WeakValueDictionary[Recipient, asyncio.Event] = WeakValueDictionary()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        async with self._pool.acquire() as conn:
            self._read_up_to = await conn.fetchval(
                "SELECT coalesce(max(cursor), 0) FROM outcomes.alert_log"
            )
        listening = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._keep_listening(listening)),
            asyncio.create_task(self._keep_reading()),
        ]
        await listening.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _keep_listening(self, listening: asyncio.Event) -> None:
        while True:
            try:
                async with self._pool.acquire() as conn:
                    lost = asyncio.Event()
                    conn.add_termination_listener(lambda _, lost=lost: lost.set())
                    await conn.add_listener(CHANNEL, self._notified)
                    try:
                        listening.set()
                        self._notified()  # what changed while no one listened
                        await lost.wait()
                    finally:
                        if not conn.is_closed():  # stopped: back to the pool as it came
                            await conn.remove_listener(CHANNEL, self._notified)
                log.warning("the alert feed lost its LISTEN connection; listening again")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("the alert feed cannot listen yet: %s", error)
            await asyncio.sleep(self.LISTEN_AGAIN)

    def _notified(self, *_: object) -> None:
        self._look.set()

    async def _keep_reading(self) -> None:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._look.wait(), self.LOOK_AGAIN)
            self._look.clear()
            try:
                await self._wake_recipients()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("the alert feed cannot read the log: %s", error)
            except Exception:  # anything else too: every watcher waits on this loop
                log.exception("the alert feed failed to read the log; it reads it again")

    async def _wake_recipients(self) -> None:
        """Wake the watchers of each recipient the log has new lines for: one query, one
        row a recipient (the log is committed in the order of its cursors)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT coordinator, org_unit, max(cursor) AS last FROM outcomes.alert_log
                   WHERE cursor > $1 GROUP BY coordinator, org_unit""",
                self._read_up_to,
            )
        for row in rows:
            self._read_up_to = max(self._read_up_to, row["last"])
            waiting = self._waiting.pop(_recipient(row["coordinator"], row["org_unit"]), None)
            if waiting is not None:
                waiting.set()

    async def watch(
        self, *, coordinator: str | None, org_unit: str | None, after: int
    ) -> AsyncGenerator[Change, None]:
        if coordinator:
            query = "SELECT * FROM outcomes.alert_log WHERE coordinator = $1 AND cursor > $2"
        else:
            query = (
                "SELECT * FROM outcomes.alert_log"
                " WHERE coordinator IS NULL AND org_unit = $1 AND cursor > $2"
            )
        query += " ORDER BY cursor LIMIT 500"
        recipient = _recipient(coordinator, org_unit)
        while True:
            # Taken before the read, so a change the read just missed still wakes it.
            changed = self._waiting.setdefault(recipient, asyncio.Event())
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(query, recipient[1], after)
            for row in rows:
                after = row["cursor"]
                yield Change(after, row["change"], StoredAlert.from_json(row["alert"]))
            if not rows:
                await changed.wait()


def _recipient(coordinator: str | None, org_unit: str | None) -> Recipient:
    """Whose feed a line of the log is in: its coordinator's, or with none its team's."""
    return ("coordinator", coordinator) if coordinator else ("org_unit", org_unit or "")
