"""The synthetic cohort generator holds exactly the handover gaps it says it holds.

The checks read the events themselves, with their own reading of HANDOVER_GAP
(CONTRACT §3, §4), never the generator's internals, and replay them through the rules.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.cohort import Cohort, Event, generate_cohort

OSLO = ZoneInfo("Europe/Oslo")
START, END = date(2023, 1, 1), date(2025, 12, 31)
UNTIL = datetime(2026, 1, 1, tzinfo=OSLO)

# -- HANDOVER_GAP, read from the events (CONTRACT §3, §4) --------------------------------


# CONTRACT §3: measures ended AVBRUTT or IKKE_MOTT, placements QUIT or DISMISSED.
UNPLANNED_REASONS = {"IKKE_MOTT", "QUIT", "DISMISSED"}


@dataclass
class Engagement:
    engagement_id: str
    start: datetime
    start_recorded: datetime
    end: datetime | None = None
    end_recorded: datetime | None = None
    unplanned: bool = False


@dataclass
class Person:
    engagements: dict[str, Engagement] = field(default_factory=dict)
    # (occurred, recorded, opens): referrals open a journey, journey.closed closes it.
    journey_marks: list[tuple[datetime, datetime, bool]] = field(default_factory=list)


@dataclass(frozen=True)
class DropPoint:
    """The person's active engagements drop to zero at `ended_at`."""

    subject: str
    ended_at: datetime
    unplanned: bool
    deadline: datetime
    known_at: datetime  # when every end up to `ended_at` was recorded
    successors: tuple[Engagement, ...]  # active at some time in (ended_at, deadline]
    closed: bool  # the journey is closed at the deadline
    covered_in_time: bool  # a successor or the closing was recorded by the deadline


def people(events: list[Event]) -> dict[str, Person]:
    by_person: dict[str, Person] = defaultdict(Person)
    for event in sorted(events, key=lambda e: datetime.fromisoformat(e["occurred_at"])):
        person = by_person[event["person"]]
        occurred, recorded = (
            datetime.fromisoformat(event["occurred_at"]),
            datetime.fromisoformat(event["recorded_at"]),
        )
        data, kind = event["data"], event["type"]
        if kind in ("measure.started", "placement.started"):
            key = data.get("measure_id") or data["placement_id"]
            person.engagements[key] = Engagement(key, occurred, recorded)
        elif kind in ("measure.ended", "placement.ended"):
            engagement = person.engagements[data.get("measure_id") or data["placement_id"]]
            if engagement.end is None:
                engagement.end, engagement.end_recorded = occurred, recorded
                engagement.unplanned = (
                    data.get("status") == "AVBRUTT" or data["reason"] in UNPLANNED_REASONS
                )
        elif kind == "participant.dropped_out":
            for engagement in person.engagements.values():
                if engagement.start <= occurred and engagement.end is None:
                    engagement.end, engagement.end_recorded = occurred, recorded
                    engagement.unplanned = True
        elif kind == "participant.referred":
            person.journey_marks.append((occurred, recorded, True))
        elif kind == "journey.closed":
            person.journey_marks.append((occurred, recorded, False))
    return by_person


def drop_points(person: Person) -> list[DropPoint]:
    engagements = list(person.engagements.values())
    points = []
    for ended_at in sorted({e.end for e in engagements if e.end is not None}):
        if any(e.start <= ended_at and (e.end is None or e.end > ended_at) for e in engagements):
            continue
        ending = [e for e in engagements if e.end == ended_at]
        unplanned = any(e.unplanned for e in ending)
        deadline = ended_at + timedelta(days=7 if unplanned else 14)
        successors = tuple(e for e in engagements if ended_at < e.start <= deadline)
        marks = [mark for mark in person.journey_marks if mark[0] <= deadline]
        closed = bool(marks) and not marks[-1][2]
        known_by_deadline = [mark for mark in marks if mark[1] <= deadline]
        points.append(
            DropPoint(
                subject=ending[0].engagement_id,
                ended_at=ended_at,
                unplanned=unplanned,
                deadline=deadline,
                known_at=max(
                    e.end_recorded
                    for e in engagements
                    if e.end is not None and e.end <= ended_at and e.end_recorded
                ),
                successors=successors,
                closed=closed,
                covered_in_time=any(e.start_recorded <= deadline for e in successors)
                or (bool(known_by_deadline) and not known_by_deadline[-1][2]),
            )
        )
    return points


ENDS = ("measure.ended", "placement.ended", "participant.dropped_out")


def raised_in_replay(events: list[Event], until: datetime) -> dict[tuple[str, datetime], datetime]:
    """HANDOVER_GAP as a replay raises it, on knowledge time (CONTRACT §3): a gap after
    the end at E is due at D = E + 7 or 14 days and judged on what was recorded by D,
    or, if an end it rests on was recorded only later, at that moment. Returns when
    each (subject, E) is first raised."""
    by_person: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_person[event["person"]].append(event)
    raised: dict[tuple[str, datetime], datetime] = {}
    for history in by_person.values():
        moments = set()
        for event in history:
            if event["type"] in ENDS:
                ended, recorded = (
                    datetime.fromisoformat(event["occurred_at"]),
                    datetime.fromisoformat(event["recorded_at"]),
                )
                for window in (timedelta(days=7), timedelta(days=14)):
                    moments.add(max(ended + window, recorded))
        for moment in sorted(m for m in moments if m < until):
            known = [e for e in history if datetime.fromisoformat(e["recorded_at"]) <= moment]
            for view in people(known).values():
                for point in drop_points(view):
                    due = point.deadline <= moment
                    if due and not point.successors and not point.closed:
                        raised.setdefault((point.subject, point.ended_at), moment)
    return raised


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(1_500, seed=7, start=START, end=END)


@pytest.fixture(scope="module")
def by_person(cohort: Cohort) -> dict[str, Person]:
    return people(cohort.events)


# -- handover gaps ---------------------------------------------------------------------


def test_gap_share_controls_the_number_of_injected_gaps(cohort: Cohort) -> None:
    injected = [gap for gap in cohort.injected_gaps if gap.cause == "handover"]
    assert len(injected) == round(0.15 * 1_500)
    assert generate_cohort(300, seed=7, start=START, end=END, gap_share=0).injected_gaps == []


def test_nothing_starts_within_the_window_after_an_injected_gap(
    cohort: Cohort, by_person: dict[str, Person]
) -> None:
    owner = {
        e["data"]["measure_id"]: e["person"]
        for e in cohort.events
        if e["type"] == "measure.started"
    }
    for gap in cohort.injected_gaps:
        person = by_person[owner[gap.measure_id]]
        ended = person.engagements[gap.measure_id]
        assert ended.end == gap.ended_at
        assert gap.deadline == gap.ended_at + timedelta(days=7 if gap.unplanned else 14)
        for engagement in person.engagements.values():
            assert not gap.ended_at < engagement.start <= gap.deadline, gap
            # ...and nothing else is still active then: the gap really begins there.
            assert engagement.start > gap.ended_at or (
                engagement.end is not None and engagement.end <= gap.ended_at
            )
        marks = [mark for mark in person.journey_marks if mark[0] <= gap.deadline]
        assert marks[-1][2], "the journey is open when the gap falls due"


def test_the_listed_gaps_are_exactly_the_gaps_in_the_events(
    cohort: Cohort, by_person: dict[str, Person]
) -> None:
    found = {}
    for person in by_person.values():
        for point in drop_points(person):
            if point.deadline >= UNTIL or point.known_at >= UNTIL:
                continue  # not due, or not known, by the end of the file
            if not point.successors and not point.closed:
                found[point.subject] = point
            else:
                # Not even a transient alert: what closes the gap is known in time.
                assert point.covered_in_time, point
    listed = {gap.measure_id: gap for gap in cohort.handover_gaps}
    assert set(found) == set(listed)
    for subject, point in found.items():
        gap = listed[subject]
        assert (gap.ended_at, gap.unplanned, gap.deadline) == (
            point.ended_at,
            point.unplanned,
            point.deadline,
        )
        assert gap.raised_at == max(point.deadline, point.known_at)
    causes = Counter(gap.cause for gap in cohort.handover_gaps)
    assert causes["handover"] > 0
    assert causes["dropout"] > 0
    assert any(gap.raised_at > gap.deadline for gap in cohort.handover_gaps), "a late end"


def test_a_replay_raises_the_listed_gaps_and_nothing_else(cohort: Cohort) -> None:
    raised = raised_in_replay(cohort.events, UNTIL)
    listed = {(gap.measure_id, gap.ended_at): gap.raised_at for gap in cohort.handover_gaps}
    assert raised == listed


def test_recent_gaps_fall_due_just_after_now() -> None:
    now = datetime(2025, 11, 20, 14, 3, 7, tzinfo=OSLO)
    span = (timedelta(seconds=5), timedelta(seconds=60))
    cohort = generate_cohort(
        400, seed=11, start=START, end=END, now=now, recent_share=0.02, recent_span=span
    )
    recent = [gap for gap in cohort.injected_gaps if gap.cause == "recent"]
    assert len(recent) == 8
    for gap in recent:
        assert now + span[0] <= gap.deadline <= now + span[1]
    assert all(datetime.fromisoformat(e["recorded_at"]) <= now for e in cohort.events)
    by_person = people(cohort.events)
    owner = {
        e["data"]["measure_id"]: e["person"]
        for e in cohort.events
        if e["type"] == "measure.started"
    }
    for gap in recent:
        person = by_person[owner[gap.measure_id]]
        assert person.engagements[gap.measure_id].end == gap.ended_at
        assert [p.subject for p in drop_points(person)][-1] == gap.measure_id
        assert all(e.start <= gap.ended_at for e in person.engagements.values())
    # The other listed gaps were all due by now: the recent ones are what the wall clock adds.
    assert all(gap.deadline <= now for gap in cohort.handover_gaps if gap.cause != "recent")
