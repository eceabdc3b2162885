"""The edge event's typed fields read as strictly as the contract writes them (CONTRACT §1,
§2): timestamps are RFC 3339 text with seconds and a `Z` or `±hh:mm` offset,
`needs_coordinator` is a JSON bool, `hours_pct` a JSON number, and an identifier is not
blank; timestamps and dates are in the years 1900 to 2199. Both ways `parse_edge_event`
reads (JSON text, and a mapping) refuse the same, and what the platform itself writes
reads back."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from services.kernel.events import (
    DomainEvent,
    EdgeEvent,
    InvalidEvent,
    MeasureEnded,
    MeasureStarted,
    ParticipantTriaged,
    PlacementStarted,
    parse_edge_event,
)
from services.kernel.ids import pseudonym
from services.kernel.vocabulary import Timestamp
from tests.unit.edge_examples import DATA_EXAMPLES, EVENT_ID, PERSON, edge

CET = timezone(timedelta(hours=1))


def _triaged(value: Any) -> dict[str, Any]:
    data = {**DATA_EXAMPLES["participant.triaged"], "needs_coordinator": value}
    return edge("participant.triaged", data=data)


def _placement(value: Any) -> dict[str, Any]:
    return edge(
        "placement.started", data={**DATA_EXAMPLES["placement.started"], "hours_pct": value}
    )


def _refused_both_ways(event: dict[str, Any]) -> InvalidEvent:
    """The rejection of `event` read as JSON text and as a mapping, which must agree; and
    the JSON reader alone must refuse it too, not only the mapping reader after it."""
    with pytest.raises(ValidationError):
        EdgeEvent.model_validate_json(json.dumps(event))
    with pytest.raises(InvalidEvent) as from_text:
        parse_edge_event(json.dumps(event))
    with pytest.raises(InvalidEvent) as from_mapping:
        parse_edge_event(event)
    text, mapping = from_text.value, from_mapping.value
    assert (text.event_id, text.field, text.reason) == (
        mapping.event_id,
        mapping.field,
        mapping.reason,
    )
    return text


def _accepted_both_ways(event: dict[str, Any]) -> EdgeEvent:
    from_text = EdgeEvent.model_validate_json(json.dumps(event))
    assert EdgeEvent.model_validate(event) == from_text
    assert parse_edge_event(json.dumps(event)) == from_text
    return from_text


# --- timestamps ---------------------------------------------------------------------

NOT_RFC_3339 = [
    "2025-03-14T09:00+01:00",  # no seconds
    "2025-03-14T09:00:00+0100",  # no colon in the offset
    "2025-03-14T09:00:00+01",  # hours-only offset
    "2025-03-14 09:00:00+01:00",  # a space for the T
    "2025-03-14T09:00:00,5+01:00",  # a comma for the decimal point
    "2025-03-14T09:00:00.+01:00",  # a point without digits
    "2025-03-14T0900:00+01:00",
    "20250314T090000Z",  # ISO 8601 basic format
    "2025-03-14T09:00:00+01:00\n",
    " 2025-03-14T09:00:00+01:00",
    "2025-03-14T09:00:00+01:00[Europe/Oslo]",
    "2025-03-14T09:00:00 Z",
]


@pytest.mark.parametrize("text", NOT_RFC_3339)
@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_a_timestamp_that_is_not_rfc_3339_is_refused_by_name(field, text):
    error = _refused_both_ways(edge(**{field: text}))
    assert error.field == field
    assert error.reason == "RFC 3339 timestamp expected"
    assert str(error) == f"event {EVENT_ID}: {field}: RFC 3339 timestamp expected"


@pytest.mark.parametrize(
    "text",
    ["2025-03-14T10:00:00.1234567+01:00", "2025-03-14T09:00:00.123456789Z"],
)
def test_a_fraction_finer_than_microseconds_is_cut_to_the_microsecond(text):
    # RFC 3339 allows any number of digits; Go and Java write nanoseconds.
    event = _accepted_both_ways(edge(occurred_at=text))
    assert event.occurred_at == datetime(2025, 3, 14, 9, 0, 0, 123_456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-14T09:00:00Z", datetime(2025, 3, 14, 9, 0, tzinfo=UTC)),
        ("2025-03-14t09:00:00z", datetime(2025, 3, 14, 9, 0, tzinfo=UTC)),
        ("2025-03-14T09:00:00+00:00", datetime(2025, 3, 14, 9, 0, tzinfo=UTC)),
        ("2025-03-14T09:00:00+01:00", datetime(2025, 3, 14, 8, 0, tzinfo=UTC)),
        ("2025-03-14T09:00:00-03:30", datetime(2025, 3, 14, 12, 30, tzinfo=UTC)),
        ("2025-03-14T09:00:00.5+01:00", datetime(2025, 3, 14, 8, 0, 0, 500_000, tzinfo=UTC)),
        ("2025-03-14T09:00:00.000001Z", datetime(2025, 3, 14, 9, 0, 0, 1, tzinfo=UTC)),
        ("2025-03-14T09:00:00.123456Z", datetime(2025, 3, 14, 9, 0, 0, 123_456, tzinfo=UTC)),
        ("2025-03-14T09:00:00.120000z", datetime(2025, 3, 14, 9, 0, 0, 120_000, tzinfo=UTC)),
    ],
)
def test_rfc_3339_timestamps_are_read_to_the_microsecond(text, expected):
    event = _accepted_both_ways(edge(occurred_at=text, recorded_at=text))
    assert event.occurred_at == expected
    assert event.recorded_at == expected


def test_an_offset_is_kept_as_written():
    event = _accepted_both_ways(edge(occurred_at="2025-03-14T09:00:00-03:30"))
    assert event.occurred_at.utcoffset() == timedelta(hours=-3, minutes=-30)
    assert event.occurred_at.hour == 9


def test_the_old_rejections_of_timestamps_still_say_the_same():
    assert _refused_both_ways(edge(occurred_at=1741939200)).reason == (
        "RFC 3339 timestamp expected"
    )
    assert _refused_both_ways(edge(occurred_at="2025-03-14T09:00:00")).reason == (
        "timestamp needs a UTC offset"
    )
    assert _refused_both_ways(edge(occurred_at="2025-02-30T09:00:00Z")).reason == (
        "not a valid RFC 3339 timestamp"
    )


def test_a_timestamp_is_still_described_as_a_date_time_string():
    schema = {"type": "string", "format": "date-time"}
    assert TypeAdapter(Timestamp).json_schema() == schema
    assert TypeAdapter(Timestamp).json_schema(mode="serialization") == schema


def test_python_datetimes_are_taken_as_they_are():
    at = datetime(2025, 3, 14, 9, 0, 0, 1, tzinfo=CET)
    assert TypeAdapter(Timestamp).validate_python(at) == at
    with pytest.raises(ValidationError):
        TypeAdapter(Timestamp).validate_python(datetime(2025, 3, 14, 9, 0))  # naive


# --- needs_coordinator and hours_pct -------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "on", "true", "false", "1", "0", 1, 0, 1.0, None])
def test_needs_coordinator_is_a_json_bool(value):
    error = _refused_both_ways(_triaged(value))
    assert error.field == "data.needs_coordinator"
    assert error.reason == "must be true or false"


@pytest.mark.parametrize("value", [True, False])
def test_needs_coordinator_true_and_false_are_read(value):
    data = _accepted_both_ways(_triaged(value)).data
    assert isinstance(data, ParticipantTriaged)
    assert data.needs_coordinator is value


@pytest.mark.parametrize("value", ["50", "37.5", True, False, None])
def test_hours_pct_is_a_json_number(value):
    error = _refused_both_ways(_placement(value))
    assert error.field == "data.hours_pct"
    assert error.reason == "must be a number"


@pytest.mark.parametrize(
    ("value", "expected"), [(60, 60.0), (37.5, 37.5), (1, 1.0), (100, 100.0), (60.0, 60.0)]
)
def test_hours_pct_may_be_an_integer_or_a_fraction(value, expected):
    data = _accepted_both_ways(_placement(value)).data
    assert isinstance(data, PlacementStarted)
    assert data.hours_pct == expected


def test_hours_pct_keeps_its_range():
    assert _refused_both_ways(_placement(0)).reason == "must be at least 1"
    assert _refused_both_ways(_placement(100.5)).reason == "must be at most 100"


# --- identifiers ---------------------------------------------------------------------

IDENTIFIERS = [
    ("measure.ended", "measure_id"),
    ("participant.referred", "org_unit"),
    ("coordinator.assigned", "coordinator_id"),
    ("placement.ended", "placement_id"),
]


@pytest.mark.parametrize(("event_type", "field"), IDENTIFIERS)
@pytest.mark.parametrize("blank", [" ", "   ", "\t", "\n", " \r\n ", "\u00a0", "\u3000"])
def test_an_identifier_of_only_whitespace_is_refused_by_name(event_type, field, blank):
    event = edge(event_type, data={**DATA_EXAMPLES[event_type], field: blank})
    error = _refused_both_ways(event)
    assert error.field == f"data.{field}"
    assert error.reason == "must not be blank"
    assert str(error) == f"event {EVENT_ID}: data.{field}: must not be blank"


@pytest.mark.parametrize(("event_type", "field"), IDENTIFIERS)
@pytest.mark.parametrize("value", ["m-1\u0000", "\u0000"])
def test_an_identifier_with_a_nul_character_is_refused_by_name(event_type, field, value):
    # An alert names it in PostgreSQL text, which cannot hold a NUL: the alert would fail.
    event = edge(event_type, data={**DATA_EXAMPLES[event_type], field: value})
    error = _refused_both_ways(event)
    assert (error.field, error.reason) == (f"data.{field}", "must not contain the NUL character")


def test_an_empty_identifier_is_still_empty_rather_than_blank():
    event = edge(data={**DATA_EXAMPLES["measure.ended"], "measure_id": ""})
    assert _refused_both_ways(event).reason == "must not be empty"


def test_an_identifier_is_kept_as_sent_whitespace_and_all():
    event = edge(data={**DATA_EXAMPLES["measure.ended"], "measure_id": " m-1 "})
    data = _accepted_both_ways(event).data
    assert isinstance(data, MeasureEnded)
    assert data.measure_id == " m-1 "


# --- what the platform writes reads back --------------------------------------------


def _domain(edge_event: EdgeEvent, received_at: datetime) -> DomainEvent:
    return edge_event.to_domain(pseudonym(PERSON, "k"), "employer", received_at)


def test_the_platforms_own_json_reads_back():
    # A receive time as `datetime.now(UTC)` gives it, microseconds and all, and times
    # sent with an offset: written as pydantic writes them, read back as stored bodies are.
    edge_event = parse_edge_event(
        edge(
            "placement.started",
            occurred_at="2025-03-14T09:00:00+01:00",
            recorded_at=None,
            data={**DATA_EXAMPLES["placement.started"], "hours_pct": 60},
        )
    )
    domain = _domain(edge_event, datetime(2025, 3, 15, 15, 30, 0, 123_456, tzinfo=UTC))
    text = domain.model_dump_json()
    written = json.loads(text)
    assert written["occurred_at"] == "2025-03-14T09:00:00+01:00"
    assert written["recorded_at"] == "2025-03-15T15:30:00.123456Z"
    assert written["data"]["hours_pct"] == 60.0
    assert DomainEvent.model_validate_json(text) == domain
    assert DomainEvent.model_validate_json(text).model_dump_json() == text
    assert DomainEvent.model_validate(written) == domain


@pytest.mark.parametrize(
    ("at", "written"),
    [
        (datetime(2025, 3, 14, 9, 0, tzinfo=UTC), "2025-03-14T09:00:00Z"),
        (datetime(2025, 3, 14, 9, 0, tzinfo=CET), "2025-03-14T09:00:00+01:00"),
        (datetime(2025, 3, 14, 9, 0, 0, 500_000, tzinfo=UTC), "2025-03-14T09:00:00.500000Z"),
        (datetime(2025, 3, 14, 9, 0, 0, 1, tzinfo=CET), "2025-03-14T09:00:00.000001+01:00"),
        (
            datetime(2025, 3, 14, 9, 0, tzinfo=timezone(-timedelta(hours=3, minutes=30))),
            "2025-03-14T09:00:00-03:30",
        ),
    ],
)
def test_every_timestamp_the_platform_writes_reads_back(at, written):
    adapter = TypeAdapter(Timestamp)
    assert adapter.dump_json(at) == json.dumps(written).encode()
    assert adapter.dump_python(at, mode="json") == written
    assert adapter.validate_json(adapter.dump_json(at)) == at
    assert adapter.validate_python(written) == at
    domain = _domain(parse_edge_event(edge()), at)
    assert DomainEvent.model_validate_json(domain.model_dump_json()) == domain


def test_a_parsed_triage_round_trips_through_json():
    edge_event = parse_edge_event(_triaged(True))
    again = parse_edge_event(edge_event.model_dump_json())
    assert again == edge_event
    assert isinstance(again.data, ParticipantTriaged)
    assert again.data.needs_coordinator is True


def test_stored_json_that_is_not_rfc_3339_is_refused_too():
    domain = _domain(parse_edge_event(edge()), datetime(2025, 3, 15, 15, 30, tzinfo=UTC))
    written = json.loads(domain.model_dump_json())
    written["occurred_at"] = "2025-03-14T09:00+01:00"
    with pytest.raises(ValidationError) as error:
        DomainEvent.model_validate_json(json.dumps(written))
    assert error.value.errors()[0]["loc"] == ("occurred_at",)


# --- the years the rules can reckon in ----------------------------------------------------

OUT_OF_YEARS = [
    ("occurred_at", "9999-12-01T00:00:00Z"),
    ("recorded_at", "0001-01-01T00:00:00+01:00"),
    ("occurred_at", "1899-12-31T23:59:59Z"),
    ("occurred_at", "2200-01-01T00:00:00Z"),
]


@pytest.mark.parametrize(("field", "text"), OUT_OF_YEARS)
def test_a_timestamp_outside_the_years_1900_to_2199_is_refused_by_name(field, text):
    # Deadlines are reckoned from them: 9999-12-01 plus 196 days is no datetime.
    error = _refused_both_ways(edge(**{field: text}))
    assert (error.field, error.reason) == (field, "must be in the years 1900 to 2199")


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2200-01-01"])
def test_a_planned_end_outside_the_years_1900_to_2199_is_refused_by_name(day):
    data = {**DATA_EXAMPLES["measure.started"], "planned_end": day}
    error = _refused_both_ways(edge("measure.started", data=data))
    assert (error.field, error.reason) == ("data.planned_end", "must be in the years 1900 to 2199")


def test_the_first_and_last_days_of_those_years_are_taken():
    data = {**DATA_EXAMPLES["measure.started"], "planned_end": "2199-12-31"}
    event = _accepted_both_ways(
        edge("measure.started", data=data, occurred_at="1900-01-01T00:00:00+01:00")
    )
    assert event.occurred_at == datetime(1899, 12, 31, 23, 0, tzinfo=UTC)
    assert isinstance(event.data, MeasureStarted)
    assert event.data.planned_end == date(2199, 12, 31)
