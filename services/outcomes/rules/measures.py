"""The rules about measures: MEASURE_CHURN and STALE_MEASURE (CONTRACT §4)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from itertools import groupby

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


def _churn_conditions(known: KnownJourney, rules: RuleSettings) -> Iterable[Condition]:
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
    if len(short) < rules.churn_count:
        return
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
        yield Condition(
            key=f"MEASURE_CHURN:{subject}:{iso(end)}",
            subject=subject,
            due=end,
            settled_at=None,
            settled_by="acknowledged",
            closed_at=closed_at(known, end),
        )


@dataclass(frozen=True, slots=True)
class PlannedEndStood:
    """From knowledge time `known_from` until `known_until` (None: still), `day` was the
    measure's current planned end and no end of the measure was known."""

    day: str
    known_from: datetime
    known_until: datetime | None


@lru_cache(maxsize=1 << 12)
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
    latest: PlannedEndDeclared | None = None
    for known in sorted(by_knowledge):
        if plan.end_known_at is not None and known >= plan.end_known_at:
            break
        newest = max(by_knowledge[known])
        if latest is not None and newest[:3] <= latest[:3]:
            continue
        moved = latest is None or newest.day != latest.day
        latest = newest
        if moved:
            if stood:
                stood[-1] = replace(stood[-1], known_until=known)
            stood.append(PlannedEndStood(newest.day, known, None))
    if stood and plan.end_known_at is not None:
        stood[-1] = replace(stood[-1], known_until=plan.end_known_at)
    return tuple(stood)


def _stale_conditions(known: KnownJourney, rules: RuleSettings) -> Iterable[Condition]:
    """STALE_MEASURE: a measure with planned end P (the start of that day in Oslo) has no
    end or later extension known by P+30d.

    Each planned end a measure's record stood at is its own condition (the key has the
    day): an extension that moves it resolves the alert about the old day (`updated`) and
    may raise one about the new, at once if that too is more than 30 days past. An end,
    own or by a dropout, resolves it (`updated`) when it becomes known. A condition is
    raised for the first time its day stood past the deadline; never twice.
    """
    for plan in known.measure_plans():
        raised: set[str] = set()
        for stood in planned_ends_stood(plan):
            key = f"STALE_MEASURE:{plan.measure_id}:{stood.day}"
            at = day_start(stood.day)
            due = at + rules.stale_measure
            if key in raised or (
                stood.known_until is not None and stood.known_until <= max(due, stood.known_from)
            ):
                continue  # updated before it went stale
            raised.add(key)
            yield Condition(
                key=key,
                subject=plan.measure_id,
                due=due,
                settled_at=stood.known_until,
                settled_by="updated",
                closed_at=closed_at(known, at),
            )


MEASURE_CHURN = Rule(
    "MEASURE_CHURN",
    _JOURNEYS | {MEASURE_STARTED, MEASURE_ENDED, PLACEMENT_STARTED, DROPPED_OUT},
    _churn_conditions,
    one_open=True,
)
STALE_MEASURE = Rule(
    "STALE_MEASURE",
    _JOURNEYS | {MEASURE_STARTED, MEASURE_EXTENDED, MEASURE_ENDED, DROPPED_OUT},
    _stale_conditions,
)
