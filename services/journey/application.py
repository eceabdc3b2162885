"""Journey's store: measure events per participant (see domain.py)."""

from __future__ import annotations

from services.journey.domain import MeasureRecord
from services.kernel.source import SourceApplication


class JourneyApplication(SourceApplication):
    service = "journey"
    record_type = MeasureRecord
