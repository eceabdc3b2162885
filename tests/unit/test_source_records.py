"""The source services' records (CONTRACT §1 idempotency, §2 lifecycle checks).

Journey keeps measures, employer placements, intake the participant's coordinator. Each
takes a batch of domain events and answers one verdict per event: "accepted",
"duplicate" (the same event_id again), or a refusal naming the field at fault. The
stores are the eventsourcing library's in-memory (POPO) ones with no aggregate cache, so
every batch loads its records from the stored events.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.employer.application import EmployerApplication
from services.intake.domain import Participant
from services.journey.application import JourneyApplication
from services.journey.domain import MeasureRecord
from services.kernel.events import DomainEvent, parse_edge_event
from services.kernel.ids import pseudonym, synthetic_national_id, synthetic_orgnr
from services.kernel.source import (
    ACCEPTED,
    DUPLICATE,
    Refused,
    SourceApplication,
    SourceRecord,
    Verdict,
)

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


def test_a_measure_that_starts_extends_and_ends_is_accepted_throughout() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(0)),
        measure_extended(ANNE, "m-1", day(20), date(2025, 6, 1)),
        measure_ended(ANNE, "m-1", day(40)),
    )

    assert verdicts == [ACCEPTED, ACCEPTED, ACCEPTED]


def test_a_measure_end_without_its_start_is_refused_on_the_measure_id() -> None:
    app = JourneyApplication()

    (verdict,) = journey_takes(app, ANNE, measure_ended(ANNE, "m-unknown", day(3)))

    assert isinstance(verdict, Refused)
    assert verdict.field == "data.measure_id"


def test_a_measure_extension_without_its_start_is_refused_on_the_measure_id() -> None:
    app = JourneyApplication()

    (verdict,) = journey_takes(
        app, ANNE, measure_extended(ANNE, "m-unknown", day(3), date(2025, 8, 1))
    )

    assert isinstance(verdict, Refused)
    assert verdict.field == "data.measure_id"


def test_the_start_of_another_measure_does_not_count_for_this_one() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app, ANNE, measure_started(ANNE, "m-1", day(0)), measure_ended(ANNE, "m-2", day(5))
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Refused)
    assert verdicts[1].field == "data.measure_id"


def test_another_persons_start_does_not_count_for_this_persons_measure() -> None:
    app = JourneyApplication()
    journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)))

    (verdict,) = journey_takes(app, BJORN, measure_ended(BJORN, "m-1", day(5)))

    assert isinstance(verdict, Refused)
    assert verdict.field == "data.measure_id"


def test_two_people_may_each_have_a_measure_with_the_same_id() -> None:
    app = JourneyApplication()

    assert journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0))) == [ACCEPTED]
    assert journey_takes(app, BJORN, measure_started(BJORN, "m-1", day(0))) == [ACCEPTED]


def test_a_measure_end_before_its_start_is_refused_on_occurred_at() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app, ANNE, measure_started(ANNE, "m-1", day(10)), measure_ended(ANNE, "m-1", day(9))
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Refused)
    assert verdicts[1].field == "occurred_at"


def test_a_measure_extension_before_its_start_is_refused_on_occurred_at() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(10)),
        measure_extended(ANNE, "m-1", day(2), date(2025, 8, 1)),
    )

    assert isinstance(verdicts[1], Refused)
    assert verdicts[1].field == "occurred_at"


def test_a_measure_that_ends_at_the_instant_it_started_is_accepted() -> None:
    # IKKE_AKTUELL ends a measure that never really ran: an end like any other (CONTRACT §3).
    app = JourneyApplication()

    verdicts = journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(4)),
        measure_ended(ANNE, "m-1", day(4), status="IKKE_AKTUELL"),
    )

    assert verdicts == [ACCEPTED, ACCEPTED]


def test_a_second_start_of_the_same_measure_is_refused_on_the_measure_id() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app, ANNE, measure_started(ANNE, "m-1", day(0)), measure_started(ANNE, "m-1", day(2))
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Refused)
    assert verdicts[1].field == "data.measure_id"


def test_a_measure_that_has_ended_cannot_end_again() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(0)),
        measure_ended(ANNE, "m-1", day(30)),
        measure_ended(ANNE, "m-1", day(31), status="AVBRUTT"),
    )

    assert verdicts[:2] == [ACCEPTED, ACCEPTED]
    assert isinstance(verdicts[2], Refused)
    assert verdicts[2].field == "data.measure_id"


def test_measures_from_two_sources_may_share_a_measure_id() -> None:
    # `measure_id` is unique per source (CONTRACT §2), so NAV's m-1 and the municipality's
    # m-1 are two measures: each starts and ends on its own.
    app = JourneyApplication()
    kommune = {"system": "kommune", "org": KOMMUNE_OSLO}

    verdicts = journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(0)),
        measure_started(ANNE, "m-1", day(3), **kommune),
        measure_ended(ANNE, "m-1", day(20)),
        measure_ended(ANNE, "m-1", day(25), **kommune),
    )

    assert verdicts == [ACCEPTED, ACCEPTED, ACCEPTED, ACCEPTED]


# --- employer: placements ----------------------------------------------------------------


def placement_started(person: Person, placement_id: str, at: datetime) -> str:
    data = {"placement_id": placement_id, "employer": person.org, "kind": "TEMPORARY"}
    return person.line("placement.started", {**data, "hours_pct": 60}, at, system="employer")


def placement_ended(person: Person, placement_id: str, at: datetime, reason: str = "QUIT") -> str:
    data = {"placement_id": placement_id, "reason": reason}
    return person.line("placement.ended", data, at, system="employer")


def employer_takes(app: EmployerApplication, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "employer", *lines))


def test_a_placement_that_starts_and_ends_is_accepted() -> None:
    app = EmployerApplication()

    verdicts = employer_takes(
        app, ANNE, placement_started(ANNE, "p-1", day(0)), placement_ended(ANNE, "p-1", day(90))
    )

    assert verdicts == [ACCEPTED, ACCEPTED]


def test_a_placement_end_without_its_start_is_refused_on_the_placement_id() -> None:
    app = EmployerApplication()

    (verdict,) = employer_takes(app, ANNE, placement_ended(ANNE, "p-unknown", day(3)))

    assert isinstance(verdict, Refused)
    assert verdict.field == "data.placement_id"


def test_a_placement_end_before_its_start_is_refused_on_occurred_at() -> None:
    app = EmployerApplication()

    verdicts = employer_takes(
        app, ANNE, placement_started(ANNE, "p-1", day(10)), placement_ended(ANNE, "p-1", day(1))
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Refused)
    assert verdicts[1].field == "occurred_at"


def test_a_second_start_of_the_same_placement_is_refused_on_the_placement_id() -> None:
    app = EmployerApplication()

    verdicts = employer_takes(
        app, ANNE, placement_started(ANNE, "p-1", day(0)), placement_started(ANNE, "p-1", day(1))
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Refused)
    assert verdicts[1].field == "data.placement_id"


def test_a_placement_that_has_ended_cannot_end_again() -> None:
    app = EmployerApplication()

    verdicts = employer_takes(
        app,
        ANNE,
        placement_started(ANNE, "p-1", day(0)),
        placement_ended(ANNE, "p-1", day(50)),
        placement_ended(ANNE, "p-1", day(60), reason="DISMISSED"),
    )

    assert verdicts[:2] == [ACCEPTED, ACCEPTED]
    assert isinstance(verdicts[2], Refused)
    assert verdicts[2].field == "data.placement_id"


# --- intake: the coordinator -------------------------------------------------------------


def assigned(person: Person, coordinator: str, at: datetime) -> str:
    data = {"coordinator_id": coordinator, "org_unit": "nav-grunerlokka"}
    return person.line("coordinator.assigned", data, at)


def unassigned(person: Person, coordinator: str, at: datetime) -> str:
    data = {"coordinator_id": coordinator, "reason": "sick leave"}
    return person.line("coordinator.unassigned", data, at)


def intake_takes(app: IntakeRecords, person: Person, *lines: str) -> list[Verdict]:
    return app.accept_batch(batch(person, "intake", *lines))


def test_the_current_coordinator_can_be_unassigned() -> None:
    app = IntakeRecords()

    verdicts = intake_takes(
        app, ANNE, assigned(ANNE, "c-17", day(0)), unassigned(ANNE, "c-17", day(5))
    )

    assert verdicts == [ACCEPTED, ACCEPTED]


def test_intake_takes_an_unassignment_of_a_coordinator_already_replaced_as_a_fact() -> None:
    # The contract's lifecycle checks cover measures and placements only; who holds the
    # case when is judged in outcomes on both times of every fact (recipients.py).
    app = IntakeRecords()

    verdicts = intake_takes(
        app,
        ANNE,
        assigned(ANNE, "c-17", day(0)),
        assigned(ANNE, "c-18", day(3)),
        unassigned(ANNE, "c-17", day(5)),
    )

    assert verdicts == [ACCEPTED, ACCEPTED, ACCEPTED]


def test_intake_takes_coordinator_changes_reported_out_of_order() -> None:
    # The unassignment reaches intake before the assignment it undoes.
    app = IntakeRecords()

    first = intake_takes(app, ANNE, unassigned(ANNE, "c-17", day(5)))
    then = intake_takes(app, ANNE, assigned(ANNE, "c-17", day(0)))

    assert (first, then) == ([ACCEPTED], [ACCEPTED])


# --- idempotency and batches ---------------------------------------------------------------


def test_the_same_event_twice_in_one_batch_is_taken_once() -> None:
    app = JourneyApplication()
    start = measure_started(ANNE, "m-1", day(0))

    verdicts = journey_takes(app, ANNE, start, start)

    assert verdicts == [ACCEPTED, DUPLICATE]


def test_an_event_sent_again_in_a_later_batch_is_a_duplicate() -> None:
    app = JourneyApplication()
    start = measure_started(ANNE, "m-1", day(0))
    end = measure_ended(ANNE, "m-1", day(30))
    journey_takes(app, ANNE, start, end)

    assert journey_takes(app, ANNE, end, start) == [DUPLICATE, DUPLICATE]


def test_a_redelivered_start_is_a_duplicate_not_a_second_start() -> None:
    app = JourneyApplication()
    start = measure_started(ANNE, "m-1", day(0))
    journey_takes(app, ANNE, start)

    # As a new event this start would be refused; as a redelivery it is no event at all.
    assert journey_takes(app, ANNE, start) == [DUPLICATE]


def test_intake_recognises_an_event_it_already_took() -> None:
    app = IntakeRecords()
    assign = assigned(ANNE, "c-17", day(0))
    unassign = unassigned(ANNE, "c-17", day(4))
    intake_takes(app, ANNE, assign, unassign)

    assert intake_takes(app, ANNE, unassign, assign) == [DUPLICATE, DUPLICATE]


def test_a_refused_event_does_not_stop_the_rest_of_its_batch() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app,
        ANNE,
        measure_ended(ANNE, "m-unknown", day(1)),
        measure_started(ANNE, "m-1", day(2)),
        measure_ended(ANNE, "m-1", day(1)),
        measure_ended(ANNE, "m-1", day(9)),
    )

    assert isinstance(verdicts[0], Refused)
    assert verdicts[1] == ACCEPTED
    assert isinstance(verdicts[2], Refused)
    assert verdicts[3] == ACCEPTED


def test_a_batch_may_mix_participants_and_each_keeps_their_own_record() -> None:
    app = JourneyApplication()

    verdicts = app.accept_batch(
        [
            received(measure_started(ANNE, "m-1", day(0)), ANNE, "journey"),
            received(measure_ended(BJORN, "m-1", day(4)), BJORN, "journey"),
            received(measure_ended(ANNE, "m-1", day(5)), ANNE, "journey"),
        ]
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Refused)
    assert verdicts[2] == ACCEPTED


def test_an_end_refused_for_want_of_its_start_is_taken_when_sent_again_after_the_start() -> None:
    app = JourneyApplication()
    end = measure_ended(ANNE, "m-1", day(30))
    journey_takes(app, ANNE, end)

    assert journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)), end) == [
        ACCEPTED,
        ACCEPTED,
    ]


# --- state kept in the store -----------------------------------------------------------------


def test_a_measure_started_in_one_batch_can_end_in_a_later_one_and_only_once() -> None:
    app = JourneyApplication()
    assert journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0))) == [ACCEPTED]

    assert journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(30))) == [ACCEPTED]
    (again,) = journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(31)))
    (restart,) = journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(32)))

    assert isinstance(again, Refused)
    assert isinstance(restart, Refused)


def test_a_start_from_an_earlier_batch_still_bounds_its_end() -> None:
    app = EmployerApplication()
    employer_takes(app, ANNE, placement_started(ANNE, "p-1", day(10)))

    (verdict,) = employer_takes(app, ANNE, placement_ended(ANNE, "p-1", day(9)))

    assert isinstance(verdict, Refused)
    assert verdict.field == "occurred_at"


def test_a_record_reloaded_from_the_store_holds_every_accepted_event() -> None:
    app = JourneyApplication()
    journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(0)),
        measure_ended(ANNE, "m-2", day(1)),
        measure_ended(ANNE, "m-1", day(9)),
    )

    record: object = app.repository.get(SourceRecord.create_id("journey", ANNE.participant))

    assert isinstance(record, MeasureRecord)
    assert record.participant == ANNE.participant
    assert set(record.measures) == {("nav", "m-1")}
    assert record.measures["nav", "m-1"].started_at == day(0)
    assert record.measures["nav", "m-1"].ended is True


def test_a_batch_that_fails_to_save_is_taken_whole_when_sent_again() -> None:
    # As the services run: an aggregate cache that hands out its own records, no copy.
    cache = {"AGGREGATE_CACHE_MAXSIZE": "100", "AGGREGATE_CACHE_FASTFORWARD": "n"}
    app = JourneyApplication(env={**cache, "DEEPCOPY_FROM_AGGREGATE_CACHE": "n"})
    journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)))
    end = measure_ended(ANNE, "m-1", day(9))
    working = app.recorder.insert_events

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise OSError("the database went away")

    app.recorder.insert_events = fails  # type: ignore[method-assign]
    with pytest.raises(OSError, match="went away"):
        journey_takes(app, ANNE, end)
    app.recorder.insert_events = working  # type: ignore[method-assign]

    assert journey_takes(app, ANNE, end) == [ACCEPTED]
    record_id = SourceRecord.create_id("journey", ANNE.participant)
    assert len(app.recorder.select_events(record_id)) == 3  # created, started, ended
