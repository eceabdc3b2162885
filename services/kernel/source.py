"""What the three source services (intake, journey, employer) have in common.

Each keeps one `SourceRecord` aggregate per participant: every event the service accepted
about that person, in order, deduplicated by `event_id`. A service's own record type adds
its lifecycle checks (a measure ends only after it started, ...). A batch is one
transaction, so throughput comes from batch size, not from more writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from services.kernel.events import DomainEvent
from services.kernel.store import BatchApplication

_NAMESPACE = UUID("4c6f7300-0000-4000-8000-000000000001")


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a valid event cannot be taken: the field at fault and what was expected."""

    field: str
    reason: str


ACCEPTED = "accepted"
DUPLICATE = "duplicate"
Verdict = str | Refused


class SourceRecord(Aggregate):
    """Everything one source service accepted about one participant."""

    class Accepted(Aggregate.Event):
        """An event the service accepted: its JSON, and the trace context of its batch.
        (A plain event class: the library's `@event` methods cost ~5 µs more an event,
        matching arguments to parameters by name on every call.)"""

        body: str
        trace: dict[str, str]

        def apply(self, aggregate: Any) -> None:
            # The offered event, so as not to read back what `offer` was given.
            offered: DomainEvent | None = aggregate.__dict__.pop("_offered", None)
            aggregate._take_in(offered or DomainEvent.model_validate_json(self.body))

    @staticmethod
    def create_id(service: str, participant: str) -> UUID:
        return uuid5(_NAMESPACE, f"{service}:{participant}")

    def __init__(self, service: str, participant: str) -> None:
        self.participant = participant
        self.seen: set[str] = set()

    @classmethod
    def for_replay(cls, service: str, participant: str) -> Self:
        """A record that only ever `take`s: its state, without the `Created` event, id
        and version that calling the class builds for storing it (a tenth of a replay)."""
        record = cls.__new__(cls)
        record.__init__(service, participant)  # type: ignore[misc]
        return record

    def offer(self, domain_event: DomainEvent, trace: dict[str, str]) -> Verdict:
        """Take the event unless it is a duplicate or breaks this record's lifecycle."""
        verdict = self.verdict(domain_event)
        if verdict == ACCEPTED:
            self._offered = domain_event
            self.trigger_event(self.Accepted, body=domain_event.model_dump_json(), trace=trace)
        return verdict

    def take(self, domain_event: DomainEvent) -> Verdict:
        """What `offer` decides and does to the record's state, without the `Accepted`
        event that would store it: for a replay, which keeps nothing but the state."""
        verdict = self.verdict(domain_event)
        if verdict == ACCEPTED:
            self._take_in(domain_event)
        return verdict

    def verdict(self, domain_event: DomainEvent) -> Verdict:
        if str(domain_event.event_id) in self.seen:
            return DUPLICATE
        return self.check(domain_event) or ACCEPTED

    def _take_in(self, domain_event: DomainEvent) -> None:
        self.seen.add(str(domain_event.event_id))
        self.apply(domain_event)

    def check(self, domain_event: DomainEvent) -> Refused | None:
        """A service's lifecycle rules; None when the event may be taken."""
        return None

    def apply(self, domain_event: DomainEvent) -> None:
        """A service's lifecycle state, updated by an accepted event."""


class SourceApplication(BatchApplication):
    """A source service's event store. Call it from one `Worker` thread."""

    service: ClassVar[str]
    record_type: ClassVar[type[SourceRecord]]

    def accept_batch(self, batch: Sequence[tuple[DomainEvent, dict[str, str]]]) -> list[Verdict]:
        people = {event.participant for event, _ in batch}
        ids = {person: SourceRecord.create_id(self.service, person) for person in people}
        records = self.load(self.record_type, ids.values())
        verdicts: list[Verdict] = []
        in_order: list[Any] = []
        with self.evicting(ids.values()):
            for domain_event, trace in batch:
                person = domain_event.participant
                record = records.get(ids[person])
                if record is None:
                    record = records[ids[person]] = self.record_type(self.service, person)
                verdicts.append(record.offer(domain_event, trace))
                in_order.extend(record.collect_events())
            # Stored, and so published, in the order received rather than grouped by
            # person: outcomes' live clock relies on each service's stream following
            # recorded_at.
            self.record_batch(in_order, records.values(), tracking=None)
        return verdicts

    def remember(self, identities: dict[str, str]) -> None:
        """Pseudonym → national id for the events of a batch; only intake keeps them."""
