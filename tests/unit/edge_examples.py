"""Edge events as a source sends them, for the tests of the event contract
(`test_events.py`, `test_event_data.py`, `test_domain_events.py`)."""

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.kernel.events import InvalidEvent, parse_edge_event
from services.kernel.ids import synthetic_national_id

PERSON = synthetic_national_id(random.Random(1), date(1998, 4, 17))
EVENT_ID = "6f1c0d8e-6a4b-4c57-9e53-3f2b1f0b7a11"
NAV_OSLO = "974760673"
PROVIDER = "988077917"
RECEIVED = datetime(2025, 3, 15, 15, 30, tzinfo=UTC)

DATA_EXAMPLES: dict[str, dict[str, Any]] = {
    "participant.referred": {"channel": "kommune", "org_unit": "nav-grunerlokka"},
    "participant.triaged": {
        "need_group": "TRENGER_VEILEDNING_NEDSATT_ARBEIDSEVNE",
        "main_goal": "SKAFFE_ARBEID",
        "needs_coordinator": True,
        "org_unit": "nav-grunerlokka",
    },
    "coordinator.assigned": {"coordinator_id": "c-17", "org_unit": "nav-grunerlokka"},
    "coordinator.unassigned": {"coordinator_id": "c-17", "reason": "sluttet i stillingen"},
    "measure.started": {
        "measure_id": "m-123",
        "measure_code": "ARBEIDSFORBEREDENDE_TRENING",
        "provider": PROVIDER,
        "planned_end": "2025-09-30",
    },
    "measure.extended": {"measure_id": "m-123", "planned_end": "2025-12-31"},
    "measure.ended": {"measure_id": "m-123", "status": "HAR_SLUTTET", "reason": "IKKE_MOTT"},
    "placement.started": {
        "placement_id": "p-9",
        "employer": PROVIDER,
        "kind": "SUBSIDISED",
        "hours_pct": 60,
    },
    "placement.ended": {"placement_id": "p-9", "reason": "CONVERTED"},
    "participant.dropped_out": {"reason": "LOST_CONTACT"},
    "followup.six_month_checked": {
        "placement_id": "p-9",
        "status": "EMPLOYED_SAME",
        "evidence": {"source": "register", "obtained_at": "2025-10-02"},
    },
    "journey.closed": {"reason": "GOAL_REACHED"},
}


def edge(event_type: str = "measure.ended", data: Any = None, **fields: Any) -> dict[str, Any]:
    """A realistic edge event as a source sends it, with `fields` replaced."""
    event = {
        "event_id": EVENT_ID,
        "type": event_type,
        "occurred_at": "2025-03-14T09:00:00+01:00",
        "recorded_at": "2025-03-15T16:20:00+01:00",
        "source": {"system": "nav", "org": NAV_OSLO},
        "person": PERSON,
        "data": DATA_EXAMPLES[event_type] if data is None else data,
    }
    return {**event, **fields}


def without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    *parents, last = path
    event = json.loads(json.dumps(event))
    target = event
    for key in parents:
        target = target[key]
    del target[last]
    return event


def rejection(raw: Any) -> InvalidEvent:
    """Why `raw` is rejected (the test fails if it is not)."""
    with pytest.raises(InvalidEvent) as error:
        parse_edge_event(raw)
    return error.value
