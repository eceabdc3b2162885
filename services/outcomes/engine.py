"""The rules at work: follows the journey store, keeps the live clock, fires deadlines.

It reads new facts from the journey store's notification log (once it has read to the
end, from what ingest hands over as it commits, `Handover`) and marks their participants
(those of its instance's partitions, `owner.py`) due at the facts' knowledge time: one
durable `deadlines` row per participant, written before the next judging in one
transaction with the engine's position in the log (a crash before that loses nothing:
the engine reads those facts again).
Then, at the live clock of CONTRACT §3 (`clock.py`), it judges every participant that is
due with the pure rules, stores what changed in the alerts, and sets the participant's
next deadline (or, while an open alert was raised after the clock, its raise time). For
a participant with a new fact from intake (referral, triage, assignment, closing), whose
caseload they are in is written with their deadline, whatever the clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Recording
from nats.aio.msg import Msg
from pydantic import ValidationError

from services.kernel.bus import ClockAnnouncement, clock_subject, partition_of
from services.kernel.events import SOURCE_SERVICES
from services.kernel.settings import RuleSettings, Settings
from services.kernel.store import Handover, Worker
from services.kernel.telemetry import links_to, tracer
from services.outcomes import alerts, caseload
from services.outcomes.alerts import Connection, StoredAlert
from services.outcomes.application import JourneyStore, facts_after
from services.outcomes.clock import LiveClock, Watermark
from services.outcomes.ingest import IngestProgress
from services.outcomes.journey import Journey
from services.outcomes.owner import Owner, reached
from services.outcomes.recipients import addressed_at, responsibilities
from services.outcomes.rules import Alert, evaluate

log = logging.getLogger(__name__)

HANDED_OVER = 64  # batches of facts ingested and not yet taken in, at most, before reading the log
FactRow = tuple[int, str, str, str]  # notification id, participant, service, recorded_at


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
            recipient = addressed_at(journey, alert.raised_at)
            before = StoredAlert(
                key, journey.participant, alert.rule, alert.subject, recipient.coordinator,
                recipient.org_unit, alert.raised_at, "open", None, None,
            )  # fmt: skip
            changes.append(("raised", before))
        if before.unresolved and alert.status == "resolved":
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
        if before.unresolved and key not in seen and before.raised_at <= clock:
            resolved = replace(
                before, status="resolved", resolved_at=clock, resolution="late_information"
            )
            changes.append(("resolved", resolved))
    return changes


def judge(
    journeys: dict[str, Journey],
    stored: dict[str, StoredAlert],
    clock: datetime,
    rules: RuleSettings,
) -> tuple[list[tuple[str, StoredAlert]], dict[str, datetime], list[str]]:
    """The rules at `clock` over these journeys, against their stored alerts: what to
    write, when each participant is next due, and who will never be again."""
    changes: list[tuple[str, StoredAlert]] = []
    next_due: dict[str, datetime] = {}
    finished: list[str] = []
    by_participant: dict[str, dict[str, StoredAlert]] = {}
    for key, alert in stored.items():
        by_participant.setdefault(alert.participant, {})[key] = alert
    for participant, journey in journeys.items():
        derived, upcoming = evaluate(journey, clock, rules)
        mine = by_participant.get(participant, {})
        changes.extend(alert_changes(journey, derived, mine, clock))
        # An open alert raised after the clock (which steps back while a backfill of older
        # facts is worked through) is judged once the clock gets to it.
        waiting = (a.raised_at for a in mine.values() if a.unresolved and a.raised_at > clock)
        upcoming = min((at for at in (upcoming, *waiting) if at is not None), default=None)
        if upcoming is None:
            finished.append(participant)
        else:
            next_due[participant] = upcoming
    return changes, next_due, finished


@dataclass
class ClockState:
    """Where the engine is: its position in the journey store's log, and the live clock
    (None while a source service may still be sending older history)."""

    position: int = 0
    clock: datetime | None = None


class RuleEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: JourneyStore,
        worker: Worker,
        settings: Settings,
        progress: IngestProgress,
        owner: Owner,
    ) -> None:
        self._pool = pool
        self._store = store
        self._worker = worker
        self._settings = settings
        self._progress = progress
        self._owner = owner
        self.state = ClockState()
        self.clock = LiveClock(
            SOURCE_SERVICES,
            settings.quiet_period,
            settings.transit_allowance,
            settings.edge_allowance,
        )
        self._catch_up_judging = settings.catch_up_judging.total_seconds()
        self._judged_at = -float("inf")
        self._handover = Handover[tuple[str, str, str]](HANDED_OVER)
        self._caught_up = False  # read the log to its end since the handover opened
        # Participants due from facts taken in since the deadlines were last written, and
        # when; written with the engine's position before the next judging. Those of them
        # with a fact from intake, the one source of who is responsible for them.
        self._due: dict[str, datetime] = {}
        self._from_intake: set[str] = set()
        store.recorded = self._recorded

    async def run(self) -> None:
        await caseload.fill(self._pool, self._store, self._worker, self._settings.batch_size)
        await _partition_deadlines(self._pool, self._owner.total)
        self.state, self.clock.watermarks = await self._load_state()
        while True:
            busy = await self.step()
            if not busy:
                self._progress.wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wake.wait(), timeout=0.1)

    async def step(self) -> bool:
        """One pass: take in new facts, move the clock, judge who is due. True if it did work."""
        read = await self._take_in_facts()
        # A batch's worth or more at once: read from the log there may be more behind it;
        # handed over, facts arrive faster than a batch a step. Either way, a backlog.
        behind = self._advance_clock(more_to_read=read >= self._settings.batch_size)
        if behind and time.monotonic() - self._judged_at < self._catch_up_judging:
            return read > 0  # the rules give the same alerts when judged later (CONTRACT §3)
        self._judged_at = time.monotonic()
        judged = await self._judge_due()
        return read > 0 or judged > 0

    async def announced(self, message: Msg) -> None:
        """A source's outbox announced how far it has published (`services/kernel/bus.py`)."""
        try:
            announcement = ClockAnnouncement.model_validate_json(message.data)
        except ValidationError as invalid:
            log.warning("ignored a clock announcement on %s: %s", message.subject, invalid)
            return
        if message.subject != clock_subject(self._settings, announcement.service):
            log.warning(
                "ignored a clock announcement for %s on %s", announcement.service, message.subject
            )
            return
        self.clock.announced(
            announcement.service, announcement.received_by, announcement.stream_sequence
        )
        progress = self._progress
        progress.announced = max(progress.announced, announcement.stream_sequence)
        progress.wake.set()

    def _recorded(self, recordings: list[Recording[UUID]]) -> None:
        """Ingest committed these (in the store's worker thread)."""
        facts = [
            (r.notification.id, (fact["participant"], fact["service"], fact["recorded_at"]))
            for r in recordings
            if (fact := getattr(r.domain_event, "fact", None)) is not None
        ]
        self._handover.committed(facts)

    async def _take_in_facts(self) -> int:
        """Take in the facts after the engine's position; returns how many."""
        through = self._progress.ingested  # in the journey store before the read below
        if not self._handover.is_open:  # first, or closed while the engine fell behind
            self._handover.open()
            self._caught_up = False
        facts: Sequence[FactRow | asyncpg.Record]
        if self._caught_up:
            facts = [(n, *fact) for n, fact in self._handover.take(self.state.position)]
            more = False
        else:
            async with self._pool.acquire() as conn:
                facts = await facts_after(conn, self.state.position, self._settings.batch_size)
            more = len(facts) == self._settings.batch_size
            self._caught_up = not more
        if not more:
            self.clock.took_in(through)
        if not facts:
            return 0
        due = self._due
        wall = datetime.now(UTC)
        owns = self._owner.owns
        for _, participant, service, recorded in facts:
            if not owns(participant):  # another instance's, read from the log
                continue
            recorded_at = datetime.fromisoformat(recorded)
            due[participant] = min(due.get(participant, recorded_at), recorded_at)
            if service == "intake":
                self._from_intake.add(participant)
            self.clock.saw(service, recorded_at, wall, time.monotonic())
        self.state.position = facts[-1][0]
        return len(facts)

    async def _write_due(self, conn: Connection) -> None:
        """The participants due from the facts taken in, and the caseloads of those with a
        fact from intake, with the position they bring the engine to, in one transaction:
        a crash before it loses none of them, as the engine then reads those facts from
        the journey store again."""
        due, from_intake = self._due, self._from_intake
        # Their journeys as stored now: with at least the facts taken in.
        journeys = await self._worker.run(self._store.journeys, from_intake) if from_intake else {}
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO outcomes.deadlines SELECT * FROM unnest($1::text[],"
                " $2::timestamptz[], $3::int[]) ON CONFLICT (participant) DO UPDATE"
                " SET due_at = LEAST(deadlines.due_at, EXCLUDED.due_at)",
                list(due),
                list(due.values()),
                [partition_of(participant, self._owner.total) for participant in due],
            )
            if journeys:
                held = {p: responsibilities(journey) for p, journey in journeys.items()}
                await caseload.replace(conn, held, datetime.now(UTC))
            await self._save_state(conn)
        due.clear()
        from_intake.clear()

    def _advance_clock(self, *, more_to_read: bool) -> bool:
        """Move the live clock; True while there is a backlog to work through."""
        backlog = more_to_read or self._progress.pending != 0
        now = self.clock.now(backlog=backlog, wall=datetime.now(UTC), monotonic=time.monotonic())
        self.state.clock = now
        return backlog

    async def _judge_due(self) -> int:
        clock = self.state.clock
        async with self._pool.acquire() as conn:
            if self._due:
                await self._write_due(conn)
            if clock is None:
                return 0
            # With more due than a batch (a backlog), the most recently due first: their
            # journeys are the likeliest to be in the store's cache still. The others wait
            # for a later pass, at the latest until the backlog is worked through.
            rows = await conn.fetch(
                "SELECT participant FROM outcomes.deadlines"
                " WHERE due_at <= $1 AND partition = ANY($3::int[])"
                " ORDER BY due_at DESC LIMIT $2",
                clock,
                self._settings.batch_size,
                list(self._owner.partitions),
            )
        participants = [row["participant"] for row in rows]
        if not participants:
            return 0
        with tracer(__name__).start_as_current_span("outcomes.rules") as span:
            span.set_attribute("los.participants", len(participants))
            journeys = await self._worker.run(self._store.journeys, participants)
            async with self._pool.acquire() as conn, conn.transaction():
                stored = await alerts.current(conn, participants)
                changes, next_due, finished = judge(journeys, stored, clock, self._settings.rules)
                if changes:
                    await alerts.write(conn, changes)
                await conn.execute(
                    "UPDATE outcomes.deadlines SET due_at = next.due_at"
                    " FROM unnest($1::text[], $2::timestamptz[]) AS next (participant, due_at)"
                    " WHERE deadlines.participant = next.participant",
                    list(next_due),
                    list(next_due.values()),
                )
                await conn.execute(
                    "DELETE FROM outcomes.deadlines WHERE participant = ANY($1::text[])", finished
                )
                await self._save_state(conn)
            span.set_attribute("los.alert_changes", len(changes))
            if changes and span.is_recording():
                # Linked to the ingest that brought each changed participant's latest fact.
                changed = {alert.participant for _, alert in changes}
                traces = await self._worker.run(self._store.traces, changed)
                for link in links_to(traces.values()):
                    span.add_link(link.context)
        return len(participants)

    async def _load_state(self) -> tuple[ClockState, dict[str, Watermark]]:
        """The engine's state as saved; for an owner new to its partitions (or back to them
        after others had them), the least of the positions their owners got to, and no
        clock yet."""
        async with self._pool.acquire() as conn:
            rows = {row["id"]: row for row in await conn.fetch("SELECT * FROM outcomes.rule_state")}
        got = reached(self._owner, {name: row["position"] for name, row in rows.items()})
        position = min(got.values())
        row = rows.get(self._owner.name)
        if row is None or row["position"] < max(got.values()):  # others went on since
            return ClockState(position), {}
        marks: dict[str, Any] = json.loads(row["watermarks"])
        watermarks = {
            service: Watermark(datetime.fromisoformat(mark["reached"]), mark["live"])
            for service, mark in marks.items()
        }
        return ClockState(position, row["clock"]), watermarks

    async def _save_state(self, conn: Connection) -> None:
        marks = {
            service: {"reached": mark.reached.isoformat(), "live": mark.live}
            for service, mark in self.clock.watermarks.items()
        }
        await conn.execute(
            "INSERT INTO outcomes.rule_state VALUES ($4, $1, $2, $3::jsonb) ON CONFLICT (id)"
            " DO UPDATE SET position = $1, clock = $2, watermarks = $3::jsonb",
            self.state.position,
            self.state.clock,
            json.dumps(marks),
            self._owner.name,
        )


async def _partition_deadlines(pool: asyncpg.Pool, partitions: int) -> None:
    """Each deadline's partition, where a deadline written before outcomes shared the
    partitions has none."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT participant FROM outcomes.deadlines WHERE partition IS NULL"
        )
        people = [row["participant"] for row in rows]
        await conn.execute(
            "UPDATE outcomes.deadlines SET partition = of.partition"
            " FROM unnest($1::text[], $2::int[]) AS of (participant, partition)"
            " WHERE deadlines.participant = of.participant",
            people,
            [partition_of(participant, partitions) for participant in people],
        )
