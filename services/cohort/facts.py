"""The cohort's working material: what happened to a person (facts, in business time),
the engagements those facts make, and the clock helpers that place them on office days.

All instants here are aware datetimes in UTC, so that `+ timedelta(days=14)` is the
contract's 14 × 24 hours (CONTRACT §3); they become Europe/Oslo only when written out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")

GapCause = Literal["handover", "recent", "dropout"]


@dataclass(slots=True, eq=False)
class Fact:
    """One thing that happened to a person, before it is written out as an edge event."""

    type: str
    occurred_at: datetime
    system: str
    org: str
    data: dict[str, Any]
    event_id: str
    # A start may be agreed and recorded before it happens (CONTRACT §1), and is never
    # recorded weeks late: a start the platform learnt of late could make it see a gap
    # open that never did.
    starts_engagement: bool = False
    # Intake keeps its own records promptly; only providers and employers are weeks late.
    prompt: bool = False
    # The latest moment it may be recorded: a handover must be known before the gap
    # it closes would be due, or the rules would rightly raise (and later resolve) one.
    record_by: datetime | None = None
    # It cannot be recorded before these are (an end after its start).
    after: tuple[Fact, ...] = ()
    recorded_at: datetime | None = None


@dataclass(slots=True, eq=False)
class Span:
    """An engagement (measure or placement) as the rules see it: active from start to end."""

    engagement_id: str
    start: datetime
    end: datetime | None = None
    unplanned: bool = False
    ending: Fact | None = None


@dataclass(frozen=True, slots=True)
class GapFact:
    """A handover gap in business time: the person's last active engagement ends and
    nothing follows within the HANDOVER_GAP window (CONTRACT §4)."""

    measure_id: str
    ended_at: datetime
    unplanned: bool
    cause: GapCause
    # The ends of every engagement up to this one: the gap is known once all of them are.
    endings: tuple[Fact, ...]

    def known_at(self) -> datetime:
        recorded = [fact.recorded_at for fact in self.endings]
        assert None not in recorded, "known once recorded"
        return max(at for at in recorded if at is not None)


def local_day(instant: datetime) -> date:
    return instant.astimezone(OSLO).date()


def office_time(day: date, hour: int, minute: int = 0) -> datetime:
    """The instant of `hour:minute` in Oslo on `day`, or on the Monday after a weekend.

    Hours are kept between 08 and 16, clear of the night hours that daylight saving
    skips or repeats.
    """
    weekday = day.weekday()
    if weekday >= 5:
        day += timedelta(days=7 - weekday)
    return datetime.combine(day, time(hour, minute), tzinfo=OSLO).astimezone(UTC)


def days(count: float) -> timedelta:
    return timedelta(days=count)


def rfc3339(instant: datetime) -> str:
    """An instant as RFC 3339 with the Oslo offset of that moment (+01:00 or +02:00)."""
    return instant.astimezone(OSLO).isoformat()
