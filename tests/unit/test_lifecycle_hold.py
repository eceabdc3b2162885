"""An end or extension whose start is not known yet is held until the start comes
(CONTRACT §2, "held for a while and rejected if their start never arrives").

It is stored, never published, and taken right after its start if the start was recorded
at most the hold (`LOS_RULES__LIFECYCLE_HOLD`, P7D) after it; otherwise, or if it no
longer fits its start, it is refused then. The in-memory stores here keep no aggregate
cache, so every batch reads its records back from what was stored.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from services.employer.application import EmployerApplication
from services.journey.application import JourneyApplication
from services.journey.domain import MeasureRecord
from services.kernel.keys import opened
from services.kernel.source import ACCEPTED, Refused, SourceApplication, SourceRecord, Waiting
from tests.unit.source_events import (
    ANNE,
    BJORN,
    HOLD,
    day,
    employer_takes,
    journey_takes,
    measure_ended,
    measure_extended,
    measure_started,
    placement_ended,
    placement_started,
    received,
)


def stored(app: SourceApplication, service: str) -> list[tuple[str, Any]]:
    """Anne's record as stored: each event's class, and the type of what it carries."""
    record_id = SourceRecord.create_id(service, ANNE.participant)
    found = []
    for stored_event in app.recorder.select_events(record_id):
        event = app.mapper.to_domain_event(stored_event)
        found.append((type(event).__name__, getattr(event, "type", None)))
    return found


def journey_record(app: JourneyApplication) -> MeasureRecord:
    with opened(app.keys.for_reading([ANNE.participant])):
        record: object = app.repository.get(SourceRecord.create_id("journey", ANNE.participant))
    assert isinstance(record, MeasureRecord)
    return record


def accepted_types(app: SourceApplication, service: str) -> list[str]:
    """The types of the events the outbox would publish, in the order stored."""
    return [body for kind, body in stored(app, service) if kind == "Accepted"]


def test_an_end_is_held_and_taken_right_after_its_start_comes_in_a_later_batch() -> None:
    app = JourneyApplication()
    (held,) = journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(30)))

    verdicts = journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)))

    assert isinstance(held, Waiting)
    assert (held.field, held.reason) == (
        "data.measure_id",
        "held until the start of measure m-1 comes",
    )
    assert verdicts == [ACCEPTED]
    assert accepted_types(app, "journey") == ["measure.started", "measure.ended"]
    assert [kind for kind, _ in stored(app, "journey")] == [
        "Created",
        "Held",
        "Accepted",
        "Accepted",
    ]


def test_an_end_before_its_start_in_one_batch_is_stored_after_it() -> None:
    app = JourneyApplication()

    verdicts = journey_takes(
        app, ANNE, measure_ended(ANNE, "m-1", day(30)), measure_started(ANNE, "m-1", day(0))
    )

    assert isinstance(verdicts[0], Waiting)
    assert verdicts[1] == ACCEPTED
    assert accepted_types(app, "journey") == ["measure.started", "measure.ended"]


def test_an_end_whose_start_was_recorded_more_than_the_hold_after_it_is_refused() -> None:
    app = JourneyApplication()
    journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(30)))
    late_start = ANNE.measure_started("m-1", day(0), recorded_at=day(37.01))

    assert journey_takes(app, ANNE, late_start) == [ACCEPTED]
    assert accepted_types(app, "journey") == ["measure.started"]
    assert [kind for kind, _ in stored(app, "journey")][-1] == "Dropped"
    # Refused once, it is no longer held: the record's next event finds nothing waiting.
    assert journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(40))) == [ACCEPTED]


def test_a_start_recorded_within_the_hold_or_before_the_end_lets_the_end_go() -> None:
    app = JourneyApplication()
    journey_takes(
        app, ANNE, measure_ended(ANNE, "m-1", day(30)), measure_ended(ANNE, "m-2", day(30))
    )

    verdicts = journey_takes(
        app,
        ANNE,
        ANNE.measure_started("m-1", day(0), recorded_at=day(37)),
        ANNE.measure_started("m-2", day(0), recorded_at=day(1)),
    )

    assert verdicts == [ACCEPTED, ACCEPTED]
    assert accepted_types(app, "journey") == [
        "measure.started",
        "measure.ended",
        "measure.started",
        "measure.ended",
    ]


def test_a_held_end_that_turns_out_to_come_before_its_start_is_refused_on_occurred_at() -> None:
    app = JourneyApplication()
    journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(3)))

    assert journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(5))) == [ACCEPTED]
    assert accepted_types(app, "journey") == ["measure.started"]
    record = journey_record(app)
    assert record.held == {}
    assert record.measures["nav", "m-1"].ended is False


def test_held_events_of_one_measure_are_taken_in_the_order_they_came() -> None:
    app = JourneyApplication()
    journey_takes(
        app,
        ANNE,
        measure_extended(ANNE, "m-1", day(20), date(2025, 6, 1)),
        measure_ended(ANNE, "m-1", day(30)),
        measure_ended(ANNE, "m-1", day(31)),
    )

    journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)))

    assert accepted_types(app, "journey") == [
        "measure.started",
        "measure.extended",
        "measure.ended",
    ]
    assert [kind for kind, _ in stored(app, "journey")][-1] == "Dropped"  # the second end


def test_an_event_sent_again_while_it_is_held_is_held_once() -> None:
    app = JourneyApplication()
    end = measure_ended(ANNE, "m-1", day(30))
    journey_takes(app, ANNE, end)

    (again,) = journey_takes(app, ANNE, end)
    journey_takes(app, ANNE, measure_started(ANNE, "m-1", day(0)))

    assert isinstance(again, Waiting)
    assert [kind for kind, _ in stored(app, "journey")].count("Held") == 1
    assert accepted_types(app, "journey") == ["measure.started", "measure.ended"]


def test_only_the_start_of_the_same_measure_from_the_same_system_lets_it_go() -> None:
    app = JourneyApplication()
    journey_takes(app, ANNE, measure_ended(ANNE, "m-1", day(30), system="kommune"))

    journey_takes(
        app, ANNE, measure_started(ANNE, "m-1", day(0)), measure_started(ANNE, "m-2", day(0))
    )

    assert accepted_types(app, "journey") == ["measure.started", "measure.started"]
    record = journey_record(app)
    assert list(record.held) != []


def test_a_placement_end_is_held_until_its_start_comes() -> None:
    app = EmployerApplication()
    (held,) = employer_takes(app, ANNE, placement_ended(ANNE, "p-1", day(30)))

    assert employer_takes(app, ANNE, placement_started(ANNE, "p-1", day(0))) == [ACCEPTED]
    assert isinstance(held, Waiting)
    assert held.field == "data.placement_id"
    assert accepted_types(app, "employer") == ["placement.started", "placement.ended"]


def test_what_became_of_an_event_held_can_be_asked_afterwards() -> None:
    app = JourneyApplication()
    ends = [measure_ended(ANNE, "m-1", day(30)), measure_ended(ANNE, "m-2", day(30))]
    journey_takes(app, ANNE, *ends)
    first, second = (json.loads(end)["event_id"] for end in ends)
    never_sent = "7d3c1bd4-3c5e-4e0b-9a43-5b0f4a6e1d2f"
    asked = [(ANNE.participant, first), (ANNE.participant, second), (ANNE.participant, never_sent)]

    while_held = app.states([*asked, (BJORN.participant, first)])
    journey_takes(
        app,
        ANNE,
        measure_started(ANNE, "m-1", day(0)),
        ANNE.measure_started("m-2", day(0), recorded_at=day(37.01)),
    )
    decided = app.states(asked)  # read back from the stored events, Dropped included

    assert [type(state) for state in while_held] == [Waiting, Waiting, type(None), type(None)]
    assert decided == [
        ACCEPTED,
        Refused("data.measure_id", "its start was recorded more than P7D after it"),
        None,
    ]


def test_asking_what_became_of_events_does_not_fill_the_cache_the_writes_use() -> None:
    cached = {"AGGREGATE_CACHE_MAXSIZE": "10", "AGGREGATE_CACHE_FASTFORWARD": "n"}
    app = JourneyApplication(env=cached)  # cached as the services are (`application_env`)
    end = measure_ended(ANNE, "m-1", day(30))
    journey_takes(app, ANNE, end)
    record_id = SourceRecord.create_id("journey", ANNE.participant)
    cache = app.repository.cache
    assert cache is not None
    cache.get(record_id, evict=True)  # as when others pushed it out

    (state,) = app.states([(ANNE.participant, json.loads(end)["event_id"])])

    assert isinstance(state, Waiting)
    with pytest.raises(KeyError):
        cache.get(record_id)


def test_a_replay_record_decides_each_held_event_as_a_stored_one_does() -> None:
    lines = [
        measure_ended(ANNE, "m-1", day(30)),
        measure_ended(ANNE, "m-2", day(3)),
        measure_ended(ANNE, "m-3", day(30)),
        measure_started(ANNE, "m-2", day(5)),
        measure_started(ANNE, "m-1", day(0)),
        ANNE.measure_started("m-3", day(0), recorded_at=day(38)),
    ]
    app = JourneyApplication()
    stored_verdicts = [journey_takes(app, ANNE, line)[0] for line in lines]

    record = JourneyApplication.record_type.for_replay("journey", ANNE.participant)
    replayed = [record.offer(*received(line, ANNE, "journey"), HOLD) for line in lines]

    assert [verdict for verdict, _ in replayed] == stored_verdicts
    taken = [[verdict == ACCEPTED for _, verdict in settled] for _, settled in replayed]
    assert taken == [[], [], [], [False], [True], [False]]
    refused = [v for _, settled in replayed for _, v in settled if isinstance(v, Refused)]
    assert [refusal.field for refusal in refused] == ["occurred_at", "data.measure_id"]
    assert record.held == {}
    assert record.measures == journey_record(app).measures
