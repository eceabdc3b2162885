"""Synthetic people and the edge events the source services' records are offered, for
the tests of those records: each event as the service would receive it (read as an edge
event, the person replaced by their pseudonym), and each service's record taking a batch
of them. The stores are the eventsourcing library's in-memory (POPO) ones with no
aggregate cache, so every batch loads its records from the stored events.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.employer.application import EmployerApplication
from services.intake.domain import Participant
from services.journey.application import JourneyApplication
from services.kernel.events import DomainEvent, parse_edge_event
from services.kernel.ids import pseudonym
from services.kernel.settings import RuleSettings
from services.kernel.source import SourceApplication, Verdict
from tests import support

KEY = "unit-test-pseudonym-key"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RECEIVED = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
KOMMUNE_OSLO = "0301"
HOLD = RuleSettings().lifecycle_hold


class IntakeRecords(SourceApplication):
    """Intake's records without its identity vault (the vault needs PostgreSQL)."""

    service = "intake"
    record_type = Participant


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Person(support.Person):
    """A synthetic participant (`tests.support.Person`), with the pseudonym the services
    give them under the test key."""

    @property
    def participant(self) -> str:
        return pseudonym(self.national_id, KEY)


def received(line: str, person: Person, service: str) -> tuple[DomainEvent, dict[str, str]]:
    """The line as the service takes it in: parsed at the edge, person swapped for pseudonym."""
    domain_event = parse_edge_event(line).to_domain(person.participant, service, RECEIVED)
    return domain_event, {}


def batch(person: Person, service: str, *lines: str) -> list[tuple[DomainEvent, dict[str, str]]]:
    return [received(line, person, service) for line in lines]


ANNE = Person.make(1)
BJORN = Person.make(2)


# --- journey: measures -------------------------------------------------------------------


def measure_started(
    person: Person, measure_id: str, at: datetime, system: str = "nav", org: str | None = None
) -> str:
    data = {"measure_id": measure_id, "measure_code": "ARBEIDSTRENING", "provider": person.org}
    return person.event("measure.started", data, at, system=system, org=org)


def measure_extended(person: Person, measure_id: str, at: datetime, planned_end: date) -> str:
    data = {"measure_id": measure_id, "planned_end": planned_end.isoformat()}
    return person.event("measure.extended", data, at)


def measure_ended(
    person: Person,
    measure_id: str,
    at: datetime,
    status: str = "FULLFORT",
    system: str = "nav",
    org: str | None = None,
) -> str:
    data = {"measure_id": measure_id, "status": status, "reason": "FERDIG"}
    return person.event("measure.ended", data, at, system=system, org=org)


def journey_takes(app: JourneyApplication, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "journey", *lines), HOLD)


def placement_started(person: Person, placement_id: str, at: datetime) -> str:
    data = {"placement_id": placement_id, "employer": person.org, "kind": "TEMPORARY"}
    return person.event("placement.started", {**data, "hours_pct": 60}, at, system="employer")


def placement_ended(person: Person, placement_id: str, at: datetime, reason: str = "QUIT") -> str:
    data = {"placement_id": placement_id, "reason": reason}
    return person.event("placement.ended", data, at, system="employer")


def employer_takes(app: EmployerApplication, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "employer", *lines), HOLD)


def assigned(person: Person, coordinator: str, at: datetime) -> str:
    data = {"coordinator_id": coordinator, "org_unit": "nav-grunerlokka"}
    return person.event("coordinator.assigned", data, at)


def unassigned(person: Person, coordinator: str, at: datetime) -> str:
    data = {"coordinator_id": coordinator, "reason": "sick leave"}
    return person.event("coordinator.unassigned", data, at)


def intake_takes(app: IntakeRecords, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "intake", *lines), HOLD)
