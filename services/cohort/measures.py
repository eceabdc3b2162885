"""Measures in a drawn history: one starts, is sometimes extended, and ends — mostly
completed around its planned end, some broken off — and the next one starts beside
it or within days of the last end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.cohort.casefile import CaseFile
from services.cohort.catalogue import MEASURES, PARALLEL_MEASURES, MeasureKind, Weighted
from services.cohort.facts import Fact, Span, days, local_day, office_time
from services.kernel.vocabulary import EventType, MeasureEndReason, MeasureStatus, SourceSystem

_S, _R = MeasureStatus, MeasureEndReason
# How measures that are not followed by a job end: mostly completed, some broken off.
_OUTCOMES: Weighted[tuple[MeasureStatus, MeasureEndReason]] = Weighted(
    (
        ((_S.FULLFORT, _R.FERDIG), 70),
        ((_S.HAR_SLUTTET, _R.SYK), 4),
        ((_S.HAR_SLUTTET, _R.TRENGER_ANNEN_STOTTE), 5),
        ((_S.HAR_SLUTTET, _R.UTDANNING), 2),
        ((_S.HAR_SLUTTET, _R.ANNET), 3),
        ((_S.HAR_SLUTTET, _R.IKKE_MOTT), 4),
        ((_S.AVBRUTT, _R.IKKE_MOTT), 4),
        ((_S.AVBRUTT, _R.SYK), 2),
        ((_S.AVBRUTT, _R.ANNET), 2),
        ((_S.AVBRUTT, _R.KRAV_IKKE_OPPFYLT), 1),
        ((_S.IKKE_AKTUELL, _R.FIKK_IKKE_PLASS), 2),
        ((_S.IKKE_AKTUELL, _R.AVLYST_KONTRAKT), 1),
    )
)


def unplanned_end(status: str, reason: str) -> bool:
    """CONTRACT §3: a measure broken off, or one the person did not turn up to."""
    return status == MeasureStatus.AVBRUTT or reason == MeasureEndReason.IKKE_MOTT


@dataclass(slots=True)
class Measure:
    kind: MeasureKind
    span: Span
    started: Fact
    source: tuple[str, str]
    duration: int
    planned_end: datetime | None
    latest: Fact  # the last fact about it so far: its end is recorded after that


def start_measure(
    case: CaseFile, code: str, start: datetime, record_by: datetime | None
) -> Measure:
    """Start a measure of `code`, to be known by `record_by` when it follows another."""
    rng = case.rng
    kind = MEASURES[code]
    provider = case.orgs.provider(rng, case.person.kommune, kind.system)
    # NAV reports from the office that decided the measure, the kommune by its number,
    # an adult-education centre for itself.
    if kind.system == SourceSystem.KOMMUNE:
        source = (kind.system.value, case.person.kommune.number)
    elif kind.system == SourceSystem.NAV:
        source = (kind.system.value, case.orgs.offices[case.person.org_unit])
    else:
        source = (kind.system.value, provider)
    duration = rng.randint(kind.min_days, kind.max_days)
    measure_id = case.numbering.measure()
    data: dict[str, object] = {"measure_id": measure_id, "measure_code": code, "provider": provider}
    planned_end = None
    if rng.random() < 0.9:
        planned_end = office_time(local_day(start) + days(duration), 8)
        data["planned_end"] = local_day(planned_end).isoformat()
    started = case.emit(
        EventType.MEASURE_STARTED,
        start,
        source,
        data,
        starts_engagement=True,
        record_by=record_by,
    )
    span = Span(measure_id, start)
    case.engage(span)
    return Measure(kind, span, started, source, duration, planned_end, started)


def finish(case: CaseFile, measure: Measure) -> None:
    """End the measure as most measures end that no job cuts short."""
    rng = case.rng
    status, reason = _OUTCOMES.draw(rng)
    if status == MeasureStatus.FULLFORT:
        complete(case, measure, reason)
        return
    start_day = local_day(measure.span.start)
    if status == MeasureStatus.IKKE_AKTUELL:
        ended_day = start_day + days(rng.randint(1, 10))
    else:
        ended_day = start_day + days(max(1, int(measure.duration * rng.uniform(0.1, 0.85))))
    end_measure(case, measure, office_time(ended_day, rng.randint(12, 15)), status, reason)


def complete(case: CaseFile, measure: Measure, reason: MeasureEndReason) -> None:
    """End the measure at (about) its planned end, extended first now and then."""
    rng = case.rng
    planned = measure.planned_end or measure.span.start + days(measure.duration)
    if measure.planned_end is not None and rng.random() < 0.18:
        extended_at = office_time(local_day(planned) - days(rng.randint(5, 30)), rng.randint(9, 14))
        if extended_at > measure.span.start + days(1):
            planned += days(rng.randint(30, 180))
            measure.latest = case.emit(
                EventType.MEASURE_EXTENDED,
                extended_at,
                measure.source,
                {
                    "measure_id": measure.span.engagement_id,
                    "planned_end": local_day(planned).isoformat(),
                },
                after=(measure.started,),
            )
    ended_at = office_time(local_day(planned) + days(rng.randint(-5, 3)), rng.randint(14, 15))
    if ended_at <= measure.span.start + days(1):
        ended_at = measure.span.start + days(2)
    end_measure(case, measure, ended_at, MeasureStatus.FULLFORT, reason)


def end_measure(
    case: CaseFile,
    measure: Measure,
    at: datetime,
    status: MeasureStatus,
    reason: MeasureEndReason,
) -> None:
    # The contract lists `reason` with every end, so it is always sent.
    data: dict[str, object] = {
        "measure_id": measure.span.engagement_id,
        "status": status.value,
        "reason": reason.value,
    }
    at = case.free_end_time(at)
    ended = case.emit(EventType.MEASURE_ENDED, at, measure.source, data, after=(measure.latest,))
    case.end(measure.span, at, unplanned=unplanned_end(status, reason), ending=ended)


def next_start(case: CaseFile, current: Measure, next_code: str) -> tuple[datetime, datetime]:
    """When the next measure starts: beside the current one now and then, else within
    days of the last end. Returns the start and when it must be known by."""
    rng = case.rng
    cover = case.cover()
    parallel = current.kind.code in PARALLEL_MEASURES or next_code in PARALLEL_MEASURES
    if rng.random() < (0.5 if parallel else 0.1):
        assert cover.end is not None
        first = local_day(current.span.start) + days(14)
        room = (local_day(cover.end) - days(3) - first).days
        if room >= 0:
            start = office_time(first + days(rng.randint(0, room)), rng.randint(8, 9))
            return start, case.deadline(cover)
    start = case.successor_time(cover)
    if cover.end is not None and start > cover.end:
        case.history.handovers.append(cover)
    return start, case.deadline(cover)
