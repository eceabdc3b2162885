"""Alerts as stored for coordinators: current state, an append-only log, and live feed.

The rules decide; this module keeps what they decided. `alerts` holds each alert's current
state; `alert_log` every change in order, whose position is the cursor a coordinator's
client resumes from; a NOTIFY on `los_alerts` tells watchers to look again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

CHANNEL = "los_alerts"
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS outcomes.alerts (
    alert_id text PRIMARY KEY,
    participant text NOT NULL,
    rule text NOT NULL,
    subject text NOT NULL,
    coordinator text,
    org_unit text,
    raised_at timestamptz NOT NULL,
    status text NOT NULL,
    resolved_at timestamptz,
    resolution text
);
CREATE INDEX IF NOT EXISTS alerts_participant ON outcomes.alerts (participant);
CREATE TABLE IF NOT EXISTS outcomes.alert_log (
    cursor bigserial PRIMARY KEY,
    alert_id text NOT NULL,
    change text NOT NULL,
    coordinator text,
    org_unit text,
    alert jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_log_coordinator ON outcomes.alert_log (coordinator, cursor);
CREATE INDEX IF NOT EXISTS alert_log_org_unit ON outcomes.alert_log (org_unit, cursor);
CREATE TABLE IF NOT EXISTS outcomes.deadlines (
    participant text PRIMARY KEY,
    due_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deadlines_due ON outcomes.deadlines (due_at);
CREATE TABLE IF NOT EXISTS outcomes.rule_state (
    id int PRIMARY KEY,
    position bigint NOT NULL,
    clock timestamptz,
    watermarks jsonb NOT NULL
);
"""


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

    def as_json(self) -> str:
        row = asdict(self)
        for key in ("raised_at", "resolved_at"):
            row[key] = row[key].isoformat() if row[key] else None
        return json.dumps(row)

    @classmethod
    def from_json(cls, text: str) -> StoredAlert:
        row: dict[str, Any] = json.loads(text)
        for key in ("raised_at", "resolved_at"):
            row[key] = datetime.fromisoformat(row[key]) if row[key] else None
        return cls(**row)


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the alert log: what happened to which alert."""

    cursor: int
    change: str
    alert: StoredAlert


async def create_tables(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA_SQL)


async def current(conn: Connection, participants: Sequence[str]) -> dict[str, StoredAlert]:
    rows = await conn.fetch(
        "SELECT * FROM outcomes.alerts WHERE participant = ANY($1::text[])", list(participants)
    )
    return {row["alert_id"]: StoredAlert(**dict(row)) for row in rows}


async def write(conn: Connection, changes: Sequence[tuple[str, StoredAlert]]) -> None:
    """Upsert each alert's new state and append the change to the log."""
    await conn.executemany(
        """INSERT INTO outcomes.alerts VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
           ON CONFLICT (alert_id) DO UPDATE SET status = EXCLUDED.status,
             resolved_at = EXCLUDED.resolved_at, resolution = EXCLUDED.resolution""",
        [
            (a.alert_id, a.participant, a.rule, a.subject, a.coordinator, a.org_unit,
             a.raised_at, a.status, a.resolved_at, a.resolution)
            for _, a in changes
        ],
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO outcomes.alert_log (alert_id, change, coordinator, org_unit, alert)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        [(a.alert_id, change, a.coordinator, a.org_unit, a.as_json()) for change, a in changes],
    )
    await conn.execute(f"NOTIFY {CHANNEL}")


class AlertFeed:
    """Changes for one coordinator or one team queue: the backlog, then live ones."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._changed = asyncio.Event()
        self._listener: Connection | None = None

    async def start(self) -> None:
        listener = await self._pool.acquire()
        await listener.add_listener(CHANNEL, self._notified)
        self._listener = listener

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.remove_listener(CHANNEL, self._notified)
            await self._pool.release(self._listener)

    def _notified(self, *_: object) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def watch(
        self, *, coordinator: str | None, org_unit: str | None, after: int
    ) -> AsyncIterator[Change]:
        if coordinator:
            query = "SELECT * FROM outcomes.alert_log WHERE coordinator = $1 AND cursor > $2"
            who = coordinator
        else:
            query = (
                "SELECT * FROM outcomes.alert_log"
                " WHERE coordinator IS NULL AND org_unit = $1 AND cursor > $2"
            )
            who = org_unit or ""
        query += " ORDER BY cursor LIMIT 500"
        while True:
            changed = self._changed
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(query, who, after)
            for row in rows:
                after = row["cursor"]
                yield Change(after, row["change"], StoredAlert.from_json(row["alert"]))
            if not rows:
                await changed.wait()
