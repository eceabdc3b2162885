"""The journey store: one `JourneyLog` per participant, across every source.

Ingest is exactly once: each batch from the stream is saved in one transaction together
with a Tracking row holding the highest stream sequence it covers, and a redelivered
message at or below that sequence is skipped. The same event id arriving twice (a
republish after the duplicate window) is one fact, never two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import ProcessRecorder, Tracking

from services.outcomes.domain import Fact
from services.outcomes.journey import Journey

_NAMESPACE = UUID("4c6f7300-0000-4000-8000-000000000002")


class JourneyLog(Aggregate):
    """The facts known about one participant, in the order they arrived."""

    @staticmethod
    def create_id(participant: str) -> UUID:
        return uuid5(_NAMESPACE, participant)

    def __init__(self, participant: str) -> None:
        self.participant = participant
        self.facts: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.trace: dict[str, str] = {}  # the trace context of the ingest of the latest fact

    @event("FactRecorded")
    def record(self, fact: dict[str, Any], trace: dict[str, str] | None = None) -> None:
        self.seen.add(fact["event_id"])
        self.facts.append(fact)
        self.trace = trace or {}

    def journey(self) -> Journey:
        return Journey(self.participant, [to_fact(f, seq) for seq, f in enumerate(self.facts)])


def to_fact(fact: dict[str, Any], seq: int) -> Fact:
    return Fact(
        event_id=fact["event_id"],
        type=fact["type"],
        occurred_at=datetime.fromisoformat(fact["occurred_at"]),
        recorded_at=datetime.fromisoformat(fact["recorded_at"]),
        data=fact["data"],
        seq=seq,
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from the stream, decoded: its stream sequence and the domain event."""

    sequence: int
    event: dict[str, Any]


class JourneyStore(Application[UUID]):
    """Call it from one `Worker` thread: `eventsourcing` is synchronous."""

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def position(self, consumer: str) -> int:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder.max_tracking_id(consumer) or 0

    def ingest(
        self, consumer: str, deliveries: Sequence[Delivery], trace: dict[str, str] | None = None
    ) -> int:
        """Record a batch in one transaction with its tracking position; returns new facts.
        `trace` is the ingest's trace context, kept beside each fact."""
        position = self.position(consumer)
        logs: dict[str, JourneyLog] = {}
        in_order: list[Any] = []  # stream order, which the live clock relies on
        recorded = 0
        for delivery in deliveries:
            if delivery.sequence <= position:
                continue  # already recorded before a crash or redelivery
            participant = delivery.event["participant"]
            log = logs.get(participant) or self._log(participant)
            logs[participant] = log
            if delivery.event["event_id"] not in log.seen:
                log.record(delivery.event, trace)
                in_order.extend(log.collect_events())
                recorded += 1
        last = max(d.sequence for d in deliveries)
        if last > position:
            processing = ProcessingEvent[UUID](tracking=Tracking(consumer, last))
            processing.collect_events(*in_order, *logs.values())
            self._record(processing)
        return recorded

    def journeys(self, participants: Iterable[str]) -> dict[str, Journey]:
        return {p: self._log(p).journey() for p in participants}

    def traces(self, participants: Iterable[str]) -> dict[str, dict[str, str]]:
        """The trace context of the ingest that brought each participant's latest fact."""
        return {p: self._log(p).trace for p in participants}

    def facts_after(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The facts recorded after notification `after`, in order, and the last id read."""
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        events = (self.mapper.to_domain_event(n) for n in notifications)
        facts = [fact for event in events if (fact := getattr(event, "fact", None)) is not None]
        return facts, (notifications[-1].id if notifications else after)

    def _log(self, participant: str) -> JourneyLog:
        try:
            found: Any = self.repository.get(JourneyLog.create_id(participant))
        except AggregateNotFoundError:
            return JourneyLog(participant)
        assert isinstance(found, JourneyLog)
        return found
