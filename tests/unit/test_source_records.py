"""The source services' records (CONTRACT §2 lifecycle checks).

Journey keeps measures, employer placements, intake the participant's coordinator. Each
takes a batch of domain events and answers one verdict per event: "accepted", held until
the start it needs comes, or a refusal naming the field at fault. (What becomes of a held
event: `test_lifecycle_hold.py`.) (Duplicates, batches and what the store keeps:
`test_source_batches.py`.)
"""

from __future__ import annotations

from datetime import date

from services.employer.application import EmployerApplication
from services.journey.application import JourneyApplication
from services.kernel.source import ACCEPTED, Refused, Waiting
from tests.unit.source_events import (
    ANNE,
    BJORN,
    KOMMUNE_OSLO,
    IntakeRecords,
    assigned,
    day,
    employer_takes,
    intake_takes,
    journey_takes,
    measure_ended,
    measure_extended,
    measure_started,
    placement_ended,
    placement_started,
    unassigned,
)

# --- journey: measures -------------------------------------------------------------------


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


def test_a_measure_end_without_its_start_is_held_on_the_measure_id() -> None:
    app = JourneyApplication()

    (verdict,) = journey_takes(app, ANNE, measure_ended(ANNE, "m-unknown", day(3)))

    assert isinstance(verdict, Waiting)
    assert verdict.field == "data.measure_id"


def test_a_measure_extension_without_its_start_is_held_on_the_measure_id() -> None:
    app = JourneyApplication()

    (verdict,) = journey_takes(
        app, ANNE, measure_extended(ANNE, "m-unknown", day(3), date(2025, 8, 1))
    )

    assert isinstance(verdict, Waiting)
    assert verdict.field == "data.measure_id"


def test_the_start_of_another_measure_does_not_count_for_this_one() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app, ANNE, measure_started(ANNE, "m-1", day(0)), measure_ended(ANNE, "m-2", day(5))
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Waiting)
    assert verdicts[1].field == "data.measure_id"


def test_another_persons_start_does_not_count_for_this_persons_measure() -> None:
    app = JourneyApplication()
    journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)))

    (verdict,) = journey_takes(app, BJORN, measure_ended(BJORN, "m-1", day(5)))

    assert isinstance(verdict, Waiting)
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


def test_a_placement_that_starts_and_ends_is_accepted() -> None:
    app = EmployerApplication()

    verdicts = employer_takes(
        app, ANNE, placement_started(ANNE, "p-1", day(0)), placement_ended(ANNE, "p-1", day(90))
    )

    assert verdicts == [ACCEPTED, ACCEPTED]


def test_a_placement_end_without_its_start_is_held_on_the_placement_id() -> None:
    app = EmployerApplication()

    (verdict,) = employer_takes(app, ANNE, placement_ended(ANNE, "p-unknown", day(3)))

    assert isinstance(verdict, Waiting)
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
