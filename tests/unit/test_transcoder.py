"""The stores' transcoder writes exactly the bytes the library's own JSON transcoder writes."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from services.journey.application import JourneyApplication
from services.journey.domain import MeasureRecord
from services.kernel.keys import Keys, opened
from services.kernel.store import Transcoder
from services.outcomes.application import JourneyLog
from tests.unit.source_events import ANNE, HOLD, day, measure_started, received

ORJSON = {"TRANSCODER_TOPIC": f"{Transcoder.__module__}:Transcoder"}


def pending_events(*aggregates: Aggregate) -> list[Any]:
    return [event for aggregate in aggregates for event in aggregate.collect_events()]


def test_every_stored_event_is_written_byte_for_byte_as_the_library_writes_it() -> None:
    record = MeasureRecord("journey", ANNE.participant)
    log = JourneyLog(ANNE.participant)
    fact = {
        "event_id": "e-1",
        "participant": ANNE.participant,
        "service": "employer",
        "type": "placement.started",
        "occurred_at": day(1).isoformat(),
        "recorded_at": day(1).isoformat(),
        "source": {"system": "employer", "org": "974760673"},
        "data": {"employer": "Ålesund Æble og Øl AS", "hours_pct": 60, "tags": [1, None]},
    }
    with opened(Keys().for_writing([ANNE.participant])):
        record.offer(*received(measure_started(ANNE, "m-1", day(0)), ANNE, "journey"), HOLD)
        log.record(fact, {"traceparent": "00-abc-def-01"})
    events = pending_events(record, log)
    ours, library = JourneyApplication(env=ORJSON), JourneyApplication()
    assert isinstance(ours.mapper.transcoder, Transcoder)

    for event in events:
        written = ours.mapper.to_stored_event(event)
        assert written.state == library.mapper.to_stored_event(event).state
        assert ours.mapper.to_domain_event(written).__dict__ == event.__dict__
    assert len(events) == 4  # created and accepted; created and the fact
