"""The domain form of an event: the person swapped for their pseudonym, unknown data
kept, and a `recorded_at` the platform can trust."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.kernel.events import (
    EMITTED_BY,
    DomainEvent,
    EdgeEvent,
    EventType,
    InvalidEvent,
    check_recorded_at,
    parse_edge_event,
)
from services.kernel.ids import pseudonym
from tests.unit.edge_examples import DATA_EXAMPLES, EVENT_ID, PERSON, RECEIVED, edge, without


def test_unknown_data_fields_are_kept_through_the_domain_form():
    data = {**DATA_EXAMPLES["followup.six_month_checked"], "note": {"by": "c-17", "n": [1, 2]}}
    data["evidence"] = {**data["evidence"], "document": "a-7"}
    event = parse_edge_event(edge("followup.six_month_checked", data=data))
    domain = event.to_domain(pseudonym(PERSON, "k"), "employer", RECEIVED)
    dumped = json.loads(domain.model_dump_json())
    assert dumped["data"]["note"] == {"by": "c-17", "n": [1, 2]}
    assert dumped["data"]["evidence"]["document"] == "a-7"


@pytest.mark.parametrize("event_type", list(EventType))
def test_the_domain_form_round_trips(event_type):
    edge_event = parse_edge_event(edge(event_type, data={**DATA_EXAMPLES[event_type], "x": 1}))
    service = min(EMITTED_BY[event_type])
    domain = edge_event.to_domain(pseudonym(PERSON, "k"), service, RECEIVED)
    text = domain.model_dump_json()
    assert PERSON not in text
    assert DomainEvent.model_validate_json(text) == domain
    assert DomainEvent.model_validate_json(text).model_dump_json() == text
    assert domain.data == edge_event.data


def test_to_domain_swaps_the_person_for_the_pseudonym_and_keeps_the_rest():
    event = parse_edge_event(edge())
    participant = pseudonym(PERSON, "k")
    domain = event.to_domain(participant, "journey", RECEIVED)
    assert domain.participant == participant
    assert domain.service == "journey"
    assert "person" not in domain.model_dump()
    assert PERSON not in repr(event)
    assert PERSON not in repr(domain)
    assert (domain.event_id, domain.type, domain.occurred_at, domain.source) == (
        event.event_id,
        event.type,
        event.occurred_at,
        event.source,
    )
    assert domain.recorded_at == event.recorded_at


def test_to_domain_fills_a_missing_recorded_at_with_the_receive_time():
    event = parse_edge_event(without(edge(), "recorded_at"))
    assert event.to_domain(pseudonym(PERSON, "k"), "journey", RECEIVED).recorded_at == RECEIVED


def test_a_domain_event_needs_a_pseudonym_and_a_recorded_at():
    text = parse_edge_event(edge()).to_domain(pseudonym(PERSON, "k"), "journey", RECEIVED)
    as_dict = json.loads(text.model_dump_json())
    with pytest.raises(ValueError, match="participant"):
        DomainEvent.model_validate({**as_dict, "participant": PERSON})
    with pytest.raises(ValueError, match="recorded_at"):
        DomainEvent.model_validate({k: v for k, v in as_dict.items() if k != "recorded_at"})


@pytest.mark.parametrize(
    ("recorded_at", "accepted"),
    [
        (None, True),
        (RECEIVED - timedelta(days=400), True),
        (RECEIVED + timedelta(minutes=5), True),
        (RECEIVED + timedelta(minutes=5, seconds=1), False),
        (datetime(2025, 3, 15, 16, 36, tzinfo=timezone(timedelta(hours=1))), False),
    ],
)
def test_recorded_at_may_not_run_ahead_of_the_platform(recorded_at, accepted):
    event = EdgeEvent.model_validate({**edge(), "recorded_at": recorded_at})
    if accepted:
        check_recorded_at(event, RECEIVED, timedelta(minutes=5))
        return
    with pytest.raises(InvalidEvent) as error:
        check_recorded_at(event, RECEIVED, timedelta(minutes=5))
    assert error.value.field == "recorded_at"
    assert error.value.reason == "more than 5 minutes after the platform's receive time"
    assert error.value.event_id == EVENT_ID


def test_the_recorded_at_reason_follows_the_setting():
    event = EdgeEvent.model_validate(edge())
    with pytest.raises(InvalidEvent, match="more than 1 hour after"):
        check_recorded_at(event, event.occurred_at, timedelta(hours=1))
    with pytest.raises(InvalidEvent, match="more than 90 seconds after"):
        check_recorded_at(event, event.occurred_at, timedelta(seconds=90))
