"""Journey service: the measures one participant takes part in, from NAV, kommune and VO.

A measure starts, may be extended, and ends once; an end or extension waits for its
start, and an end cannot come before its start. (CONTRACT §2, lifecycle checks.)
`measure_id` is unique per source, read as per source system: NAV's m-1 and the
kommune's m-1 are two.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from services.kernel.events import DomainEvent, MeasureEnded, MeasureExtended, MeasureStarted
from services.kernel.source import Refused, SourceRecord, Waiting


@dataclass
class Measure:
    started_at: datetime
    ended: bool = False


class MeasureRecord(SourceRecord):
    """Every measure event journey accepted about one participant."""

    def __init__(self, service: str, participant: str) -> None:
        super().__init__(service, participant)
        self.measures: dict[tuple[str, str], Measure] = {}

    def check(self, domain_event: DomainEvent) -> Refused | Waiting | None:
        system = domain_event.source.system
        match domain_event.data:
            case MeasureStarted(measure_id=measure_id) if (system, measure_id) in self.measures:
                return Refused("data.measure_id", f"measure {measure_id} has already started")
            case MeasureExtended(measure_id=measure_id) | MeasureEnded(measure_id=measure_id):
                measure = self.measures.get((system, measure_id))
                if measure is None:
                    return Waiting(
                        "data.measure_id",
                        f"held until the start of measure {measure_id} comes",
                        (system, measure_id),
                    )
                if measure.ended:
                    return Refused("data.measure_id", f"measure {measure_id} has already ended")
                if domain_event.occurred_at < measure.started_at:
                    return Refused("occurred_at", f"before the start of measure {measure_id}")
        return None

    def apply(self, domain_event: DomainEvent) -> None:
        system = domain_event.source.system
        match domain_event.data:
            case MeasureStarted(measure_id=measure_id):
                self.measures[system, measure_id] = Measure(domain_event.occurred_at)
            case MeasureEnded(measure_id=measure_id):
                self.measures[system, measure_id].ended = True

    def started(self, domain_event: DomainEvent) -> Hashable | None:
        match domain_event.data:
            case MeasureStarted(measure_id=measure_id):
                return domain_event.source.system, measure_id
        return None
