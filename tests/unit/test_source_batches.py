"""The source services' records (CONTRACT §1 idempotency): the same event_id again is a
"duplicate", a batch is taken event by event so a refused event does not stop the rest,
and a record reloaded from the store still knows everything it accepted.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.employer.application import EmployerApplication
from services.journey.application import JourneyApplication
from services.journey.domain import MeasureRecord
from services.kernel.keys import opened
from services.kernel.source import ACCEPTED, DUPLICATE, Refused, SourceRecord, Waiting
from tests.unit.source_events import (
    ANNE,
    BJORN,
    HOLD,
    IntakeRecords,
    assigned,
    day,
    employer_takes,
    intake_takes,
    journey_takes,
    measure_ended,
    measure_started,
    placement_ended,
    placement_started,
    received,
    unassigned,
)

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

    assert isinstance(verdicts[0], Waiting)
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
        ],
        HOLD,
    )

    assert verdicts[0] == ACCEPTED
    assert isinstance(verdicts[1], Waiting)
    assert verdicts[2] == ACCEPTED


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

    with opened(app.keys.for_reading([ANNE.participant])):
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
