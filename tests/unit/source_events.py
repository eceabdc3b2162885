"""Synthetic people and the edge events the source services' records are offered, for
the tests of those records: each event as the service would receive it (read as an edge
event, the person replaced by their pseudonym), and each service's record taking a batch
of them. The stores are the eventsourcing library's in-memory (POPO) ones with no
aggregate cache, so every batch loads its records from the stored events.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.employer.application import EmployerApplication
from services.intake.domain import Participant
from services.journey.application import JourneyApplication
from services.kernel.events import DomainEvent, parse_edge_event
from services.kernel.ids import pseudonym, synthetic_national_id, synthetic_orgnr
from services.kernel.source import SourceApplication, Verdict

KEY = "unit-test-pseudonym-key"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RECEIVED = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
KOMMUNE_OSLO = "0301"


class IntakeRecords(SourceApplication):
    """Intake's records without its identity vault (the vault needs PostgreSQL)."""

    service = "intake"
    record_type = Participant


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@dataclass(frozen=True)
class Person:
    """A synthetic participant, and the organisation that reports about them."""

    national_id: str
    org: str

    @classmethod
    def make(cls, seed: int) -> Person:
        rng = random.Random(seed)
        return cls(synthetic_national_id(rng, date(1991, 6, 12)), synthetic_orgnr(rng))

    @property
    def participant(self) -> str:
        return pseudonym(self.national_id, KEY)

    def line(
        self,
        event_type: str,
        data: dict[str, Any],
        occurred_at: datetime,
        *,
        system: str = "nav",
        org: str | None = None,
    ) -> str:
        """The edge event as a source system sends it: one JSON line."""
        return json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "type": event_type,
                "occurred_at": occurred_at.isoformat(),
                "recorded_at": occurred_at.isoformat(),
                "source": {"system": system, "org": org or self.org},
                "person": self.national_id,
                "data": data,
            }
        )


def received(line: str, person: Person, service: str) -> tuple[DomainEvent, dict[str, str]]:
    """The line as the service takes it in: parsed at the edge, person swapped for pseudonym."""
    domain_event = parse_edge_event(line).to_domain(person.participant, service, RECEIVED)
    return domain_event, {}


def batch(person: Person, service: str, *lines: str) -> list[tuple[DomainEvent, dict[str, str]]]:
    return [received(line, person, service) for line in lines]


ANNE = Person.make(1)
BJORN = Person.make(2)


# --- journey: measures -------------------------------------------------------------------


def measure_started(person: Person, measure_id: str, at: datetime, **source: str) -> str:
    data = {"measure_id": measure_id, "measure_code": "ARBEIDSTRENING", "provider": person.org}
    return person.line("measure.started", data, at, **source)


def measure_extended(person: Person, measure_id: str, at: datetime, planned_end: date) -> str:
    data = {"measure_id": measure_id, "planned_end": planned_end.isoformat()}
    return person.line("measure.extended", data, at)


def measure_ended(
    person: Person, measure_id: str, at: datetime, status: str = "FULLFORT", **source: str
) -> str:
    data = {"measure_id": measure_id, "status": status, "reason": "FERDIG"}
    return person.line("measure.ended", data, at, **source)


def journey_takes(app: JourneyApplication, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "journey", *lines))


def placement_started(person: Person, placement_id: str, at: datetime) -> str:
    data = {"placement_id": placement_id, "employer": person.org, "kind": "TEMPORARY"}
    return person.line("placement.started", {**data, "hours_pct": 60}, at, system="employer")


def placement_ended(person: Person, placement_id: str, at: datetime, reason: str = "QUIT") -> str:
    data = {"placement_id": placement_id, "reason": reason}
    return person.line("placement.ended", data, at, system="employer")


def employer_takes(app: EmployerApplication, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "employer", *lines))


def assigned(person: Person, coordinator: str, at: datetime) -> str:
    data = {"coordinator_id": coordinator, "org_unit": "nav-grunerlokka"}
    return person.line("coordinator.assigned", data, at)


def unassigned(person: Person, coordinator: str, at: datetime) -> str:
    data = {"coordinator_id": coordinator, "reason": "sick leave"}
    return person.line("coordinator.unassigned", data, at)


def intake_takes(app: IntakeRecords, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "intake", *lines))
