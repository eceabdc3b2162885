"""The outcomes service's words for a journey: facts and what they add up to.

A `Fact` is one accepted event about a participant (pseudonymous id, never a national id),
carrying both of its times: when it happened (`occurred_at`) and when it became known
(`recorded_at`). The value objects here (engagements, journey spans, coordination, planned
ends, placement ends) are what `journey.py` derives from facts, in the words of CONTRACT
§3 and §4.

Pure: no I/O, no clock. Time is always passed in, so the live service and `los replay`
judge the same facts the same way.

The value objects built for every fact (`Fact`, `Engagement`, `JourneySpan`, and the
rules' `Alert`) are immutable dataclasses with `Final` fields and an `__init__` written
out, rather than `frozen=True`: compiled by mypyc (`build.py`), a frozen dataclass keeps
the generated `__init__`, which sets each field through `object.__setattr__` in Python
(~0.9 µs for `Engagement`), while this one is native (~0.1 µs). mypy refuses an
assignment to a `Final` field, and compiled, so does Python (AttributeError).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, Final, Literal, NamedTuple
from zoneinfo import ZoneInfo

EngagementKind = Literal["measure", "placement"]
# (kind, the source system in which the id is unique, the id): a measure's id is unique per
# source system (CONTRACT §2), so NAV's and a municipality's `m-1` are two measures; a
# placement's id is unique per person, and its system is "".
EngagementKey = tuple[EngagementKind, str, str]

MEASURE_STARTED = "measure.started"
MEASURE_EXTENDED = "measure.extended"
MEASURE_ENDED = "measure.ended"
PLACEMENT_STARTED = "placement.started"
PLACEMENT_ENDED = "placement.ended"
DROPPED_OUT = "participant.dropped_out"
REFERRED = "participant.referred"
TRIAGED = "participant.triaged"
COORDINATOR_ASSIGNED = "coordinator.assigned"
COORDINATOR_UNASSIGNED = "coordinator.unassigned"
SIX_MONTH_CHECKED = "followup.six_month_checked"
JOURNEY_CLOSED = "journey.closed"

OSLO = ZoneInfo("Europe/Oslo")


@dataclass(init=False, unsafe_hash=True, slots=True)
class Fact:
    """One accepted event about a participant, with both of its times.

    `data` is the contract's data object as JSON (dates as ISO strings). `seq` is the
    arrival order; it only breaks ties between facts recorded at the same instant.
    `system` is the `source.system` that sent it, in which its `measure_id` is unique.
    """

    event_id: Final[str]
    type: Final[str]
    occurred_at: Final[datetime]
    recorded_at: Final[datetime]
    data: Final[Mapping[str, Any]]
    seq: Final[int]
    system: Final[str]

    def __init__(
        self,
        event_id: str,
        type: str,
        occurred_at: datetime,
        recorded_at: datetime,
        data: Mapping[str, Any],
        seq: int = 0,
        system: str = "",
    ) -> None:
        self.event_id = event_id
        self.type = type
        self.occurred_at = _in_utc(event_id, "occurred_at", occurred_at)
        self.recorded_at = _in_utc(event_id, "recorded_at", recorded_at)
        self.data = data
        self.seq = seq
        self.system = system

    @property
    def order(self) -> tuple[datetime, int, str]:
        """Knowledge order: recorded_at, then arrival, then event_id so ties never depend
        on the order facts were handed over."""
        return (self.recorded_at, self.seq, self.event_id)


def _in_utc(event_id: str, name: str, at: datetime) -> datetime:
    """Naive datetimes cannot be ordered against aware ones: refused where they enter.
    Aware ones are kept in UTC, the same instants: each parsed offset is a tzinfo of its
    own, and comparing datetimes of two tzinfos is some ten times slower than of one. The
    rules compare a great many of them."""
    if at.tzinfo is UTC:
        return at  # as `to_fact` reads them
    if at.utcoffset() is None:
        raise ValueError(f"fact {event_id}: {name} must carry a UTC offset")
    return at.astimezone(UTC)


@dataclass(init=False, unsafe_hash=True, slots=True)
class Engagement:
    """A measure or a placement, active on [start, end) (CONTRACT §3).

    `end` is None while no end is known (active however old). `unplanned` says whether
    the end was unplanned: `measure.ended` with status AVBRUTT or reason IKKE_MOTT,
    `placement.ended` with reason QUIT or DISMISSED, or a `participant.dropped_out`.
    `system` is the source system in which a measure's id is unique ("" for a placement).
    """

    kind: Final[EngagementKind]
    id: Final[str]
    start: Final[datetime]
    end: Final[datetime | None]
    unplanned: Final[bool]
    system: Final[str]

    def __init__(
        self,
        kind: EngagementKind,
        id: str,
        start: datetime,
        end: datetime | None,
        unplanned: bool,
        system: str = "",
    ) -> None:
        self.kind = kind
        self.id = id
        self.start = start
        self.end = end
        self.unplanned = unplanned
        self.system = system

    def active_at(self, instant: datetime) -> bool:
        return self.start <= instant and (self.end is None or instant < self.end)


class Stretch(NamedTuple):
    """A stretch of time in which at least one engagement is active: [start, end), `end`
    None while one with no known end is active. `ending` holds the engagements whose own
    end (or dropout) is the stretch's end: where the number of active ones drops to zero."""

    start: datetime
    end: datetime | None
    ending: tuple[Engagement, ...]


@dataclass(init=False, unsafe_hash=True, slots=True)
class JourneySpan:
    """One journey in the contract's sense: opened by a referral or triage, closed by
    `journey.closed`. `opened_at` is None for facts that precede any known opening."""

    opened_at: Final[datetime | None]
    closed_at: Final[datetime | None]

    def __init__(self, opened_at: datetime | None, closed_at: datetime | None) -> None:
        self.opened_at = opened_at
        self.closed_at = closed_at


# At one instant a closing comes first (what follows it may open a new journey), then
# triages, unassignments and assignments: a hand-over within one instant leaves the new
# coordinator.


class Coordination(NamedTuple):
    """A fact about who coordinates the person: a triage (with what it says about
    `needs_coordinator`), an assignment or unassignment (of `coordinator_id`), a closing."""

    occurred_at: datetime
    type: str
    coordinator_id: str
    needs_coordinator: bool


class PlannedEndDeclared(NamedTuple):
    """A measure's planned end as a start or an extension declared it. Ordered as they
    follow each other in business time: an extension wins a tie with the start."""

    occurred_at: datetime
    by_extension: bool
    day: str
    recorded_at: datetime


class MeasurePlan(NamedTuple):
    """What is known of a measure's planned end: each declaration, when the measure's start
    first became known, and when it first became known to have ended (its own
    `measure.ended`, or a dropout after its start), if it has."""

    measure_id: str
    declared: tuple[PlannedEndDeclared, ...]
    start_known_at: datetime
    end_known_at: datetime | None
    system: str  # the source system in which `measure_id` is unique


@lru_cache(maxsize=1 << 12)
def day_start(day: date | str) -> datetime:
    """A date of the contract as an instant (CONTRACT §3): the start of that day in
    Europe/Oslo, in UTC so that adding days adds 24-hour days."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime.combine(day, time(), tzinfo=OSLO).astimezone(UTC)


class PlacementEnd(NamedTuple):
    """A placement's own end (`placement.ended`, not a dropout), with the placement's start."""

    placement_id: str
    started: datetime
    ended: datetime
    quit_or_dismissed: bool
