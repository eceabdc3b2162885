"""Employer service: the placements of one participant and their six-month checks.

A placement starts and ends once; an end waits for its start and cannot come before it.
(CONTRACT §2, lifecycle checks.)
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from services.kernel.events import DomainEvent, PlacementEnded, PlacementStarted
from services.kernel.source import Refused, SourceRecord, Waiting


@dataclass
class Placement:
    started_at: datetime
    ended: bool = False


class EmploymentRecord(SourceRecord):
    """Every placement event employer accepted about one participant."""

    def __init__(self, service: str, participant: str) -> None:
        super().__init__(service, participant)
        self.placements: dict[str, Placement] = {}

    def check(self, domain_event: DomainEvent) -> Refused | Waiting | None:
        match domain_event.data:
            case PlacementStarted(placement_id=placement_id) if placement_id in self.placements:
                return Refused("data.placement_id", f"placement {placement_id} has already started")
            case PlacementEnded(placement_id=placement_id):
                placement = self.placements.get(placement_id)
                if placement is None:
                    return Waiting(
                        "data.placement_id",
                        f"held until the start of placement {placement_id} comes",
                        placement_id,
                    )
                if placement.ended:
                    return Refused(
                        "data.placement_id", f"placement {placement_id} has already ended"
                    )
                if domain_event.occurred_at < placement.started_at:
                    return Refused("occurred_at", f"before the start of placement {placement_id}")
        return None

    def apply(self, domain_event: DomainEvent) -> None:
        match domain_event.data:
            case PlacementStarted(placement_id=placement_id):
                self.placements[placement_id] = Placement(domain_event.occurred_at)
            case PlacementEnded(placement_id=placement_id):
                self.placements[placement_id].ended = True

    def started(self, domain_event: DomainEvent) -> Hashable | None:
        match domain_event.data:
            case PlacementStarted(placement_id=placement_id):
                return placement_id
        return None
