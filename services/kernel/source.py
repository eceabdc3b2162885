"""What the three source services (intake, journey, employer) have in common.

Each keeps one `SourceRecord` aggregate per participant: every event the service accepted
about that person, in order, deduplicated by `event_id`, each sealed with the person's
key (`keys.py`); the events of a person erased are refused. A service's own record type
adds its lifecycle checks (a measure ends only after it started, ...). A batch is one
transaction, so throughput comes from batch size, not from more writers.

An end or extension whose start the record does not know yet is held, stored but not
published, until the start comes (CONTRACT §2). It is taken then, right after its start,
if the start was recorded at most `hold` after it; otherwise, or if it no longer fits (an
end before its start, a second end), it is refused then. Both are decided on what the
events themselves say, so `los replay` decides them as the live service does.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Self
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from services.kernel.events import DomainEvent
from services.kernel.keys import opened, opened_for, sealed_for
from services.kernel.settings import iso_duration
from services.kernel.store import BatchApplication

log = logging.getLogger(__name__)

_NAMESPACE = UUID("4c6f7300-0000-4000-8000-000000000001")


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a valid event cannot be taken: the field at fault and what was expected."""

    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """Why a valid event is held rather than taken: the start it needs is not known yet.
    `start` is what the record's `started` says of that start once it comes."""

    field: str
    reason: str
    start: Hashable


ACCEPTED = "accepted"
DUPLICATE = "duplicate"
ERASED = Refused("person", "this person was erased: Los takes no more events about them")
Verdict = str | Refused | Waiting
# Held events decided by the event just offered (its start): each with its verdict,
# ACCEPTED or Refused.
Settled = list[tuple[DomainEvent, Verdict]]


class SourceRecord(Aggregate):
    """Everything one source service accepted about one participant, and the events it
    holds until their start comes."""

    class Stored(Aggregate.Event):
        """An event the service stores, sealed for its person (`keys.py`); beside it,
        what the outbox publishes it by (its person, id and type), and the trace context
        of its batch. (Plain event classes: the library's `@event` methods cost ~5 µs
        more an event, matching arguments to parameters by name on every call.)"""

        body: str  # sealed; in an event stored before events were sealed, its JSON
        trace: dict[str, str]
        participant: str = ""
        event_id: str = ""
        type: str = ""

    class Accepted(Stored):
        """An event the service accepted."""

        def apply(self, aggregate: Any) -> None:
            # The offered event, so as not to read back what `offer` was given.
            aggregate._take_in(aggregate._offered_or(self.body))

    class Held(Stored):
        """An event held until its start comes: stored, never published."""

        def apply(self, aggregate: Any) -> None:
            aggregate._hold(aggregate._offered_or(self.body), self.trace)

    class Dropped(Aggregate.Event):
        """A held event refused once its start came."""

        event_id: str
        field: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate._refuse(self.event_id, Refused(self.field, self.reason))

    @staticmethod
    def create_id(service: str, participant: str) -> UUID:
        return uuid5(_NAMESPACE, f"{service}:{participant}")

    def __init__(self, service: str, participant: str) -> None:
        self.participant = participant
        self.seen: set[str] = set()
        # Held events by event_id, in the order they came, with their trace and what
        # each waits for.
        self.held: dict[str, tuple[DomainEvent, dict[str, str], Waiting]] = {}
        self.refused: dict[str, Refused] = {}  # held events refused when their start came
        self._stored = True

    @classmethod
    def for_replay(cls, service: str, participant: str) -> Self:
        """A record whose state changes as `offer` changes it, without the `Created` and
        other aggregate events, id and version that storing it needs (a tenth of a
        replay)."""
        record = cls.__new__(cls)
        record.__init__(service, participant)  # type: ignore[misc]
        record._stored = False
        return record

    def offer(
        self, domain_event: DomainEvent, trace: dict[str, str], hold: timedelta
    ) -> tuple[Verdict, Settled]:
        """Take the event unless it is a duplicate or breaks this record's lifecycle; hold
        it if it waits for its start. Also what became of the held events it starts."""
        verdict = self.verdict(domain_event)
        if verdict == ACCEPTED:
            self._record(self.Accepted, domain_event, trace)
            return verdict, self._settle(domain_event, hold)
        if isinstance(verdict, Waiting) and str(domain_event.event_id) not in self.held:
            self._record(self.Held, domain_event, trace)
        return verdict, []

    def verdict(self, domain_event: DomainEvent) -> Verdict:
        if str(domain_event.event_id) in self.seen:
            return DUPLICATE
        return self.check(domain_event) or ACCEPTED

    def _settle(self, start: DomainEvent, hold: timedelta) -> Settled:
        """The held events that waited for `start`, taken or refused, in the order held."""
        key = self.started(start)
        if key is None or not self.held:
            return []
        settled: Settled = []
        for domain_event, trace, waiting in list(self.held.values()):
            if waiting.start != key:
                continue
            verdict = self.verdict(domain_event)
            if verdict == ACCEPTED and start.recorded_at - domain_event.recorded_at > hold:
                limit = iso_duration(hold)
                late = f"its start was recorded more than {limit} after it"
                verdict = Refused(waiting.field, late)
            if verdict == ACCEPTED:
                self._record(self.Accepted, domain_event, trace)
            else:
                assert isinstance(verdict, Refused)
                self._drop(str(domain_event.event_id), verdict)
            settled.append((domain_event, verdict))
        return settled

    def _drop(self, event_id: str, refused: Refused) -> None:
        if self._stored:
            self.trigger_event(
                self.Dropped, event_id=event_id, field=refused.field, reason=refused.reason
            )
        else:
            self._refuse(event_id, refused)

    def _refuse(self, event_id: str, refused: Refused) -> None:
        del self.held[event_id]
        self.refused[event_id] = refused

    def state_of(self, event_id: str) -> Verdict | None:
        """What became of an event sent before: ACCEPTED, held (`Waiting`), refused once its
        start came (`Refused`), or None if this record has no such event."""
        if event_id in self.seen:
            return ACCEPTED
        if event_id in self.held:
            return self.held[event_id][2]
        return self.refused.get(event_id)

    def _record(self, kind: type[Stored], domain_event: DomainEvent, trace: dict[str, str]) -> None:
        """The aggregate event that stores `domain_event`; for a replay, its effect alone."""
        if self._stored:
            self._offered = domain_event
            self.trigger_event(
                kind,
                body=sealed_for(self.participant, domain_event.model_dump_json().encode()),
                trace=trace,
                participant=self.participant,
                event_id=str(domain_event.event_id),
                type=domain_event.type,
            )
        elif kind is self.Accepted:
            self._take_in(domain_event)
        else:
            self._hold(domain_event, trace)

    def _offered_or(self, body: str) -> DomainEvent:
        """The event `offer` was given, or the stored one read back (with the person's
        key `opened`; stored before events were sealed, as it is)."""
        offered: DomainEvent | None = self.__dict__.pop("_offered", None)
        if offered is not None:
            return offered
        text = body if body.startswith("{") else opened_for(self.participant, body)
        return DomainEvent.model_validate_json(text)

    def _take_in(self, domain_event: DomainEvent) -> None:
        event_id = str(domain_event.event_id)
        self.seen.add(event_id)
        self.held.pop(event_id, None)
        self.apply(domain_event)

    def _hold(self, domain_event: DomainEvent, trace: dict[str, str]) -> None:
        waiting = self.check(domain_event)
        assert isinstance(waiting, Waiting)
        self.held[str(domain_event.event_id)] = (domain_event, trace, waiting)

    def check(self, domain_event: DomainEvent) -> Refused | Waiting | None:
        """A service's lifecycle rules; None when the event may be taken."""
        return None

    def apply(self, domain_event: DomainEvent) -> None:
        """A service's lifecycle state, updated by an accepted event."""

    def started(self, domain_event: DomainEvent) -> Hashable | None:
        """What a held event's `Waiting.start` is when `domain_event` is the start it
        waits for; None for an event that starts nothing."""
        return None


class SourceApplication(BatchApplication):
    """A source service's event store. Call it from one `Worker` thread."""

    service: ClassVar[str]
    record_type: ClassVar[type[SourceRecord]]

    def accept_batch(
        self,
        batch: Sequence[tuple[DomainEvent, dict[str, str]]],
        hold: timedelta,
        identities: Mapping[str, str] | None = None,
    ) -> list[Verdict]:
        """Each event's verdict; the held events a start lets go are stored after it. The
        national ids of the batch's people (`identities`, by pseudonym) are remembered,
        and an erased person's events refused, with their identity forgotten."""
        people = {event.participant for event, _ in batch}
        keys = self.keys.for_writing(people)
        self.remember({p: i for p, i in (identities or {}).items() if p in keys})
        ids = {person: SourceRecord.create_id(self.service, person) for person in keys}
        verdicts: list[Verdict] = []
        in_order: list[Any] = []
        with opened(keys), self.evicting(ids.values()):
            records = self.load(self.record_type, ids.values())
            for domain_event, trace in batch:
                person = domain_event.participant
                if person not in keys:
                    verdicts.append(ERASED)
                    continue
                record = records.get(ids[person])
                if record is None:
                    record = records[ids[person]] = self.record_type(self.service, person)
                verdict, settled = record.offer(domain_event, trace, hold)
                verdicts.append(verdict)
                in_order.extend(record.collect_events())
                for held, refused in settled:
                    if isinstance(refused, Refused):
                        log.warning(
                            "%s refused held event %s (%s) on %s: %s",
                            self.service,
                            held.event_id,
                            held.type,
                            refused.field,
                            refused.reason,
                        )
            # Stored, and so published, in the order received rather than grouped by
            # person: outcomes' live clock relies on each service's stream following
            # recorded_at.
            self.record_batch(in_order, records.values(), tracking=None)
        return verdicts

    def states(self, asked: Sequence[tuple[str, str]]) -> list[Verdict | None]:
        """What became of each (participant, event_id) asked about (`state_of`); None
        for an erased person's."""
        ids = {p: SourceRecord.create_id(self.service, p) for p, _ in asked}
        people = {i: p for p, i in ids.items()}
        records = self.load(self.record_type, ids.values(), keep=False, people=people)
        found = [records.get(ids[participant]) for participant, _ in asked]
        return [
            None if record is None else record.state_of(event_id)
            for record, (_, event_id) in zip(found, asked, strict=True)
        ]

    def remember(self, identities: dict[str, str]) -> None:
        """Pseudonym → national id for the events of a batch; only intake keeps them."""
