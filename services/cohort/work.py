"""Work in a drawn history: a job that comes during or right after the last measure,
the six-month check, and what follows — a closed journey for most, an early exit for
some, after which the person needs a new measure within the week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.cohort.casefile import CaseFile
from services.cohort.catalogue import Weighted
from services.cohort.facts import Fact, Span, days, local_day, office_time
from services.cohort.measures import complete, end_measure, start_measure
from services.kernel.vocabulary import (
    CheckStatus,
    ClosingReason,
    EventType,
    EvidenceSource,
    MeasureEndReason,
    MeasureStatus,
    PlacementEndReason,
    PlacementKind,
    SourceSystem,
)

_PLACEMENT_KINDS = Weighted(
    (
        (PlacementKind.PERMANENT, 35),
        (PlacementKind.TEMPORARY, 35),
        (PlacementKind.SUBSIDISED, 20),
        (PlacementKind.APPRENTICESHIP, 10),
    )
)
# What the six-month check finds for someone still in the job they got.
_STILL_THERE = Weighted(
    (
        (CheckStatus.EMPLOYED_SAME, 78),
        (CheckStatus.EMPLOYED_OTHER, 10),
        (CheckStatus.IN_EDUCATION, 3),
        (CheckStatus.NOT_EMPLOYED, 5),
        (CheckStatus.UNREACHABLE, 4),
    )
)
_GONE = tuple(status for status in CheckStatus if status != CheckStatus.EMPLOYED_SAME)


@dataclass(frozen=True, slots=True)
class Resume:
    """The job ended early: measures go on from `start`, known by `record_by`."""

    start: datetime
    record_by: datetime


@dataclass(slots=True)
class _Placement:
    span: Span
    started: Fact
    employer: str
    kind: PlacementKind


def into_job(
    case: CaseFile, code: str, start: datetime, record_by: datetime | None, *, early_exit: bool
) -> datetime | Resume | None:
    """A last measure that ends in a job. Returns when the journey closed if it may
    open again, where measures resume after an early exit, or None."""
    rng = case.rng
    measure = start_measure(case, code, start, record_by)
    if rng.random() < 0.55:
        # The job comes partway through the measure, which ends for it.
        share = rng.uniform(0.25, 0.9)
        hired_at = office_time(
            local_day(start) + days(max(7, int(measure.duration * share))), rng.randint(8, 9)
        )
        status = MeasureStatus.HAR_SLUTTET if rng.random() < 0.7 else MeasureStatus.FULLFORT
        ended_at = office_time(local_day(hired_at) + days(rng.randint(0, 2)), 15)
        end_measure(case, measure, ended_at, status, MeasureEndReason.FATT_JOBB)
        placement = _place(case, hired_at, case.deadline(measure.span))
    else:
        complete(case, measure, MeasureEndReason.FERDIG)
        cover = case.cover()
        hired_at = case.successor_time(cover)
        case.history.handovers.append(cover)
        placement = _place(case, hired_at, case.deadline(cover))
    return _in_work(case, placement, early_exit=early_exit)


def _place(
    case: CaseFile, at: datetime, record_by: datetime | None, kind: PlacementKind | None = None
) -> _Placement:
    rng = case.rng
    kind = kind or _PLACEMENT_KINDS.draw(rng)
    hours = 100 if rng.random() < 0.55 else rng.choice((20, 40, 50, 60, 80))
    employer = case.orgs.employer(rng)
    placement_id = case.numbering.placement()
    started = case.emit(
        EventType.PLACEMENT_STARTED,
        at,
        (SourceSystem.EMPLOYER.value, employer),
        {
            "placement_id": placement_id,
            "employer": employer,
            "kind": kind.value,
            "hours_pct": hours,
        },
        starts_engagement=True,
        record_by=record_by,
    )
    span = Span(placement_id, at)
    case.engage(span)
    return _Placement(span, started, employer, kind)


def _in_work(
    case: CaseFile, placement: _Placement, *, early_exit: bool
) -> datetime | Resume | None:
    rng = case.rng
    start = placement.span.start
    if early_exit and rng.random() < 0.15:
        left_at = office_time(local_day(start) + days(rng.randint(14, 170)), 12)
        reason = rng.choice((PlacementEndReason.QUIT, PlacementEndReason.DISMISSED))
        _end_placement(case, placement, left_at, reason, unplanned=True)
        _six_month_check(case, placement, still_there=False)
        then = case.successor_time(placement.span)
        if rng.random() < 0.65:
            return Resume(then, case.deadline(placement.span))
        reason_closed = rng.choice((ClosingReason.MOVED, ClosingReason.OTHER))
        case.close(then, reason_closed, record_by=case.deadline(placement.span))
        return then
    _six_month_check(case, placement, still_there=True)
    if rng.random() >= 0.85:
        return None  # still followed up in work when the history ends
    closed_at = office_time(local_day(start) + days(rng.randint(30, 150)), 13)
    case.close(closed_at, ClosingReason.GOAL_REACHED)
    # A closed journey raises no handover gap, so the job may now simply end.
    ends_day = max(local_day(closed_at) + days(30), local_day(start) + days(120))
    ends_at = office_time(ends_day + days(rng.randint(0, 240)), 15)
    if placement.kind == PlacementKind.TEMPORARY and rng.random() < 0.5:
        _end_placement(case, placement, ends_at, PlacementEndReason.CONTRACT_ENDED)
    elif placement.kind == PlacementKind.SUBSIDISED and rng.random() < 0.35:
        _end_placement(case, placement, ends_at, PlacementEndReason.CONVERTED)
        permanent = _place(case, ends_at, None, PlacementKind.PERMANENT)
        _six_month_check(case, permanent, still_there=True)
    return None


def _end_placement(
    case: CaseFile,
    placement: _Placement,
    at: datetime,
    reason: PlacementEndReason,
    *,
    unplanned: bool = False,
) -> None:
    at = case.free_end_time(at)
    ended = case.emit(
        EventType.PLACEMENT_ENDED,
        at,
        (SourceSystem.EMPLOYER.value, placement.employer),
        {"placement_id": placement.span.engagement_id, "reason": reason.value},
        after=(placement.started,),
    )
    case.end(placement.span, at, unplanned=unplanned, ending=ended)


def _six_month_check(case: CaseFile, placement: _Placement, *, still_there: bool) -> None:
    """Most placements are checked around 182 days in; some checks never come."""
    rng = case.rng
    if rng.random() >= 0.85:
        return
    checked_day = local_day(placement.span.start) + days(182 + rng.randint(-5, 12))
    checked_at = office_time(checked_day, 11)
    status = _STILL_THERE.draw(rng) if still_there else rng.choice(_GONE)
    evidence = rng.choice(tuple(EvidenceSource))
    obtained = local_day(checked_at) - days(rng.randint(0, 5))
    case.emit(
        EventType.SIX_MONTH_CHECKED,
        checked_at,
        (SourceSystem.EMPLOYER.value, placement.employer),
        {
            "placement_id": placement.span.engagement_id,
            "status": status.value,
            "evidence": {"source": evidence.value, "obtained_at": obtained.isoformat()},
        },
        after=(placement.started,),
    )
