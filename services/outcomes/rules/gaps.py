"""The rules about time with nothing going on: HANDOVER_GAP and NO_START_AFTER_TRIAGE.

Both look for a stretch with no active engagement (CONTRACT §3: a measure or placement is
active from its start until its end) and are resolved by an engagement that starts later
(`engagement_started`), or by one active in the window that becomes known late
(`late_information`, as the walk resolves a condition that no longer holds).
"""

from __future__ import annotations

from datetime import datetime

from services.kernel.settings import RuleSettings
from services.outcomes.domain import (
    DROPPED_OUT,
    JOURNEY_CLOSED,
    MEASURE_ENDED,
    MEASURE_STARTED,
    PLACEMENT_ENDED,
    PLACEMENT_STARTED,
    REFERRED,
    TRIAGED,
    Engagement,
    JourneySpan,
    Stretch,
)
from services.outcomes.journey import KnownJourney
from services.outcomes.rules.walk import Condition, Rule, closed_at, iso, journey_subject

_ENGAGEMENTS_AND_JOURNEYS = frozenset(
    {
        MEASURE_STARTED,
        MEASURE_ENDED,
        PLACEMENT_STARTED,
        PLACEMENT_ENDED,
        DROPPED_OUT,
        REFERRED,
        TRIAGED,
        JOURNEY_CLOSED,
    }
)


def _handover_gap_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """HANDOVER_GAP: the number of active engagements drops to zero at E and no engagement
    is active in (E, E+14d] (7d when the last end was unplanned).

    Merging the engagements' [start, end) intervals gives the stretches in which at least
    one is active; each finite stretch end is a drop to zero. The window is empty exactly
    when the next stretch starts after the deadline, and that start is what resolves the
    alert with `engagement_started`: at the later of its occurred_at and recorded_at,
    because that is the first knowledge time at which the engagement has both begun and
    is known (never before raised_at: a start known before the gap was raises and
    resolves at once). Several ends at E (a dropout ending several engagements): the
    window is the unplanned one if any of them ended unplanned, and the subject is the
    one that started last, then the smallest id. The condition key is the rule, the
    subject and E, so a gap whose end moves under later facts is a new condition.
    """
    conditions: list[Condition] = []
    stretches = known.stretches()
    for i, (_, last_end, ending) in enumerate(stretches):
        if last_end is None:
            continue  # still active: nothing has dropped to zero
        unplanned = ending[0].unplanned if len(ending) == 1 else any(e.unplanned for e in ending)
        due = last_end + (rules.handover_gap_unplanned if unplanned else rules.handover_gap)
        next_start = stretches[i + 1].start if i + 1 < len(stretches) else None
        if next_start is not None and next_start <= due:
            continue  # handed over in time
        subject = _latest_started(ending)
        conditions.append(
            Condition(
                key=f"HANDOVER_GAP:{subject}:{iso(last_end)}",
                subject=subject,
                due=due,
                settled_at=next_start,
                settled_by="engagement_started",
                closed_at=closed_at(known, last_end),
            )
        )
    return conditions


def _latest_started(engagements: tuple[Engagement, ...]) -> str:
    """Of engagements that end together, the one that started last, then the smallest id."""
    if len(engagements) == 1:
        return engagements[0].id
    latest_start = max(e.start for e in engagements)
    return min(e.id for e in engagements if e.start == latest_start)


def _no_start_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """NO_START_AFTER_TRIAGE: the journey's first triage is at T and no engagement is
    active at any time in [T, T+30d].

    Some engagement is active somewhere in the closed window when a stretch of activity
    starts by T+30d and has not ended by T (one that ends at T exactly is not active at
    T). One that starts after T+30d resolves the alert (`engagement_started`), at the
    later of its start and when it became known. The subject is the journey (`journey:`
    and its opening), the key adds T.
    """
    conditions: list[Condition] = []
    triages = known.triaged_at()
    if not triages:
        return conditions
    stretches = known.stretches()
    first_of: JourneySpan | None = None
    for triaged in triages:
        span = known.journey_at(triaged)
        if span is None or span is first_of:
            continue  # not the journey's first triage (triages come in business time)
        first_of = span
        due = triaged + rules.no_start_after_triage
        if _active_within(stretches, triaged, due):
            continue
        subject = journey_subject(span)
        conditions.append(
            Condition(
                key=f"NO_START_AFTER_TRIAGE:{subject}:{iso(triaged)}",
                subject=subject,
                due=due,
                settled_at=next((s.start for s in stretches if s.start > due), None),
                settled_by="engagement_started",
                closed_at=span.closed_at,
            )
        )
    return conditions


def _active_within(stretches: tuple[Stretch, ...], start: datetime, end: datetime) -> bool:
    """Whether some engagement is active at some time in [start, end]."""
    for stretch in stretches:
        if stretch.start > end:
            return False  # stretches come in order: none later reaches back
        if stretch.end is None or stretch.end > start:
            return True
    return False


HANDOVER_GAP = Rule(
    "HANDOVER_GAP",
    _ENGAGEMENTS_AND_JOURNEYS,
    _handover_gap_conditions,
    requires=frozenset({MEASURE_ENDED, PLACEMENT_ENDED, DROPPED_OUT}),
)
NO_START_AFTER_TRIAGE = Rule(
    "NO_START_AFTER_TRIAGE",
    _ENGAGEMENTS_AND_JOURNEYS,
    _no_start_conditions,
    requires=frozenset({TRIAGED}),
)
