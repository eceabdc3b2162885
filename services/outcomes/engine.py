"""The rules at work: follows the journey store, keeps the live clock, fires deadlines.

It reads new facts from the journey store's notification log and marks their participants
due at the facts' knowledge time (one durable `deadlines` row per participant, written in
the same transaction as its position in the log, so nothing is lost across a crash).
Then, at the live clock of CONTRACT §3, it judges every participant that is due with the
pure rules, stores what changed in the alerts, and sets the participant's next deadline.

The live clock is the recorded_at watermark while outcomes works through a backlog: the
least, over the source services, of the latest recorded_at seen from each, so one fast
source cannot run the clock ahead of a slower one. A source that has gone quiet, with
nothing pending, counts as caught up to the wall clock less a transit allowance; so once
every source is live or quiet, the clock is the wall clock (`_advance_clock`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.kernel.telemetry import tracer
from services.outcomes import alerts
from services.outcomes.alerts import Connection, StoredAlert
from services.outcomes.application import JourneyStore
from services.outcomes.domain import Journey
from services.outcomes.ingest import IngestProgress
from services.outcomes.recipients import recipient_at
from services.outcomes.rules import Alert, evaluate


def alert_id(participant: str, condition_key: str) -> str:
    """Derived from the condition, so the same condition is the same alert everywhere."""
    return hashlib.sha256(f"{participant}|{condition_key}".encode()).hexdigest()[:32]


def alert_changes(
    journey: Journey,
    derived: Sequence[Alert],
    stored: dict[str, StoredAlert],
    clock: datetime,
) -> list[tuple[str, StoredAlert]]:
    """What to write so the stored alerts agree with what the rules now say."""
    changes: list[tuple[str, StoredAlert]] = []
    seen: set[str] = set()
    for alert in derived:
        key = alert_id(journey.participant, alert.condition_key)
        seen.add(key)
        before = stored.get(key)
        if before is None:
            recipient = recipient_at(journey, alert.raised_at)
            before = StoredAlert(
                key, journey.participant, alert.rule, alert.subject, recipient.coordinator,
                recipient.org_unit, alert.raised_at, "open", None, None,
            )  # fmt: skip
            changes.append(("raised", before))
        if before.status == "open" and alert.status == "resolved":
            resolved = replace(
                before,
                status="resolved",
                resolved_at=alert.resolved_at,
                resolution=alert.resolution,
            )
            changes.append(("resolved", resolved))
    for key, before in stored.items():
        # Raised live, but what has become known since says the condition never held.
        # (An alert raised after `clock` is not judged yet: the clock steps back while a
        # backfill of older facts is worked through.)
        if before.status == "open" and key not in seen and before.raised_at <= clock:
            resolved = replace(
                before, status="resolved", resolved_at=clock, resolution="late_information"
            )
            changes.append(("resolved", resolved))
    return changes


@dataclass
class ClockState:
    position: int = 0
    clock: datetime | None = None
    watermarks: dict[str, datetime] = field(default_factory=dict)


class RuleEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: JourneyStore,
        worker: Worker,
        settings: Settings,
        progress: IngestProgress,
    ) -> None:
        self._pool = pool
        self._store = store
        self._worker = worker
        self._settings = settings
        self._progress = progress
        self.state = ClockState()
        self._arrivals: dict[str, float] = {}  # when facts from each service last came in
        self.raised = 0

    async def run(self) -> None:
        self.state = await self._load_state()
        while True:
            busy = await self.step()
            if not busy:
                self._progress.wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wake.wait(), timeout=0.1)

    async def step(self) -> bool:
        """One pass: take in new facts, move the clock, judge who is due. True if it did work."""
        read = await self._take_in_facts()
        self._advance_clock(more_to_read=read == self._settings.batch_size)
        judged = await self._judge_due()
        return read > 0 or judged > 0

    async def _take_in_facts(self) -> int:
        limit = self._settings.batch_size
        facts, last = await self._worker.run(self._store.facts_after, self.state.position, limit)
        if not facts:
            return 0
        due: dict[str, datetime] = {}
        for fact in facts:
            recorded_at = datetime.fromisoformat(fact["recorded_at"])
            participant = fact["participant"]
            due[participant] = min(due.get(participant, recorded_at), recorded_at)
            service = fact["service"]
            self._arrivals[service] = time.monotonic()
            known = self.state.watermarks.get(service)
            self.state.watermarks[service] = (
                recorded_at if known is None else max(known, recorded_at)
            )
        self.state.position = last
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO outcomes.deadlines VALUES ($1, $2) ON CONFLICT (participant)"
                " DO UPDATE SET due_at = LEAST(deadlines.due_at, EXCLUDED.due_at)",
                list(due.items()),
            )
            await self._save_state(conn)
        return len(facts)

    def _advance_clock(self, *, more_to_read: bool) -> None:
        """The least, over the source services, of how far each is known to have got.

        A service still sending (something arrived from it within the quiet period, or
        the stream has a backlog) has got as far as its latest recorded_at. One that has
        gone quiet with nothing pending has nothing more to say up to the wall clock
        (less the transit allowance). With no service heard of yet, that is the clock.
        So the clock steps back when a backfill of history starts after a quiet spell:
        the backfill is judged on its own recorded_at, as `los replay` would judge it.
        """
        state, progress, settings = self.state, self._progress, self._settings
        wall = datetime.now(UTC) - settings.transit_allowance
        backlog = more_to_read or progress.pending != 0
        quiet_since = time.monotonic() - settings.quiet_period.total_seconds()
        reached = [
            mark if backlog or self._arrivals.get(service, 0.0) > quiet_since else max(mark, wall)
            for service, mark in state.watermarks.items()
        ]
        if reached:
            state.clock = min(reached)
        elif not backlog:
            state.clock = wall

    async def _judge_due(self) -> int:
        clock = self.state.clock
        if clock is None:
            return 0
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT participant FROM outcomes.deadlines WHERE due_at <= $1 LIMIT $2",
                clock,
                self._settings.batch_size,
            )
        participants = [row["participant"] for row in rows]
        if not participants:
            return 0
        with tracer(__name__).start_as_current_span("outcomes.rules") as span:
            span.set_attribute("los.participants", len(participants))
            journeys = await self._worker.run(self._store.journeys, participants)
            async with self._pool.acquire() as conn, conn.transaction():
                stored = await alerts.current(conn, participants)
                changes, next_due, finished = self._judge(journeys, stored, clock)
                if changes:
                    await alerts.write(conn, changes)
                await conn.executemany(
                    "UPDATE outcomes.deadlines SET due_at = $2 WHERE participant = $1",
                    list(next_due.items()),
                )
                await conn.execute(
                    "DELETE FROM outcomes.deadlines WHERE participant = ANY($1::text[])", finished
                )
                await self._save_state(conn)
            self.raised += sum(1 for change, _ in changes if change == "raised")
        return len(participants)

    def _judge(
        self, journeys: dict[str, Journey], stored: dict[str, StoredAlert], clock: datetime
    ) -> tuple[list[tuple[str, StoredAlert]], dict[str, datetime], list[str]]:
        changes: list[tuple[str, StoredAlert]] = []
        next_due: dict[str, datetime] = {}
        finished: list[str] = []
        for participant, journey in journeys.items():
            derived, upcoming = evaluate(journey, clock, self._settings.rules)
            mine = {k: a for k, a in stored.items() if a.participant == participant}
            changes.extend(alert_changes(journey, derived, mine, clock))
            if upcoming is None:
                finished.append(participant)
            else:
                next_due[participant] = upcoming
        return changes, next_due, finished

    async def _load_state(self) -> ClockState:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM outcomes.rule_state WHERE id = 1")
        if row is None:
            return ClockState()
        marks: dict[str, Any] = json.loads(row["watermarks"])
        return ClockState(
            row["position"], row["clock"], {k: datetime.fromisoformat(v) for k, v in marks.items()}
        )

    async def _save_state(self, conn: Connection) -> None:
        state = self.state
        marks = json.dumps({k: v.isoformat() for k, v in state.watermarks.items()})
        await conn.execute(
            "INSERT INTO outcomes.rule_state VALUES (1, $1, $2, $3::jsonb) ON CONFLICT (id)"
            " DO UPDATE SET position = $1, clock = $2, watermarks = $3::jsonb",
            state.position,
            state.clock,
            marks,
        )
