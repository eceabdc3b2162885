"""The participant's journey as the outcomes service knows it: facts, and what they add up to.

A `Fact` is one accepted event about a participant (pseudonymous id, never a national id),
carrying both of its times: when it happened (`occurred_at`) and when it became known
(`recorded_at`). A `Journey` keeps every fact of one participant and can say what was known
at any knowledge time; a `KnownJourney` turns a set of known facts into the words of
CONTRACT §3: engagements (measures and placements), when each was active and whether it
ended unplanned, and the journeys that referrals open and closings close.

Pure: no I/O, no clock. Time is always passed in, so the live service and `los replay`
judge the same facts the same way.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

EngagementKind = Literal["measure", "placement"]

MEASURE_STARTED = "measure.started"
MEASURE_ENDED = "measure.ended"
PLACEMENT_STARTED = "placement.started"
PLACEMENT_ENDED = "placement.ended"
DROPPED_OUT = "participant.dropped_out"
REFERRED = "participant.referred"
TRIAGED = "participant.triaged"
JOURNEY_CLOSED = "journey.closed"

# Which engagement an event is about, whether it starts or ends it, and the data field
# that names it (CONTRACT §2).
_ENGAGEMENT_EVENTS: dict[str, tuple[EngagementKind, bool, str]] = {
    MEASURE_STARTED: ("measure", True, "measure_id"),
    MEASURE_ENDED: ("measure", False, "measure_id"),
    PLACEMENT_STARTED: ("placement", True, "placement_id"),
    PLACEMENT_ENDED: ("placement", False, "placement_id"),
}
_UNPLANNED_PLACEMENT_REASONS = frozenset({"QUIT", "DISMISSED"})


@dataclass(frozen=True, slots=True)
class Fact:
    """One accepted event about a participant, with both of its times.

    `data` is the contract's data object as JSON (dates as ISO strings). `seq` is the
    arrival order; it only breaks ties between facts recorded at the same instant.
    """

    event_id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    data: Mapping[str, Any]
    seq: int = 0

    def __post_init__(self) -> None:
        # Naive datetimes cannot be ordered against aware ones; refuse them where they enter.
        for name in ("occurred_at", "recorded_at"):
            if getattr(self, name).utcoffset() is None:
                raise ValueError(f"fact {self.event_id}: {name} must carry a UTC offset")

    @property
    def order(self) -> tuple[datetime, int, str]:
        """Knowledge order: recorded_at, then arrival, then event_id so ties never depend
        on the order facts were handed over."""
        return (self.recorded_at, self.seq, self.event_id)


@dataclass(frozen=True, slots=True)
class Engagement:
    """A measure or a placement, active on [start, end) (CONTRACT §3).

    `end` is None while no end is known (active however old). `unplanned` says whether
    the end was unplanned: `measure.ended` with status AVBRUTT or reason IKKE_MOTT,
    `placement.ended` with reason QUIT or DISMISSED, or a `participant.dropped_out`.
    """

    kind: EngagementKind
    id: str
    start: datetime
    end: datetime | None
    unplanned: bool

    def active_at(self, instant: datetime) -> bool:
        return self.start <= instant and (self.end is None or instant < self.end)


@dataclass(frozen=True, slots=True)
class JourneySpan:
    """One journey in the contract's sense: opened by a referral or triage, closed by
    `journey.closed`. `opened_at` is None for facts that precede any known opening."""

    opened_at: datetime | None
    closed_at: datetime | None


class KnownJourney:
    """What a set of known facts says about a participant, in the words of CONTRACT §3.

    Readings taken where the contract is silent:
    - two starts (or two ends) of one engagement: the earliest `occurred_at` counts, so
      the answer does not depend on the order they arrived in;
    - an end whose start is not known is ignored until the start is known;
    - a dropout ends an engagement only if it is active then: at a tie with the
      engagement's own end, the own end (and its planned/unplanned status) stands;
    - with no opening known, facts belong to one journey that is open unless closed; a
      closing and an opening at the same instant close the old journey first.
    """

    __slots__ = (
        "_closings",
        "_derived",
        "_dropouts",
        "_ends",
        "_engagements",
        "_openings",
        "_spans",
        "_stale",
        "_starts",
    )

    def __init__(self, facts: Iterable[Fact] = ()) -> None:
        self._starts: dict[tuple[EngagementKind, str], datetime] = {}
        self._ends: dict[tuple[EngagementKind, str], tuple[datetime, bool]] = {}
        self._dropouts: list[datetime] = []
        self._openings: list[datetime] = []
        self._closings: list[datetime] = []
        # Rules ask after every new fact; only the engagements a fact touched are derived again.
        self._derived: dict[tuple[EngagementKind, str], Engagement] = {}
        self._stale: set[tuple[EngagementKind, str]] = set()
        self._engagements: tuple[Engagement, ...] | None = None
        self._spans: tuple[JourneySpan, ...] | None = None
        for fact in facts:
            self.add(fact)

    def add(self, fact: Fact) -> None:
        """Take one more fact into account; types the journey does not read are ignored."""
        at = fact.occurred_at
        engagement = _ENGAGEMENT_EVENTS.get(fact.type)
        if engagement is not None:
            kind, is_start, id_field = engagement
            engagement_id = fact.data.get(id_field)
            if not isinstance(engagement_id, str):
                return  # validated at the edge; a fact without its id names no engagement
            key = (kind, engagement_id)
            if is_start:
                if key not in self._starts or at < self._starts[key]:
                    self._starts[key] = at
            elif key not in self._ends or at < self._ends[key][0]:
                self._ends[key] = (at, _is_unplanned_end(fact))
            self._stale.add(key)
            self._engagements = None
        elif fact.type == DROPPED_OUT:
            insort(self._dropouts, at)
            self._stale.update(self._starts)
            self._engagements = None
        elif fact.type in (REFERRED, TRIAGED):
            insort(self._openings, at)
            self._spans = None
        elif fact.type == JOURNEY_CLOSED:
            insort(self._closings, at)
            self._spans = None

    def engagements(self) -> tuple[Engagement, ...]:
        """Every engagement with a known start, ordered by start, then kind and id."""
        if self._engagements is None:
            for key in self._stale:
                if key in self._starts:
                    self._derived[key] = self._engagement(key)
            self._stale.clear()
            self._engagements = tuple(
                sorted(self._derived.values(), key=lambda e: (e.start, e.kind, e.id))
            )
        return self._engagements

    def _engagement(self, key: tuple[EngagementKind, str]) -> Engagement:
        start = self._starts[key]
        end, unplanned = self._ends.get(key, (None, False))
        # The first dropout at or after the start, if it comes before the engagement's own
        # end, is what ended it.
        i = bisect_left(self._dropouts, start)
        if i < len(self._dropouts) and (end is None or self._dropouts[i] < end):
            end, unplanned = self._dropouts[i], True
        return Engagement(kind=key[0], id=key[1], start=start, end=end, unplanned=unplanned)

    def spans(self) -> tuple[JourneySpan, ...]:
        """The participant's journeys, oldest first."""
        if self._spans is None:
            self._spans = _spans(self._openings, self._closings)
        return self._spans

    def journey_at(self, instant: datetime) -> JourneySpan | None:
        """The journey an instant belongs to: the latest opened at or before it (an instant
        before every opening belongs to the first), None when no journey is known."""
        spans = self.spans()
        if not spans:
            return None
        opened = [s.opened_at for s in spans if s.opened_at is not None]
        offset = len(spans) - len(opened)  # the span with no known opening comes first
        i = bisect_right(opened, instant) + offset
        return spans[max(i - 1, 0)]

    @property
    def closed_at(self) -> datetime | None:
        """When the current (latest) journey closed, or None while it is open."""
        spans = self.spans()
        return spans[-1].closed_at if spans else None


def _is_unplanned_end(fact: Fact) -> bool:
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
