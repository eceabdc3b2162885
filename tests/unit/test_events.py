"""The event contract: what a source may send, and what is rejected and why."""

import json
import pickle
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kernel import vocabulary
from services.kernel.events import (
    DATA_MODELS,
    EMITTED_BY,
    EdgeEvent,
    EventType,
    InvalidEvent,
    MeasureEnded,
    MeasureStarted,
    PlacementStarted,
    SixMonthChecked,
    parse_edge_event,
)
from services.kernel.ids import (
    Pseudonyms,
    pseudonym,
    synthetic_national_id,
    validate_national_id,
)
from tests.unit.edge_examples import (
    DATA_EXAMPLES,
    EVENT_ID,
    NAV_OSLO,
    PERSON,
    edge,
    rejection,
    without,
)

HAND_COMPUTED_PERSON = "15833972429"  # see test_ids: born 15.03.2039, Tenor +80


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_parses_from_json(event_type):
    event = parse_edge_event(json.dumps(edge(event_type)))
    assert event.type is event_type
    assert isinstance(event.data, DATA_MODELS[event_type])
    assert event.data.model_dump(mode="json", exclude_none=True) == DATA_EXAMPLES[event_type]


def test_the_contracts_example_reads_as_written():
    event = parse_edge_event(json.dumps(edge()).encode())
    assert str(event.event_id) == EVENT_ID
    assert event.occurred_at == datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=1)
    assert event.source.org == NAV_OSLO
    assert event.person == PERSON
    assert event.data == MeasureEnded(measure_id="m-123", status="HAR_SLUTTET", reason="IKKE_MOTT")


def test_mapping_input_and_typed_fields():
    event = parse_edge_event(edge("measure.started"))
    assert isinstance(event.data, MeasureStarted)
    assert event.data.planned_end == date(2025, 9, 30)
    placement = parse_edge_event(edge("placement.started")).data
    assert isinstance(placement, PlacementStarted)
    assert placement.hours_pct == 60
    check = parse_edge_event(edge("followup.six_month_checked")).data
    assert isinstance(check, SixMonthChecked)
    assert check.evidence.obtained_at == date(2025, 10, 2)


@pytest.mark.parametrize(
    "person", [HAND_COMPUTED_PERSON, "55033972457", "15433972446", "15033972463"]
)
def test_every_kind_of_national_id_is_taken(person):
    assert parse_edge_event(edge(person=person)).person == person


def test_optional_fields_may_be_left_out():
    event = edge("measure.started", data={**DATA_EXAMPLES["measure.started"]})
    del event["recorded_at"]
    del event["data"]["planned_end"]
    parsed = parse_edge_event(event)
    assert parsed.recorded_at is None
    assert isinstance(parsed.data, MeasureStarted)
    assert parsed.data.planned_end is None
    ended = parse_edge_event(edge(data={"measure_id": "m-1", "status": "FULLFORT"})).data
    assert isinstance(ended, MeasureEnded)
    assert ended.reason is None


def test_measure_codes_are_an_open_list():
    data = {**DATA_EXAMPLES["measure.started"], "measure_code": "NY_TILTAKSKODE_2026"}
    parsed = parse_edge_event(edge("measure.started", data=data)).data
    assert isinstance(parsed, MeasureStarted)
    assert parsed.measure_code == "NY_TILTAKSKODE_2026"


def test_a_kommunenummer_may_be_the_source_org():
    event = parse_edge_event(edge(source={"system": "kommune", "org": "0301"}))
    assert event.source.org == "0301"


def test_hours_pct_may_be_a_fraction():
    data = {**DATA_EXAMPLES["placement.started"], "hours_pct": 37.5}
    parsed = parse_edge_event(edge("placement.started", data=data)).data
    assert isinstance(parsed, PlacementStarted)
    assert parsed.hours_pct == 37.5


def _placement(**changes: Any) -> dict[str, Any]:
    return edge("placement.started", data={**DATA_EXAMPLES["placement.started"], **changes})


def _started(**changes: Any) -> dict[str, Any]:
    return edge("measure.started", data={**DATA_EXAMPLES["measure.started"], **changes})


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (edge(person="15033972465"), "person", "check digit k2 invalid"),
        (edge(person="15033972453"), "person", "check digit k1 invalid"),
        (edge(person="15133972463"), "person", "the month of its birth date is not a valid month"),
        (edge(person="1503397246"), "person", "11 digits expected"),
        (edge(person=15033972463), "person", "must be a string"),
        (_placement(hours_pct=0), "data.hours_pct", "must be at least 1"),
        (_placement(hours_pct=101), "data.hours_pct", "must be at most 100"),
        (_placement(hours_pct="mye"), "data.hours_pct", "must be a number"),
        (json.dumps(_placement(hours_pct=float("nan"))), "data.hours_pct", "must be a finite"),
        (_placement(employer="974760674"), "data.employer", "check digit invalid"),
        (_placement(kind="FAST"), "data.kind", "must be one of"),
        (edge(occurred_at="2025-03-14T09:00:00"), "occurred_at", "timestamp needs a UTC offset"),
        (edge(recorded_at="2025-03-15T16:20:00"), "recorded_at", "timestamp needs a UTC offset"),
        (edge(occurred_at=1741939200), "occurred_at", "RFC 3339 timestamp expected"),
        (edge(occurred_at="1741939200"), "occurred_at", "RFC 3339 timestamp expected"),
        (edge(occurred_at="2025-03-14"), "occurred_at", "RFC 3339 timestamp expected"),
        (edge(occurred_at="2025-02-30T09:00:00Z"), "occurred_at", "not a valid RFC 3339 timestamp"),
        (edge(type="measure.cancelled"), "type", "must be one of 'participant.referred'"),
        (without(edge(), "type"), "type", "is required"),
        (without(edge(), "data", "measure_id"), "data.measure_id", "is required"),
        (without(edge(), "data"), "data", "is required"),
        (edge(data=["m-123"]), "data", "must be an object"),
        (
            edge(data={"measure_id": "", "status": "AVBRUTT"}),
            "data.measure_id",
            "must not be empty",
        ),
        (edge(data={"measure_id": "m-1", "status": "DONE"}), "data.status", "must be one of"),
        (_started(measure_code="arbeidstrening"), "data.measure_code", "must match"),
        (_started(planned_end="30.09.2025"), "data.planned_end", "date expected as YYYY-MM-DD"),
        (_started(planned_end="2025-09-31"), "data.planned_end", "not a valid date"),
        (_started(provider="0301"), "data.provider", "9 digits expected"),
        (
            edge(
                "followup.six_month_checked",
                data={"placement_id": "p-9", "status": "EMPLOYED_SAME", "evidence": {}},
            ),
            "data.evidence.source",
            "is required",
        ),
        (edge(event_id="nope"), "event_id", "must be a UUID"),
        (edge(source={"system": "nav", "org": "03"}), "source.org", "4-digit kommunenummer"),
        (edge(source={"system": "skatt", "org": NAV_OSLO}), "source.system", "must be one of"),
        (
            edge(
                "participant.triaged",
                data={**DATA_EXAMPLES["participant.triaged"], "needs_coordinator": "kanskje"},
            ),
            "data.needs_coordinator",
            "must be true or false",
        ),
    ],
)
def test_a_rejection_names_the_field_and_why(raw, field, reason):
    error = rejection(raw)
    assert error.field == field
    assert reason in error.reason
    assert f": {field}: " in str(error)


def test_an_unknown_type_is_the_error_not_its_data():
    assert rejection(edge(type="measure.cancelled", data={})).field == "type"


def test_unreadable_input_is_rejected_as_a_whole():
    not_json = rejection('{"event_id": ')
    assert not_json.field == ""
    assert not_json.reason.startswith("not valid JSON: ")
    assert not_json.event_id is None
    assert rejection(b"\xff").reason.startswith("not valid JSON: ")
    for not_an_object in ("[]", "42", '"measure.ended"', "null"):
        assert rejection(not_an_object).reason == "an event must be a JSON object"


def test_the_message_names_the_event_the_field_and_the_reason():
    error = rejection(_placement(hours_pct=101))
    assert error.event_id == EVENT_ID
    assert str(error) == f"event {EVENT_ID}: data.hours_pct: must be at most 100"
    unknown = rejection(edge(event_id="not-a-uuid", person="15033972465"))
    assert unknown.event_id is None
    assert str(unknown) == "event without a valid event_id: event_id: must be a UUID"


def test_an_invalid_event_survives_pickling():
    error = rejection(_placement(hours_pct=101))
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copy.event_id, copy.field, copy.reason) == (error.event_id, error.field, error.reason)


# Every place a national id could be put by mistake, and kinds of wrongness around it.
misplaced_id = st.sampled_from(
    [
        lambda n: edge(person=n[:-1] + str((int(n[-1]) + 1) % 10)),
        lambda n: edge(person=n + "0"),
        lambda n: edge(person=n[:2] + "13" + n[4:]),
        lambda n: edge(event_id=n),
        lambda n: edge(type=n),
        lambda n: edge(occurred_at=n),
        lambda n: edge(occurred_at=n + "T09:00:00"),
        lambda n: edge(source={"system": n, "org": NAV_OSLO}),
        lambda n: edge(source={"system": "nav", "org": n}),
        lambda n: edge(data={"measure_id": "m-1", "status": n}),
        lambda n: edge(data={"measure_id": "m-1", "status": "FULLFORT", "reason": n}),
        lambda n: _placement(hours_pct=n),
        lambda n: _placement(hours_pct=int(n)),
        lambda n: _placement(employer=n),
        lambda n: _started(measure_code=n.lower() + "x"),
        lambda n: _started(planned_end=n),
        lambda n: without(edge(person=n), "data", "measure_id"),
    ]
)


@given(st.dates(date(1930, 1, 1), date(2030, 12, 31)), st.integers(0, 2**16), misplaced_id)
def test_a_national_id_never_appears_in_a_rejection(birth, seed, make_event):
    number = synthetic_national_id(random.Random(seed), birth)
    error = rejection(json.dumps(make_event(number)))
    assert number not in str(error)
    assert number not in repr(error)
    assert number[:-1] not in str(error)  # nor the id with its last digit changed


def test_unknown_envelope_fields_are_dropped():
    event = parse_edge_event(edge(comment="Ola Nordmann, født 1985"))
    assert "comment" not in event.model_dump()


def test_each_type_has_one_data_model_and_its_emitting_services():
    assert set(DATA_MODELS) == set(EventType) == set(EMITTED_BY)
    assert EMITTED_BY[EventType.PARTICIPANT_DROPPED_OUT] == {"journey", "intake"}
    assert EMITTED_BY[EventType.MEASURE_ENDED] == {"journey"}
    assert EMITTED_BY[EventType.PLACEMENT_STARTED] == {"employer"}
    assert EMITTED_BY[EventType.JOURNEY_CLOSED] == {"intake"}
    by_service = {
        service: {t for t, services in EMITTED_BY.items() if service in services}
        for service in ("intake", "journey", "employer")
    }
    assert len(by_service["intake"]) == 6
    assert len(by_service["journey"]) == 4
    assert len(by_service["employer"]) == 3


def test_a_line_nested_too_deep_for_the_json_reader_is_rejected_not_raised():
    with pytest.raises(InvalidEvent, match="nested too deeply"):
        parse_edge_event("[" * 100_000)


def test_a_reader_of_many_events_checks_each_national_id_once(checked):
    known: set[str] = set()
    first = parse_edge_event(json.dumps(edge()), known)
    assert known == {PERSON}
    assert parse_edge_event(json.dumps(edge()).encode(), known) == first
    assert checked == [PERSON]
    wrong = PERSON[:-1] + str((int(PERSON[-1]) + 1) % 10)
    assert str(rejection(edge(person=wrong))).endswith("person: check digit k2 invalid")
    with pytest.raises(InvalidEvent, match="person: check digit k2 invalid"):
        parse_edge_event(json.dumps(edge(person=wrong)), known)
    assert known == {PERSON}


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The national ids checked, in the order they were checked."""
    ids: list[str] = []

    def check(value: str) -> str:
        ids.append(value)
        return validate_national_id(value)

    monkeypatch.setattr(vocabulary, "validate_national_id", check)
    return ids


def test_a_source_service_checks_a_persons_id_on_their_first_event_only(checked):
    other = synthetic_national_id(random.Random(3), date(1990, 5, 17))
    pseudonyms = Pseudonyms("nøkkel", size=100)
    for person in (PERSON, PERSON, other, PERSON, other):
        edge_event = parse_edge_event(json.dumps(edge(person=person)), pseudonyms)
        assert pseudonyms.of(edge_event.person) == pseudonym(person, "nøkkel")
    assert checked == [PERSON, other]


def test_an_invalid_id_is_refused_every_time(checked):
    wrong = PERSON[:-1] + str((int(PERSON[-1]) + 1) % 10)
    pseudonyms = Pseudonyms("nøkkel", size=100)
    reads = []
    for _ in range(2):
        with pytest.raises(InvalidEvent, match="person: check digit k2 invalid"):
            parse_edge_event(json.dumps(edge(person=wrong)), pseudonyms)
        reads.append(checked.copy())
        checked.clear()
    assert reads[0] == reads[1] != []


def test_the_ids_found_valid_are_forgotten_all_at_once_when_full(checked):
    rng = random.Random(5)
    people = [synthetic_national_id(rng, date(1980 + n, 1, 1)) for n in range(3)]
    pseudonyms = Pseudonyms("nøkkel", size=2)
    for person in [*people[:2], *people, *people[:2]]:
        parse_edge_event(json.dumps(edge(person=person)), pseudonyms)
    assert checked == [*people, *people[:2]]


def test_a_line_with_a_byte_order_mark_is_read_as_pythons_json_reads_it():
    # pydantic's own reader refuses it; `json` reads it, and so does `los replay`.
    line = b"\xef\xbb\xbf" + json.dumps(edge()).encode()
    assert parse_edge_event(line) == EdgeEvent.model_validate(json.loads(line))
