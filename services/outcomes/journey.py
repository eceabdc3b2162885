"""A participant's journey: every fact, and what was known of them at any knowledge time.

A `Journey` keeps every fact of one participant and can say what was known at any
knowledge time; a `KnownJourney` turns a set of known facts into the words of CONTRACT §3
and §4: engagements (measures and placements), when each was active and whether it ended
unplanned; the journeys that referrals open and closings close, and why they closed; who
coordinated the person and what triages said; the planned ends declared for each measure;
and when each placement's six-month check became known. Pure.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from datetime import datetime
from operator import attrgetter
from typing import Any

from services.outcomes.domain import (
    COORDINATOR_ASSIGNED,
    COORDINATOR_UNASSIGNED,
    DROPPED_OUT,
    JOURNEY_CLOSED,
    MEASURE_ENDED,
    MEASURE_EXTENDED,
    MEASURE_STARTED,
    PLACEMENT_ENDED,
    PLACEMENT_STARTED,
    REFERRED,
    SIX_MONTH_CHECKED,
    TRIAGED,
    Coordination,
    Engagement,
    EngagementKey,
    EngagementKind,
    Fact,
    JourneySpan,
    MeasurePlan,
    PlacementEnd,
    PlannedEndDeclared,
    Stretch,
)

# Which engagement an event is about, whether it starts or ends it, and the data field
# that names it (CONTRACT §2).
ENGAGEMENT_EVENTS: dict[str, tuple[EngagementKind, bool, str]] = {
    MEASURE_STARTED: ("measure", True, "measure_id"),
    MEASURE_ENDED: ("measure", False, "measure_id"),
    PLACEMENT_STARTED: ("placement", True, "placement_id"),
    PLACEMENT_ENDED: ("placement", False, "placement_id"),
}
_UNPLANNED_PLACEMENT_REASONS = frozenset({"QUIT", "DISMISSED"})

# At one instant: a closing first, then triages, unassignments and assignments, so a
# hand-over within one instant leaves the new coordinator.
COORDINATION_RANKS = {
    JOURNEY_CLOSED: 0,
    TRIAGED: 1,
    COORDINATOR_UNASSIGNED: 2,
    COORDINATOR_ASSIGNED: 3,
}


class KnownJourney:
    """What a set of known facts says about a participant, in the words of CONTRACT §3.

    Readings taken where the contract is silent:
    - two starts (or two ends) of one engagement: the earliest `occurred_at` counts, so
      the answer does not depend on the order they arrived in; two ends at one instant
      end it unplanned if either says so;
    - an end whose start is not known is ignored until the start is known;
    - a dropout ends an engagement only if it is active then: at a tie with the
      engagement's own end, the own end (and its planned/unplanned status) stands;
    - with no opening known, facts belong to one journey that is open unless closed; a
      closing and an opening at the same instant close the old journey first.
    """

    __slots__ = (
        "_checks",
        "_closings",
        "_coordination",
        "_coordination_marks",
        "_derived",
        "_dropouts",
        "_dropouts_known",
        "_end_known",
        "_ends",
        "_engagements",
        "_measure_plans",
        "_opened",
        "_openings",
        "_placement_ends",
        "_plans",
        "_plans_known",
        "_reasons",
        "_spans",
        "_stale",
        "_start_known",
        "_starts",
        "_stretches",
        "_triages",
    )

    def __init__(self, facts: Iterable[Fact] = ()) -> None:
        self._starts: dict[EngagementKey, datetime] = {}
        self._ends: dict[EngagementKey, tuple[datetime, bool]] = {}
        # When each engagement's start, and its own end, first became known.
        self._start_known: dict[EngagementKey, datetime] = {}
        self._end_known: dict[EngagementKey, datetime] = {}
        self._dropouts: list[datetime] = []
        self._dropouts_known: list[tuple[datetime, datetime]] = []  # (occurred, recorded)
        self._openings: list[datetime] = []
        self._closings: list[datetime] = []
        self._reasons: dict[datetime, set[str]] = {}
        self._coordination: list[tuple[tuple[datetime, int, str], Coordination]] = []
        self._triages: list[datetime] = []
        # By (system, measure id), as a measure's engagement key without its kind.
        self._plans: dict[tuple[str, str], list[PlannedEndDeclared]] = {}
        self._plans_known: dict[tuple[str, str], MeasurePlan] = {}  # derived again when touched
        self._checks: dict[str, datetime] = {}
        # Rules ask after every new fact; only the engagements a fact touched are derived again.
        self._derived: dict[EngagementKey, Engagement] = {}
        self._stale: set[EngagementKey] = set()
        # What the rules ask for at every knowledge time, kept until a fact changes it.
        self._engagements: tuple[Engagement, ...] | None = None
        self._stretches: tuple[Stretch, ...] | None = None  # of the engagements above
        self._coordination_marks: tuple[Coordination, ...] | None = None
        self._placement_ends: tuple[PlacementEnd, ...] | None = None
        self._measure_plans: tuple[MeasurePlan, ...] | None = None
        self._spans: tuple[JourneySpan, ...] | None = None
        self._opened: list[datetime] = []
        for fact in facts:
            self.add(fact)

    def add(self, fact: Fact) -> None:
        """Take one more fact into account; types the journey does not read are ignored."""
        at, data = fact.occurred_at, fact.data
        engagement = ENGAGEMENT_EVENTS.get(fact.type)
        if engagement is not None:
            kind, is_start, id_field = engagement  # unpacked: compiled, a *-call is a slow one
            self._add_engagement_fact(fact, kind, is_start, id_field)
        elif fact.type == MEASURE_EXTENDED:
            self._plan(fact, by_extension=True)
        elif fact.type == DROPPED_OUT:
            insort(self._dropouts, at)
            self._dropouts_known.append((at, fact.recorded_at))
            self._stale.update(self._starts)
            self._engagements = None
            self._plans_known.clear()
            self._measure_plans = None
        elif fact.type == SIX_MONTH_CHECKED:
            placement_id = data.get("placement_id")
            if isinstance(placement_id, str):
                _keep_earliest(self._checks, placement_id, fact.recorded_at)
        else:
            self._add_journey_fact(fact)

    def _add_journey_fact(self, fact: Fact) -> None:
        """Openings, closings and coordination: who coordinates, and in which journey."""
        at, data = fact.occurred_at, fact.data
        if fact.type in (REFERRED, TRIAGED):
            insort(self._openings, at)
            self._spans = None
        elif fact.type == JOURNEY_CLOSED:
            insort(self._closings, at)
            self._reasons.setdefault(at, set()).add(str(data.get("reason")))
            self._spans = None
        rank = COORDINATION_RANKS.get(fact.type)
        if rank is not None:
            coordinator = str(data.get("coordinator_id", ""))
            needs = data.get("needs_coordinator") is True
            mark = Coordination(at, fact.type, coordinator, needs)
            insort(self._coordination, ((at, rank, fact.event_id), mark))
            self._coordination_marks = None
            if fact.type == TRIAGED:
                insort(self._triages, at)

    def _add_engagement_fact(
        self, fact: Fact, kind: EngagementKind, is_start: bool, id_field: str
    ) -> None:
        engagement_id = fact.data.get(id_field)
        if not isinstance(engagement_id, str):
            return  # validated at the edge; a fact without its id names no engagement
        key: EngagementKey = (kind, fact.system if kind == "measure" else "", engagement_id)
        at = fact.occurred_at
        if is_start:
            if key not in self._starts or at < self._starts[key]:
                self._starts[key] = at
            _keep_earliest(self._start_known, key, fact.recorded_at)
            if kind == "measure":
                self._plan(fact, by_extension=False)
        else:
            # Of two ends at one instant, an unplanned one stands (False sorts first).
            end = (at, is_unplanned_end(fact))
            known = self._ends.get(key)
            if known is None or (at, not end[1]) < (known[0], not known[1]):
                self._ends[key] = end
            _keep_earliest(self._end_known, key, fact.recorded_at)
        self._stale.add(key)
        self._engagements = None
        if kind == "placement":
            self._placement_ends = None
        else:
            self._plans_known.pop((fact.system, engagement_id), None)
            self._measure_plans = None

    def _plan(self, fact: Fact, *, by_extension: bool) -> None:
        measure_id, day = fact.data.get("measure_id"), fact.data.get("planned_end")
        if isinstance(measure_id, str) and day is not None:
            declared = PlannedEndDeclared(
                fact.occurred_at, by_extension, str(day), fact.recorded_at
            )
            plan_key = (fact.system, measure_id)
            self._plans.setdefault(plan_key, []).append(declared)
            self._plans_known.pop(plan_key, None)
            self._measure_plans = None

    def engagements(self) -> tuple[Engagement, ...]:
        """Every engagement with a known start, ordered by start, then kind, id and system."""
        if self._engagements is None:
            for key in self._stale:
                if key in self._starts:
                    self._derived[key] = self._engagement(key)
            self._stale.clear()
            self._engagements = tuple(sorted(self._derived.values(), key=_ENGAGEMENT_ORDER))
            self._stretches = None
        return self._engagements

    def stretches(self) -> tuple[Stretch, ...]:
        """The stretches of time in which at least one engagement is active, in order."""
        engagements = self.engagements()
        if self._stretches is None:
            self._stretches = _stretches(engagements)
        return self._stretches

    def _engagement(self, key: EngagementKey) -> Engagement:
        start = self._starts[key]
        end, unplanned = self._ends.get(key, (None, False))
        # The first dropout at or after the start, if it comes before the engagement's own
        # end, is what ended it.
        i = bisect_left(self._dropouts, start)
        if i < len(self._dropouts) and (end is None or self._dropouts[i] < end):
            end, unplanned = self._dropouts[i], True
        kind, system, engagement_id = key
        return Engagement(kind, engagement_id, start, end, unplanned, system)

    def placement_ends(self) -> tuple[PlacementEnd, ...]:
        """Every placement whose own end is known, by placement id."""
        if self._placement_ends is None:
            self._placement_ends = tuple(
                PlacementEnd(key[2], self._starts[key], end, unplanned)
                for key, (end, unplanned) in sorted(self._ends.items())
                if key[0] == "placement" and key in self._starts
            )
        return self._placement_ends

    def six_month_check_known_at(self, placement_id: str) -> datetime | None:
        """When a six-month check of the placement first became known, if one is."""
        return self._checks.get(placement_id)

    def measure_plans(self) -> tuple[MeasurePlan, ...]:
        """What is known of the planned end of each measure whose start is known, by system
        and id."""
        if self._measure_plans is not None:
            return self._measure_plans
        plans: list[MeasurePlan] = []
        for plan_key in sorted(self._plans):
            plan = self._plans_known.get(plan_key)
            if plan is None:
                system, measure_id = plan_key
                key: EngagementKey = ("measure", system, measure_id)
                if key not in self._starts:
                    continue
                declared = tuple(self._plans[plan_key])
                plan = MeasurePlan(
                    measure_id, declared, self._start_known[key], self._end_known_at(key), system
                )
                self._plans_known[plan_key] = plan
            plans.append(plan)
        self._measure_plans = tuple(plans)
        return self._measure_plans

    def _end_known_at(self, key: EngagementKey) -> datetime | None:
        own = self._end_known.get(key)
        if not self._dropouts_known:
            return own
        start = self._starts[key]
        known = [recorded for at, recorded in self._dropouts_known if at >= start]
        if own is not None:
            known.append(own)
        return min(known, default=None)

    def triaged_at(self) -> tuple[datetime, ...]:
        """Every triage, in business time."""
        return tuple(self._triages)

    def coordination(self) -> tuple[Coordination, ...]:
        """Triages, assignments, unassignments and closings in business time."""
        if self._coordination_marks is None:
            self._coordination_marks = tuple(mark for _, mark in self._coordination)
        return self._coordination_marks

    def spans(self) -> tuple[JourneySpan, ...]:
        """The participant's journeys, oldest first."""
        if self._spans is None:
            self._spans = _spans(self._openings, self._closings)
            self._opened = [s.opened_at for s in self._spans if s.opened_at is not None]
        return self._spans

    def journey_at(self, instant: datetime) -> JourneySpan | None:
        """The journey an instant belongs to: the latest opened at or before it (an instant
        before every opening belongs to the first), None when no journey is known."""
        spans = self.spans()
        if len(spans) < 2:
            return spans[0] if spans else None
        offset = len(spans) - len(self._opened)  # the span with no known opening comes first
        i = bisect_right(self._opened, instant) + offset
        return spans[max(i - 1, 0)]

    def closing_reasons(self, span: JourneySpan) -> frozenset[str]:
        """The reasons the journey was closed with (several closings may share its instant)."""
        if span.closed_at is None:
            return frozenset()
        return frozenset(self._reasons.get(span.closed_at, ()))

    @property
    def closed_at(self) -> datetime | None:
        """When the current (latest) journey closed, or None while it is open."""
        spans = self.spans()
        return spans[-1].closed_at if spans else None


_ENGAGEMENT_ORDER = attrgetter("start", "kind", "id", "system")


def _stretches(engagements: Iterable[Engagement]) -> tuple[Stretch, ...]:
    """Takes engagements ordered by start."""
    stretches: list[tuple[datetime, datetime | None, list[Engagement]]] = []
    for engagement in engagements:
        if engagement.end is not None and engagement.end <= engagement.start:
            continue  # ended at (or before) its start, e.g. by a dropout: never active
        if stretches:
            start, end, ending = stretches[-1]
            # Touching intervals ([a, b) then [b, c)) never leave the count at zero.
            if end is None or engagement.start <= end:
                if end is not None and (engagement.end is None or engagement.end > end):
                    stretches[-1] = (start, engagement.end, [engagement])
                elif end is not None and engagement.end == end:
                    ending.append(engagement)
                continue
        stretches.append((engagement.start, engagement.end, [engagement]))
    return tuple([Stretch(start, end, tuple(ending)) for start, end, ending in stretches])


def _keep_earliest(times: dict[Any, datetime], key: Any, at: datetime) -> None:
    if key not in times or at < times[key]:
        times[key] = at


def is_unplanned_end(fact: Fact) -> bool:
    if fact.type == MEASURE_ENDED:
        return fact.data.get("status") == "AVBRUTT" or fact.data.get("reason") == "IKKE_MOTT"
    return fact.data.get("reason") in _UNPLANNED_PLACEMENT_REASONS


def _spans(openings: list[datetime], closings: list[datetime]) -> tuple[JourneySpan, ...]:
    # Closings sort before openings at the same instant (0 < 1): the old journey closes,
    # then the new one opens.
    marks = sorted([(at, 0) for at in closings] + [(at, 1) for at in openings])
    spans: list[JourneySpan] = []
    is_open = False
    for at, is_opening in marks:
        if is_opening and not is_open:
            spans.append(JourneySpan(opened_at=at, closed_at=None))
            is_open = True
        elif not is_opening and is_open:
            spans[-1] = JourneySpan(opened_at=spans[-1].opened_at, closed_at=at)
            is_open = False
        elif not is_opening and not spans:
            # A closing with no known opening closes the journey those facts belong to.
            spans.append(JourneySpan(opened_at=None, closed_at=at))
        # Otherwise a referral inside an open journey, or a second closing: nothing changes.
    return tuple(spans)


class Journey:
    """Every fact of one participant, and what was known of them at any knowledge time.

    The same event twice is one fact (CONTRACT §1): of two copies the one known first is
    kept. Facts are kept in knowledge order (`Fact.order`).
    """

    __slots__ = ("_by_id", "_facts", "_participant")

    def __init__(self, participant: str, facts: Iterable[Fact] = ()) -> None:
        self._participant = participant
        self._by_id: dict[str, Fact] = {}
        self._facts: list[Fact] = []
        for fact in facts:
            self.add(fact)

    @property
    def participant(self) -> str:
        return self._participant

    @property
    def facts(self) -> tuple[Fact, ...]:
        return tuple(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def add(self, fact: Fact) -> bool:
        """Keep a fact; False when its event was already known (a redelivery)."""
        known = self._by_id.get(fact.event_id)
        if known is not None:
            if fact.order < known.order:
                self._facts.remove(known)
                self._keep(fact)
            return False
        self._keep(fact)
        return True

    def _keep(self, fact: Fact) -> None:
        self._by_id[fact.event_id] = fact
        insort(self._facts, fact, key=lambda f: f.order)

    def known_at(self, knowledge_time: datetime) -> tuple[Fact, ...]:
        """The facts recorded at or before `knowledge_time`, in knowledge order."""
        end = bisect_right(self._facts, knowledge_time, key=lambda f: f.recorded_at)
        return tuple(self._facts[:end])

    def as_known_at(self, knowledge_time: datetime) -> KnownJourney:
        return KnownJourney(self.known_at(knowledge_time))
