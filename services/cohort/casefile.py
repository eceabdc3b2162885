"""A person's case file while their history is drawn: who they are, what has happened
to them so far, and the few moves every part of the history makes — write a fact,
find where a gap would begin, pick a moment safely inside its window.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.cohort.catalogue import Kommune, Profile
from services.cohort.facts import Fact, GapFact, Span, days, local_day, office_time
from services.cohort.organisations import Organisations
from services.kernel.settings import RuleSettings
from services.kernel.vocabulary import ClosingReason, EventType, SourceSystem

_RULES = RuleSettings()


def gap_window(unplanned: bool) -> timedelta:
    """How long HANDOVER_GAP waits after the last end (CONTRACT §4 defaults)."""
    return _RULES.handover_gap_unplanned if unplanned else _RULES.handover_gap


@dataclass(frozen=True, slots=True)
class Person:
    national_id: str
    profile: Profile
    kommune: Kommune
    org_unit: str


@dataclass(slots=True)
class History:
    """A person's facts and engagements, their gaps, and the measure ends that were
    handed over in time."""

    facts: list[Fact] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    gaps: list[GapFact] = field(default_factory=list)
    handovers: list[Span] = field(default_factory=list)
    coordinators: list[str] = field(default_factory=list)

    def endings_until(self, ended_at: datetime) -> tuple[Fact, ...]:
        """The facts that ended the person's engagements, up to `ended_at`."""
        return tuple(
            span.ending
            for span in self.spans
            if span.ending is not None and span.end is not None and span.end <= ended_at
        )


class Numbering:
    """Measure and placement ids, unique across the whole cohort."""

    def __init__(self) -> None:
        self.measures = 0
        self.placements = 0

    def measure(self) -> str:
        self.measures += 1
        return f"m-{self.measures}"

    def placement(self) -> str:
        self.placements += 1
        return f"p-{self.placements}"


class CaseFile:
    """The person, their history so far, and what drawing it needs."""

    def __init__(
        self,
        rng: random.Random,
        orgs: Organisations,
        numbering: Numbering,
        person: Person,
        horizon: datetime | None,
    ) -> None:
        self.rng = rng
        self.orgs = orgs
        self.numbering = numbering
        self.person = person
        self.horizon = horizon
        self.history = History()
        self.spans: list[Span] = []  # the engagements of the current journey

    def beyond(self, at: datetime) -> bool:
        """Whether `at` is past the horizon, where nothing new is worth beginning."""
        return self.horizon is not None and at > self.horizon

    def engage(self, span: Span) -> None:
        self.spans.append(span)
        self.history.spans.append(span)

    def end(self, span: Span, at: datetime, *, unplanned: bool, ending: Fact) -> None:
        span.end, span.unplanned, span.ending = at, unplanned, ending

    def free_end_time(self, at: datetime) -> datetime:
        """`at`, or a minute or so later if another engagement ends then: with two last
        ends at once, planned and unplanned, the gap's window would be anyone's guess."""
        taken = {span.end for span in self.history.spans}
        while at in taken:
            at += timedelta(minutes=1)
        return at

    def cover(self) -> Span:
        """The engagement whose end is the person's last: where a gap would begin."""
        latest = self.spans[0]
        for span in self.spans[1:]:
            if span.end is None:
                return span
            if latest.end is not None and span.end > latest.end:
                latest = span
        return latest

    def deadline(self, cover: Span) -> datetime:
        """When HANDOVER_GAP would fall due after `cover` ends."""
        assert cover.end is not None
        return cover.end + gap_window(cover.unplanned)

    def successor_time(self, cover: Span) -> datetime:
        """A moment well inside the HANDOVER_GAP window after `cover` ends: within 9
        calendar days of a planned end, 4 of an unplanned one (plus a weekend)."""
        assert cover.end is not None
        within = self.rng.randint(0, 4 if cover.unplanned else 9)
        at = office_time(local_day(cover.end) + days(within), self.rng.randint(8, 11), 15)
        if at <= cover.end:
            at = cover.end + timedelta(hours=self.rng.randint(1, 3))
        return at

    def office_after(self, after: datetime, wait: int, hour: int) -> datetime:
        """Office hours `wait` days after `after`, and in any case after it."""
        quarter = self.rng.choice((0, 15, 30, 45))
        at = office_time(local_day(after) + days(wait), hour, quarter)
        return at if at > after else after + timedelta(hours=self.rng.randint(1, 5))

    def close(
        self, at: datetime, reason: ClosingReason, *, record_by: datetime | None = None
    ) -> None:
        self.intake(EventType.JOURNEY_CLOSED, at, {"reason": reason.value}, record_by=record_by)

    def intake(
        self,
        type_: EventType,
        at: datetime,
        data: dict[str, object],
        *,
        record_by: datetime | None = None,
    ) -> Fact:
        """A fact of intake's, sent by the person's NAV office."""
        office = (SourceSystem.NAV.value, self.orgs.offices[self.person.org_unit])
        return self.emit(type_, at, office, data, prompt=True, record_by=record_by)

    def emit(
        self,
        type_: EventType,
        at: datetime,
        source: tuple[str, str],
        data: dict[str, object],
        *,
        starts_engagement: bool = False,
        prompt: bool = False,
        record_by: datetime | None = None,
        after: tuple[Fact, ...] = (),
    ) -> Fact:
        fact = Fact(
            type=type_.value,
            occurred_at=at,
            system=source[0],
            org=source[1],
            data=data,
            event_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            starts_engagement=starts_engagement,
            prompt=prompt,
            record_by=record_by,
            after=after,
        )
        self.history.facts.append(fact)
        return fact
