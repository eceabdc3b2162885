"""The synthetic cohort generator: contract-shaped events, deterministic, in recorded_at
order, and with exactly the handover gaps it says it holds.

The checks read the events themselves, with their own copy of the contract's table
(CONTRACT §2) and their own reading of HANDOVER_GAP (CONTRACT §3, §4), never the
generator's internals.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.cohort import Cohort, Event, generate, generate_cohort, write_jsonl
from services.kernel.events import InvalidEvent, parse_edge_event
from services.kernel.ids import validate_national_id, validate_orgnr

OSLO = ZoneInfo("Europe/Oslo")
START, END = date(2023, 1, 1), date(2025, 12, 31)
UNTIL = datetime(2026, 1, 1, tzinfo=OSLO)

# -- CONTRACT §2, written out ---------------------------------------------------------

TEXT, BOOL, DATE, ORGNR, PERCENT, EVIDENCE = "text", "bool", "date", "orgnr", "pct", "evidence"
MEASURE_SYSTEMS = {
    "ARBEIDSFORBEREDENDE_TRENING": "nav",
    "ARBEIDSTRENING": "nav",
    "OPPFOLGING": "nav",
    "AVKLARING": "nav",
    "JOBBKLUBB": "nav",
    "GRUPPE_ARBEIDSMARKEDSOPPLAERING": "nav",
    "INDIVIDUELL_JOBBSTOTTE": "nav",
    "MENTOR": "nav",
    "MIDLERTIDIG_LONNSTILSKUDD": "nav",
    "NORSKOPPLAERING": "vo",
    "GRUNNSKOLE_VOKSNE": "vo",
    "FAG_OG_YRKESOPPLAERING": "vo",
    "INTRODUKSJONSPROGRAM": "kommune",
    "KVALIFISERINGSPROGRAM": "kommune",
    "ARBEIDSPRAKSIS_KOMMUNE": "kommune",
}
CONTRACT: dict[str, dict[str, object]] = {
    "participant.referred": {
        "channel": {"nav", "kommune", "vo", "self", "other"},
        "org_unit": TEXT,
    },
    "participant.triaged": {
        "need_group": {
            "GODE_MULIGHETER",
            "TRENGER_VEILEDNING",
            "TRENGER_VEILEDNING_NEDSATT_ARBEIDSEVNE",
            "JOBBE_DELVIS",
            "LITEN_MULIGHET_TIL_A_JOBBE",
        },
        "main_goal": {"SKAFFE_ARBEID", "BEHOLDE_ARBEID", "OKE_DELTAKELSE"},
        "needs_coordinator": BOOL,
        "org_unit": TEXT,
    },
    "coordinator.assigned": {"coordinator_id": TEXT, "org_unit": TEXT},
    "coordinator.unassigned": {"coordinator_id": TEXT, "reason": TEXT},
    "measure.started": {
        "measure_id": TEXT,
        "measure_code": set(MEASURE_SYSTEMS),
        "provider": ORGNR,
    },
    "measure.extended": {"measure_id": TEXT, "planned_end": DATE},
    "measure.ended": {
        "measure_id": TEXT,
        "status": {"FULLFORT", "HAR_SLUTTET", "AVBRUTT", "IKKE_AKTUELL"},
        "reason": {
            "FATT_JOBB",
            "SYK",
            "TRENGER_ANNEN_STOTTE",
            "FIKK_IKKE_PLASS",
            "IKKE_MOTT",
            "UTDANNING",
            "ANNET",
            "AVLYST_KONTRAKT",
            "KRAV_IKKE_OPPFYLT",
            "FERDIG",
        },
    },
    "placement.started": {
        "placement_id": TEXT,
        "employer": ORGNR,
        "kind": {"PERMANENT", "TEMPORARY", "SUBSIDISED", "APPRENTICESHIP"},
        "hours_pct": PERCENT,
    },
    "placement.ended": {
        "placement_id": TEXT,
        "reason": {"CONTRACT_ENDED", "QUIT", "DISMISSED", "CONVERTED", "OTHER"},
    },
    "participant.dropped_out": {"reason": {"LOST_CONTACT", "DECLINED", "OTHER"}},
    "followup.six_month_checked": {
        "placement_id": TEXT,
        "status": {
            "EMPLOYED_SAME",
            "EMPLOYED_OTHER",
            "IN_EDUCATION",
            "NOT_EMPLOYED",
            "UNREACHABLE",
        },
        "evidence": EVIDENCE,
    },
    "journey.closed": {
        "reason": {"GOAL_REACHED", "MOVED", "DECEASED", "TRANSFERRED_OUT", "OTHER"},
    },
}
OPTIONAL = {"measure.started": {"planned_end": DATE}}
SYSTEMS = {"nav", "kommune", "vo", "employer", "fylke"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")


def conforms(value: object, rule: object) -> bool:
    if isinstance(rule, set):
        return value in rule
    if rule == TEXT:
        return isinstance(value, str) and value != ""
    if rule == BOOL:
        return isinstance(value, bool)
    if rule == DATE:
        return isinstance(value, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))
    if rule == ORGNR:
        return isinstance(value, str) and validate_orgnr(value) == value
    if rule == PERCENT:
        return isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= 100
    assert rule == EVIDENCE
    return (
        isinstance(value, dict)
        and value.get("source") in {"register", "participant", "employer"}
        and conforms(value.get("obtained_at"), DATE)
    )


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


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
    for event in sorted(events, key=lambda e: instant(e["occurred_at"])):
        person = by_person[event["person"]]
        occurred, recorded = instant(event["occurred_at"]), instant(event["recorded_at"])
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
                ended, recorded = instant(event["occurred_at"]), instant(event["recorded_at"])
                for window in (timedelta(days=7), timedelta(days=14)):
                    moments.add(max(ended + window, recorded))
        for moment in sorted(m for m in moments if m < until):
            known = [e for e in history if instant(e["recorded_at"]) <= moment]
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


# -- shape -----------------------------------------------------------------------------


def test_every_event_has_the_fields_its_type_needs(cohort: Cohort) -> None:
    assert len(cohort.events) > 10 * 1_500 / 2
    for event in cohort.events:
        required, optional = CONTRACT[event["type"]], OPTIONAL.get(event["type"], {})
        data = event["data"]
        for name, rule in required.items():
            assert name in data, (event["type"], name)
            assert conforms(data[name], rule), (event["type"], name, data[name])
        for name, rule in optional.items():
            assert name not in data or conforms(data[name], rule), (event["type"], name)
        assert set(data) <= set(required) | set(optional), event["type"]


def test_every_type_and_measure_code_occurs(cohort: Cohort) -> None:
    assert {e["type"] for e in cohort.events} == set(CONTRACT)
    codes = {e["data"]["measure_code"] for e in cohort.events if e["type"] == "measure.started"}
    assert codes == set(MEASURE_SYSTEMS)


def test_envelope_follows_the_contract(cohort: Cohort) -> None:
    ids = [event["event_id"] for event in cohort.events]
    assert len(set(ids)) == len(ids)
    for event in cohort.events:
        assert str(uuid.UUID(event["event_id"])) == event["event_id"]
        for name in ("occurred_at", "recorded_at"):
            at = instant(event[name])
            assert RFC3339.match(event[name]), event[name]
            # The offset is Oslo's at that moment: +01:00 in winter, +02:00 in summer.
            assert at.utcoffset() == at.astimezone(OSLO).utcoffset(), event[name]
        source = event["source"]
        assert source["system"] in SYSTEMS
        if source["system"] == "kommune":
            assert re.fullmatch(r"\d{4}", source["org"]), source
        else:
            assert validate_orgnr(source["org"]) == source["org"]


def test_every_person_is_a_valid_synthetic_national_id(cohort: Cohort) -> None:
    persons = {event["person"] for event in cohort.events}
    assert len(persons) >= 1_400  # a few referred at the very end are recorded after it
    for person in persons:
        assert validate_national_id(person) == person
        assert int(person[2:4]) > 40, "month +40 or +80 marks a synthetic number"


def test_every_event_passes_the_platforms_own_validation(cohort: Cohort) -> None:
    for event in cohort.events:
        parse_edge_event(json.dumps(event))


def test_measures_come_from_the_system_that_runs_them(cohort: Cohort) -> None:
    source_of: dict[str, dict[str, str]] = {}
    for event in cohort.events:
        data = event["data"]
        if event["type"] == "measure.started":
            assert event["source"]["system"] == MEASURE_SYSTEMS[data["measure_code"]]
            source_of[data["measure_id"]] = event["source"]
        elif event["type"] in ("measure.extended", "measure.ended"):
            assert event["source"] == source_of[data["measure_id"]]
        elif event["type"].startswith(("placement.", "followup.")):
            assert event["source"]["system"] == "employer"


# -- time ------------------------------------------------------------------------------


def test_events_are_sorted_by_recorded_at(cohort: Cohort) -> None:
    recorded = [instant(event["recorded_at"]) for event in cohort.events]
    assert recorded == sorted(recorded)


def test_nothing_is_recorded_after_the_window(cohort: Cohort) -> None:
    assert cohort.until == UNTIL
    start = datetime(2023, 1, 1, tzinfo=OSLO)
    for event in cohort.events:
        assert start <= instant(event["recorded_at"]) < UNTIL


def test_some_are_late_and_some_recorded_before_they_happen(cohort: Cohort) -> None:
    lags = [instant(e["recorded_at"]) - instant(e["occurred_at"]) for e in cohort.events]
    ahead = sum(lag < timedelta(0) for lag in lags) / len(lags)
    late = sum(lag > timedelta(days=14) for lag in lags) / len(lags)
    within_two_days = sum(timedelta(0) <= lag <= timedelta(days=3) for lag in lags) / len(lags)
    assert 0.02 < ahead < 0.15
    assert 0.005 < late < 0.05
    assert within_two_days > 0.8


def test_ends_come_after_their_starts(cohort: Cohort) -> None:
    started: dict[str, Event] = {}
    checked = 0
    for event in cohort.events:  # in recorded_at order: the start is already known
        data = event["data"]
        if event["type"] in ("measure.started", "placement.started"):
            started[data.get("measure_id") or data["placement_id"]] = event
        elif event["type"] in (
            "measure.ended",
            "measure.extended",
            "placement.ended",
            "followup.six_month_checked",
        ):
            start = started[data.get("measure_id") or data["placement_id"]]
            assert instant(event["occurred_at"]) > instant(start["occurred_at"])
            assert event["person"] == start["person"]
            checked += 1
    assert checked > 1_000


# -- people ----------------------------------------------------------------------------


def test_about_half_need_a_coordinator_and_caseloads_stay_capped(cohort: Cohort) -> None:
    triaged = [e for e in cohort.events if e["type"] == "participant.triaged"]
    share = sum(e["data"]["needs_coordinator"] for e in triaged) / len(triaged)
    assert 0.4 < share < 0.6
    caseload: dict[str, set[str]] = defaultdict(set)
    for event in cohort.events:
        if event["type"] == "coordinator.assigned":
            assert re.fullmatch(r"c-\d{3,}", event["data"]["coordinator_id"])
            caseload[event["data"]["coordinator_id"]].add(event["person"])
    assert max(len(people) for people in caseload.values()) <= 25


def test_outcomes_are_realistic(cohort: Cohort) -> None:
    ends = Counter(
        (e["data"]["status"], e["data"]["reason"])
        for e in cohort.events
        if e["type"] == "measure.ended"
    )
    total = sum(ends.values())
    completed = sum(n for (status, _), n in ends.items() if status == "FULLFORT")
    assert completed / total > 0.5
    assert ends["AVBRUTT", "IKKE_MOTT"] > 0
    assert sum(n for (_, reason), n in ends.items() if reason == "FATT_JOBB") > 0
    exits = Counter(e["data"]["reason"] for e in cohort.events if e["type"] == "placement.ended")
    assert exits["QUIT"] + exits["DISMISSED"] > 0
    closings = Counter(e["data"]["reason"] for e in cohort.events if e["type"] == "journey.closed")
    assert closings["GOAL_REACHED"] > 0
    assert closings["MOVED"] > 0
    referred = {e["person"] for e in cohort.events if e["type"] == "participant.referred"}
    placed = {e["person"] for e in cohort.events if e["type"] == "placement.started"}
    assert 0.15 < len(placed) / len(referred) < 0.5


def test_most_placements_are_checked_about_six_months_in(cohort: Cohort) -> None:
    started = {
        e["data"]["placement_id"]: instant(e["occurred_at"])
        for e in cohort.events
        if e["type"] == "placement.started"
    }
    offsets = [
        instant(e["occurred_at"]) - started[e["data"]["placement_id"]]
        for e in cohort.events
        if e["type"] == "followup.six_month_checked"
    ]
    assert offsets
    assert all(timedelta(days=170) < offset < timedelta(days=200) for offset in offsets)


# -- determinism -----------------------------------------------------------------------


def test_the_same_seed_gives_the_same_cohort() -> None:
    first = generate_cohort(200, seed=3, start=START, end=END, invalid_share=0.01)
    second = generate_cohort(200, seed=3, start=START, end=END, invalid_share=0.01)
    assert first == second
    assert json.dumps(first.events) == json.dumps(second.events)


def test_a_different_seed_gives_a_different_cohort() -> None:
    first = list(generate(200, 3, start=START, end=END))
    second = list(generate(200, 4, start=START, end=END))
    assert first != second
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}


def test_generate_yields_the_cohorts_events() -> None:
    cohort = generate_cohort(100, seed=5, start=START, end=END)
    assert list(generate(100, 5, start=START, end=END)) == cohort.events


def test_write_jsonl_writes_one_event_a_line(tmp_path, cohort: Cohort) -> None:
    path = tmp_path / "events.jsonl"
    assert write_jsonl(path, cohort.events) == len(cohort.events)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == cohort.events


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
    assert all(instant(e["recorded_at"]) <= now for e in cohort.events)
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


# -- broken lines ----------------------------------------------------------------------


def test_invalid_share_adds_that_many_labelled_broken_lines() -> None:
    cohort = generate_cohort(300, seed=13, start=START, end=END, invalid_share=0.05)
    valid = len(cohort.events) - len(cohort.invalid_lines)
    assert len(cohort.invalid_lines) == round(0.05 * valid)
    assert {line.kind for line in cohort.invalid_lines} == {
        "bad_check_digit",
        "hours_pct_zero",
        "missing_data_field",
        "naive_timestamp",
    }
    broken = {line.line: line for line in cohort.invalid_lines}
    for number, event in enumerate(cohort.events, start=1):
        if number in broken:
            assert event["event_id"] == broken[number].event_id
            with pytest.raises(InvalidEvent) as rejected:
                parse_edge_event(json.dumps(event))
            assert rejected.value.field == broken[number].field
        else:
            parse_edge_event(json.dumps(event))
