"""The rules about measures: MEASURE_CHURN and STALE_MEASURE (CONTRACT §4)."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import groupby
from typing import NamedTuple

from services.kernel.settings import RuleSettings
from services.outcomes.domain import (
    DROPPED_OUT,
    JOURNEY_CLOSED,
    MEASURE_ENDED,
    MEASURE_EXTENDED,
    MEASURE_STARTED,
    PLACEMENT_STARTED,
    REFERRED,
    TRIAGED,
    MeasurePlan,
    PlannedEndDeclared,
    day_start,
)
from services.outcomes.journey import KnownJourney
from services.outcomes.rules.walk import Condition, Rule, closed_at, iso

_JOURNEYS = frozenset({REFERRED, TRIAGED, JOURNEY_CLOSED})


def _churn_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """MEASURE_CHURN: a measure that lasted under 90 days ends at E, at least 3 such
    measures (this one included) ended in the 365 days up to and including E, i.e. in
    (E-365d, E], and no placement started in that window.

    A measure ends as an engagement does (CONTRACT §3: its own end, or a dropout). Raised
    when the end became known; at most one open per person (`one_open`). Several measures
    ending at E are one condition, about the one that started last, then the smallest id.
    """
    short: list[tuple[datetime, datetime, str]] = []  # (end, start, id)
    placements: list[datetime] = []
    for e in known.engagements():
        if e.kind == "placement":
            placements.append(e.start)
        elif e.end is not None and e.end - e.start < rules.churn_short_measure:
            short.append((e.end, e.start, e.id))
    conditions: list[Condition] = []
    if len(short) < rules.churn_count:
        return conditions
    short.sort()
    ends = [end for end, _, _ in short]
    for end, group in groupby(short, key=lambda measure: measure[0]):
        since = end - rules.churn_window
        if bisect_right(ends, end) - bisect_right(ends, since) < rules.churn_count:
            continue
        if bisect_right(placements, end) > bisect_right(placements, since):
            continue  # a placement started in the window
        ending = list(group)
        latest = max(start for _, start, _ in ending)
        subject = min(measure_id for _, start, measure_id in ending if start == latest)
        conditions.append(
            Condition(
                key=f"MEASURE_CHURN:{subject}:{iso(end)}",
                subject=subject,
                due=end,
                settled_at=None,
                settled_by="acknowledged",
                closed_at=closed_at(known, end),
            )
        )
    return conditions


class PlannedEndStood(NamedTuple):
    """From knowledge time `known_from` until `known_until` (None: still), `day` was the
    measure's current planned end and no end of the measure was known."""

    day: str
    known_from: datetime
    known_until: datetime | None


def planned_ends_stood(plan: MeasurePlan) -> tuple[PlannedEndStood, ...]:
    """How a measure's planned end stood as knowledge grew.

    A declaration counts from when it and the measure's start are both known. At each
    knowledge time the current planned end is the one declared last in business time; a
    declaration learnt late that is older than the current one, or one that names the
    current day again, changes nothing. It stops once an end of the measure is known.
    """
    by_knowledge: dict[datetime, list[PlannedEndDeclared]] = {}
    for declared in plan.declared:
        by_knowledge.setdefault(max(declared.recorded_at, plan.start_known_at), []).append(declared)
    stood: list[PlannedEndStood] = []
    current: tuple[str, datetime] | None = None  # the day standing, and since when
    latest: PlannedEndDeclared | None = None
    for known in sorted(by_knowledge):
        if plan.end_known_at is not None and known >= plan.end_known_at:
            break
        newest = max(by_knowledge[known])
        if latest is not None and newest[:3] <= latest[:3]:
            continue
        if latest is None or newest.day != latest.day:
            if current is not None:
                stood.append(PlannedEndStood(*current, known))
            current = (newest.day, known)
        latest = newest
    if current is not None:
        stood.append(PlannedEndStood(*current, plan.end_known_at))
    return tuple(stood)


class StaleWatch(NamedTuple):
    """A planned end that a STALE_MEASURE condition is about: the condition's key, the
    start of the day in Oslo, when it is due, and when it stopped standing (None: still)."""

    key: str
    day_start: datetime
    due: datetime
    known_until: datetime | None


@lru_cache(maxsize=1 << 12)
def stale_watches(plan: MeasurePlan, stale_after: timedelta) -> tuple[StaleWatch, ...]:
    """The planned ends of a measure that could go stale: each day the plan stood at that
    was not updated before its deadline, the first time it stood. A function of the plan
    alone, which stays the same over most knowledge times of a walk."""
    watches: list[StaleWatch] = []
    keys: set[str] = set()
    for stood in planned_ends_stood(plan):
        key = f"STALE_MEASURE:{plan.system}:{plan.measure_id}:{stood.day}"
        at = day_start(stood.day)
        due = at + stale_after
        if key in keys or (
            stood.known_until is not None and stood.known_until <= max(due, stood.known_from)
        ):
            continue  # updated before it went stale
        keys.add(key)
        watches.append(StaleWatch(key, at, due, stood.known_until))
    return tuple(watches)


def _stale_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """STALE_MEASURE: a measure with planned end P (the start of that day in Oslo) has no
    end or later extension known by P+30d.

    Each planned end a measure's record stood at is its own condition (the key has the
    day): an extension that moves it resolves the alert about the old day (`updated`) and
    may raise one about the new, at once if that too is more than 30 days past. An end,
    own or by a dropout, resolves it (`updated`) when it becomes known. A condition is
    raised for the first time its day stood past the deadline; never twice.
    """
    return [
        Condition(
            key=watch.key,
            subject=plan.measure_id,
            due=watch.due,
            settled_at=watch.known_until,
            settled_by="updated",
            closed_at=closed_at(known, watch.day_start),
        )
        for plan in known.measure_plans()
        for watch in stale_watches(plan, rules.stale_measure)
    ]


MEASURE_CHURN = Rule(
    "MEASURE_CHURN",
    _JOURNEYS | {MEASURE_STARTED, MEASURE_ENDED, PLACEMENT_STARTED, DROPPED_OUT},
    _churn_conditions,
    requires=frozenset({MEASURE_ENDED, DROPPED_OUT}),
    one_open=True,
)
STALE_MEASURE = Rule(
    "STALE_MEASURE",
    _JOURNEYS | {MEASURE_STARTED, MEASURE_EXTENDED, MEASURE_ENDED, DROPPED_OUT},
    _stale_conditions,
    requires=frozenset({MEASURE_STARTED}),
)
