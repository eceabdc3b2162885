"""One participant's history in business time: referred, triaged, given a coordinator,
through one measure after another (sometimes two side by side), and out of it into a
job, a closed journey or a dropout — with, for a chosen few, a handover gap.

What it guarantees about HANDOVER_GAP (CONTRACT §4): whenever the person's active
engagements drop to zero, the next engagement starts well inside the window (see
`CaseFile.successor_time`) and must be recorded before the gap would be due; or the
journey closes the same way. The only exceptions are returned in `History.gaps`: the
injected gap, and a dropout whose journey stays open.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Literal

from services.cohort.casefile import CaseFile, History, Numbering, Person
from services.cohort.catalogue import MAIN_GOALS, MEASURE_COUNTS, NEED_GROUPS, Weighted
from services.cohort.facts import GapFact, days, local_day, office_time
from services.cohort.measures import Measure, end_measure, finish, next_start, start_measure
from services.cohort.organisations import Organisations
from services.cohort.work import Resume, into_job
from services.kernel.vocabulary import (
    Channel,
    ClosingReason,
    DropoutReason,
    EventType,
    MainGoal,
    MeasureEndReason,
    MeasureStatus,
)

Ending = Literal["job", "steady_job", "close", "dropout"]

_ENDINGS: Weighted[Ending] = Weighted((("job", 40), ("close", 47), ("dropout", 13)))
_CHANNELS = Weighted(
    (
        (Channel.NAV, 45),
        (Channel.KOMMUNE, 25),
        (Channel.VO, 10),
        (Channel.SELF, 12),
        (Channel.OTHER, 8),
    )
)
_CLOSINGS = Weighted(
    (
        (ClosingReason.OTHER, 40),
        (ClosingReason.MOVED, 30),
        (ClosingReason.TRANSFERRED_OUT, 25),
        (ClosingReason.DECEASED, 2),
    )
)
_DROPOUT_REASONS = Weighted(
    ((DropoutReason.LOST_CONTACT, 60), (DropoutReason.DECLINED, 20), (DropoutReason.OTHER, 20))
)
_UNASSIGN_REASONS = ("COORDINATOR_LEFT", "CASELOAD_REBALANCED", "ON_LEAVE")


def simulate(
    rng: random.Random,
    orgs: Organisations,
    numbering: Numbering,
    person: Person,
    referred_at: datetime,
    *,
    inject_gap: bool,
    horizon: datetime | None = None,
) -> History:
    """The history of `person`, referred at `referred_at`; with `inject_gap`, one
    handover in their first journey is left open well past its window.

    Nothing new is begun after `horizon`: what starts later could never be recorded
    in time to be kept, so it is not worth drawing.
    """
    case = CaseFile(rng, orgs, numbering, person, horizon)
    life = _Life(case, inject_gap)
    closed_at = life.journey(referred_at)
    # Some come back: a later referral opens a new journey (CONTRACT §3).
    if closed_at is not None and rng.random() < 0.15:
        referred_again = office_time(local_day(closed_at) + days(rng.randint(60, 400)), 10)
        if not case.beyond(referred_again):
            life.journey(referred_again)
    return case.history


class _Life:
    def __init__(self, case: CaseFile, inject_gap: bool) -> None:
        self.case = case
        self.rng = case.rng
        self.gap_pending = inject_gap
        self.goal = MainGoal.SKAFFE_ARBEID
        self.coordinator: str | None = None
        self.coordinator_since: datetime | None = None

    def journey(self, referred_at: datetime) -> datetime | None:
        """Play one journey from its referral; return when it closed, if it did and the
        person may be referred again."""
        case, rng = self.case, self.rng
        case.spans = []
        org_unit = case.person.org_unit
        newcomer = case.person.profile.name == "newcomer"
        channel = Channel.KOMMUNE if newcomer else _CHANNELS.draw(rng)
        case.intake(
            EventType.PARTICIPANT_REFERRED,
            referred_at,
            {"channel": channel.value, "org_unit": org_unit},
        )
        if rng.random() < 0.03:  # declines before anyone has assessed their needs
            case.intake(
                EventType.PARTICIPANT_DROPPED_OUT,
                case.office_after(referred_at, rng.randint(2, 20), 11),
                {"reason": DropoutReason.DECLINED.value},
            )
            return None
        triaged_at = case.office_after(referred_at, rng.randint(1, 21), rng.randint(9, 14))
        need_group, coordinator_odds = NEED_GROUPS.draw(rng)
        needs_coordinator = rng.random() < coordinator_odds
        self.goal = MAIN_GOALS.draw(rng)
        case.intake(
            EventType.PARTICIPANT_TRIAGED,
            triaged_at,
            {
                "need_group": need_group.value,
                "main_goal": self.goal.value,
                "needs_coordinator": needs_coordinator,
                "org_unit": org_unit,
            },
        )
        self._coordinate(triaged_at, needs_coordinator)
        # Most start within four weeks; some wait longer (NO_START_AFTER_TRIAGE).
        wait = rng.randint(3, 28) if rng.random() >= 0.08 else rng.randint(35, 75)
        first_start = case.office_after(triaged_at, wait, rng.randint(8, 9))
        return self._measures(first_start, None, MEASURE_COUNTS.draw(rng), _ENDINGS.draw(rng))

    def _measures(
        self, start: datetime, record_by: datetime | None, planned: int, ending: Ending
    ) -> datetime | None:
        """`planned` measures one after another from `start`, the last ending as `ending`."""
        case, rng = self.case, self.rng
        gap_at = rng.randrange(planned) if self.gap_pending else None
        self.gap_pending = False
        profile = case.person.profile
        # A journey opens with one of the usual first measures; a continuation need not.
        code = profile.next_measure(rng, None) if case.spans else profile.first_measures.draw(rng)
        index = 0
        while not case.beyond(start):
            last = index == planned - 1
            if last and gap_at != index:
                return self._last_measure(code, start, record_by, ending)
            measure = start_measure(case, code, start, record_by)
            finish(case, measure)
            next_code = profile.next_measure(rng, code)
            if gap_at == index:
                resume_at = self._inject_gap()
                if last:
                    return self._after_gap(resume_at)
                start, record_by = resume_at, None
            else:
                start, record_by = next_start(case, measure, next_code)
            self._maybe_change_coordinator(start)
            code, index = next_code, index + 1
        return None

    def _last_measure(
        self, code: str, start: datetime, record_by: datetime | None, ending: Ending
    ) -> datetime | None:
        case, rng = self.case, self.rng
        if ending in ("job", "steady_job"):
            outcome = into_job(case, code, start, record_by, early_exit=ending == "job")
            if isinstance(outcome, Resume):
                then: Ending = rng.choice(("close", "steady_job"))
                return self._measures(outcome.start, outcome.record_by, rng.randint(1, 2), then)
            return outcome
        measure = start_measure(case, code, start, record_by)
        if ending == "dropout" and (dropped_at := self._dropout_time(measure)) is not None:
            return self._drop_out(measure, dropped_at)
        finish(case, measure)
        cover = case.cover()
        if self.goal == MainGoal.OKE_DELTAKELSE and rng.random() < 0.5:
            reason = ClosingReason.GOAL_REACHED  # taking part more was the goal
        else:
            reason = _CLOSINGS.draw(rng)
        closed_at = case.successor_time(cover)
        case.history.handovers.append(cover)
        case.close(closed_at, reason, record_by=case.deadline(cover))
        if reason in (ClosingReason.DECEASED, ClosingReason.GOAL_REACHED):
            return None
        return closed_at

    # -- gaps and dropouts ----------------------------------------------------------

    def _inject_gap(self) -> datetime:
        """Leave the current handover open well past its window; return when the person
        would next be seen."""
        case = self.case
        cover = case.cover()
        assert cover.end is not None
        endings = case.history.endings_until(cover.end)
        case.history.gaps.append(
            GapFact(cover.engagement_id, cover.end, cover.unplanned, "handover", endings)
        )
        resume_day = local_day(case.deadline(cover)) + days(self.rng.randint(5, 120))
        return office_time(resume_day, self.rng.randint(8, 9))

    def _after_gap(self, resume_at: datetime) -> datetime | None:
        rng = self.rng
        chance = rng.random()
        if chance < 0.45:
            return self._measures(resume_at, None, rng.randint(1, 3), _ENDINGS.draw(rng))
        if chance < 0.7:
            self.case.close(resume_at, rng.choice((ClosingReason.MOVED, ClosingReason.OTHER)))
            return resume_at
        return None  # nobody noticed: the journey stays open with nothing in it

    def _dropout_time(self, measure: Measure) -> datetime | None:
        """A moment partway through `measure` when it is the person's only engagement,
        if there is one."""
        others = [s.end for s in self.case.spans if s is not measure.span and s.end is not None]
        first = local_day(max([measure.span.start, *others])) + days(1)
        room = (local_day(measure.span.start) + days(measure.duration - 1) - first).days
        if room < 0:
            return None
        return office_time(first + days(self.rng.randint(0, room)), self.rng.randint(9, 15))

    def _drop_out(self, measure: Measure, dropped_at: datetime) -> datetime | None:
        """The person stops coming. Returns when the journey closed, or None if it
        stays open (and HANDOVER_GAP is due a week later)."""
        case, rng = self.case, self.rng
        reason: dict[str, object] = {"reason": _DROPOUT_REASONS.draw(rng).value}
        # A dropout ends every engagement still active (CONTRACT §3), so it is recorded
        # after every earlier end: known before one of them, it would end that too.
        if rng.random() < 0.5:
            # The provider ends the measure, then the dropout is recorded.
            end_measure(
                case, measure, dropped_at, MeasureStatus.AVBRUTT, MeasureEndReason.IKKE_MOTT
            )
            later = dropped_at + timedelta(hours=rng.randint(1, 4))
            after = case.history.endings_until(dropped_at)
            case.emit(EventType.PARTICIPANT_DROPPED_OUT, later, measure.source, reason, after=after)
        else:
            # The dropout alone ends the measure.
            after = (measure.latest, *case.history.endings_until(dropped_at))
            dropout = case.emit(
                EventType.PARTICIPANT_DROPPED_OUT, dropped_at, measure.source, reason, after=after
            )
            case.end(measure.span, dropped_at, unplanned=True, ending=dropout)
        assert measure.span.end is not None
        dropped_at = measure.span.end
        if rng.random() < 0.5:
            closed_at = case.successor_time(measure.span)
            case.close(closed_at, ClosingReason.OTHER, record_by=case.deadline(measure.span))
            return closed_at
        endings = case.history.endings_until(dropped_at)
        case.history.gaps.append(
            GapFact(measure.span.engagement_id, dropped_at, True, "dropout", endings)
        )
        return None

    # -- coordinators ---------------------------------------------------------------

    def _coordinate(self, triaged_at: datetime, needs_coordinator: bool) -> None:
        """Assign a coordinator: within days for most who need one, late or never for
        some (NO_COORDINATOR), and now and then for someone who does not."""
        rng = self.rng
        chance = rng.random()
        wait: int | None = None
        if needs_coordinator and chance < 0.85:
            wait = rng.randint(0, 6)
        elif needs_coordinator and chance < 0.95:
            wait = rng.randint(8, 30)
        elif not needs_coordinator and chance < 0.15:
            wait = rng.randint(1, 20)
        if wait is not None:
            self._assign(self.case.office_after(triaged_at, wait, rng.randint(9, 15)))

    def _assign(self, at: datetime) -> None:
        case = self.case
        coordinator = case.orgs.caseloads.assign(self.rng, case.person.org_unit)
        case.history.coordinators.append(coordinator)
        self.coordinator, self.coordinator_since = coordinator, at
        case.intake(
            EventType.COORDINATOR_ASSIGNED,
            at,
            {"coordinator_id": coordinator, "org_unit": case.person.org_unit},
        )

    def _maybe_change_coordinator(self, before: datetime) -> None:
        """Coordinators leave or caseloads are evened out; a new one follows within days."""
        rng = self.rng
        if self.coordinator is None or self.coordinator_since is None or rng.random() >= 0.08:
            return
        left_at = before - days(4)
        if left_at <= self.coordinator_since:
            return
        self.case.intake(
            EventType.COORDINATOR_UNASSIGNED,
            left_at,
            {"coordinator_id": self.coordinator, "reason": rng.choice(_UNASSIGN_REASONS)},
        )
        self._assign(left_at + timedelta(hours=rng.randint(2, 72)))
