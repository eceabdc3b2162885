"""The journey store: one `JourneyLog` per participant, across every source.

Ingest is exactly once: each batch from the stream is saved in one transaction together
with a Tracking row holding the highest stream sequence it covers, and a redelivered
message at or below that sequence is skipped. The same event id arriving twice (a
republish after the duplicate window) is one fact, never two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

import asyncpg
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ProcessRecorder as LibraryProcessRecorder
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from services.kernel.keys import opened, opened_for, sealed_for
from services.kernel.store import BatchApplication, ProcessRecorder
from services.outcomes.alerts import Connection
from services.outcomes.domain import Fact
from services.outcomes.journey import Journey
from services.outcomes.owner import Owner, reached

_NAMESPACE = UUID("4c6f7300-0000-4000-8000-000000000002")


class JourneyLog(Aggregate):
    """The facts known about one participant, in the order they arrived."""

    @staticmethod
    def create_id(participant: str) -> UUID:
        return uuid5(_NAMESPACE, participant)

    def __init__(self, participant: str) -> None:
        self.participant = participant
        self.facts: list[Fact] = []
        self.seen: set[str] = set()
        self.trace: dict[str, str] = {}  # the trace context of the ingest of the latest fact

    class FactRecorded(Aggregate.Event):
        """A fact about the participant (a domain event from the stream), sealed for them
        (`keys.py`) beside what is read of it without their key (`ENVELOPE`), and the
        trace context of its ingest. A plain event class, as `SourceRecord`'s."""

        fact: dict[str, Any]
        trace: dict[str, str] | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.seen.add(self.fact["event_id"])
            aggregate.facts.append(to_fact(aggregate._offered_or(self.fact), len(aggregate.facts)))
            aggregate.trace = self.trace or {}

    def record(
        self, fact: dict[str, Any], trace: dict[str, str] | None = None, sealed: str | None = None
    ) -> None:
        """Record `fact` (a domain event as JSON values) as `sealed` for the participant,
        or sealed now with the key `opened`."""
        stored = {name: fact[name] for name in ENVELOPE}
        stored["sealed"] = sealed or sealed_for(self.participant, orjson.dumps(fact))
        self._offered = fact
        self.trigger_event(self.FactRecorded, fact=stored, trace=trace)

    def _offered_or(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The fact `record` was given, or the stored one read back (with the person's
        key `opened`; one stored before facts were sealed, as it is)."""
        offered: dict[str, Any] | None = self.__dict__.pop("_offered", None)
        if offered is not None:
            return offered
        return opened_fact(stored, opened_for)

    def journey(self) -> Journey:
        return Journey(self.participant, list(self.facts))


# What the journey store keeps of a fact in clear, beside it sealed: what the rule engine
# reads to know who to judge and how far the clock may go, without anyone's key.
ENVELOPE = ("event_id", "participant", "service", "recorded_at")


def opened_fact(stored: dict[str, Any], opened: Callable[[str, str], bytes]) -> dict[str, Any]:
    """A stored fact as a domain event's JSON values, unsealed by `opened` (the person's
    pseudonym, the sealed text); one stored before facts were sealed, as it is."""
    if "sealed" not in stored:
        return stored
    fact: dict[str, Any] = orjson.loads(opened(stored["participant"], stored["sealed"]))
    return fact


def to_fact(fact: dict[str, Any], seq: int) -> Fact:
    """A stored domain event as a fact of the journey, its times in UTC."""
    return Fact(
        fact["event_id"],
        fact["type"],
        _utc(fact["occurred_at"]),
        _utc(fact["recorded_at"]),
        fact["data"],
        seq,
        fact["source"]["system"],
    )


def _utc(text: str) -> datetime:
    """A stored instant in UTC (`Fact` refuses one without an offset)."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is None else at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from the stream, decoded: its stream sequence and partition, the
    domain event, and as it was sealed, with which key (None: not sealed; the store seals
    it with the person's key, read or made)."""

    sequence: int
    partition: int
    event: dict[str, Any]
    sealed: str | None = None
    key: AESGCM | None = None


class JourneyStore(BatchApplication):
    """Call it from one `Worker` thread: `eventsourcing` is synchronous."""

    def construct_recorder(self) -> LibraryProcessRecorder:
        return self.factory.process_recorder()

    def positions(self, owner: Owner) -> dict[int, int]:
        """The stream sequence up to which each of `owner`'s partitions is recorded, by it
        or by the owners before it (`owner.reached`)."""
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return reached(owner, recorder.tracked())

    def ingest(
        self, owner: Owner, deliveries: Sequence[Delivery], trace: dict[str, str] | None = None
    ) -> int:
        """Record a batch of `owner`'s partitions in one transaction with its tracking
        position; returns new facts. `trace` is the ingest's trace context, kept beside
        each fact."""
        positions = self.positions(owner)
        fresh = [d for d in deliveries if d.sequence > positions[d.partition]]
        if not fresh:
            return 0  # already recorded before a crash or redelivery
        keys = {d.event["participant"]: d.key for d in fresh if d.key is not None}
        if unknown := {d.event["participant"] for d in fresh} - keys.keys():
            keys |= self.keys.for_writing(unknown)  # not sealed: published before sealing
        in_order: list[Any] = []  # stream order, which the live clock relies on
        recorded = 0
        with opened(keys):
            logs = self._logs(keys)
            with self.evicting([log.id for log in logs.values()]):
                for delivery in fresh:
                    log = logs.get(delivery.event["participant"])
                    if log is not None and delivery.event["event_id"] not in log.seen:
                        log.record(delivery.event, trace, delivery.sealed)
                        in_order.extend(log.collect_events())
                        recorded += 1
                last = max(delivery.sequence for delivery in fresh)
                # Every message of the owner's partitions up to `last` is in the store now
                # (an erased person's left out).
                self.record_batch(in_order, logs.values(), Tracking(owner.name, last))
        return recorded

    def journeys(self, participants: Iterable[str], *, keep: bool = True) -> dict[str, Journey]:
        """Their journeys; `keep=False` for a read that should not push the journeys ingest
        and the rules work on out of the cache. An erased person's is empty."""
        return {
            p: log.journey()
            for p, log in self._logs(participants, keep=keep, read_keys=True).items()
        }

    def traces(self, participants: Iterable[str]) -> dict[str, dict[str, str]]:
        """The trace context of the ingest that brought each participant's latest fact."""
        return {p: log.trace for p, log in self._logs(participants, read_keys=True).items()}

    def _logs(
        self, participants: Iterable[str], *, keep: bool = True, read_keys: bool = False
    ) -> dict[str, JourneyLog]:
        """Each participant's log (read with their keys `opened`, or `read_keys`), a new
        one for someone not seen before, or erased."""
        ids = {JourneyLog.create_id(p): p for p in participants}
        stored = self.load(JourneyLog, ids.keys(), keep=keep, people=ids if read_keys else None)
        return {p: stored.get(i) or JourneyLog(p) for i, p in ids.items()}


FACT_TOPIC = get_topic(JourneyLog.FactRecorded)


async def open_pool(database_url: str | None) -> asyncpg.Pool:
    """Outcomes' asyncpg pool (rule engine, alerts, API).

    asyncpg prepares every statement, and PostgreSQL gives a prepared statement a generic
    plan after five runs, fitted to the tables as they were then. Made while the journey
    store was small, `facts_after`'s scanned and sorted the whole log (0.5-0.9 s a call at
    225,000 facts, against ~5 ms along the index), so each run is planned for its values.

    The tables the engine reads by participant are in memory or on SSD, where a random
    read costs little more than a sequential one: at PostgreSQL's default of 4 for that
    ratio, the planner read all 65,000 alerts to find those of a judging pass's 500
    people (18.5 ms against 5.0 along the index), a read that grows with every alert ever
    raised. 1.1 is what PostgreSQL's manual suggests for SSD.
    """
    return await asyncpg.create_pool(
        database_url,
        min_size=2,
        max_size=8,
        server_settings={"plan_cache_mode": "force_custom_plan", "random_page_cost": "1.1"},
    )


async def facts_after(conn: Connection, after: int, limit: int) -> list[asyncpg.Record]:
    """The facts recorded after notification `after` in the journey store's log, at most
    `limit`, in order: (notification id, participant, service, recorded_at). Read with
    asyncpg from the stored JSON, off the store's one worker thread; the library's table
    lock makes the log's ids commit in order, so none is passed over."""
    return await conn.fetch(
        """
        SELECT notification_id, fact ->> 'participant', fact ->> 'service',
               fact ->> 'recorded_at'
        FROM (
            SELECT notification_id, convert_from(state, 'UTF8')::jsonb -> 'fact' AS fact
            FROM outcomes.journeystore_events
            WHERE notification_id > $1 AND topic = $3
            ORDER BY notification_id
            LIMIT $2
        ) AS facts
        """,
        after,
        limit,
        FACT_TOPIC,
    )
