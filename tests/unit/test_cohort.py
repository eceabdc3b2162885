"""The synthetic cohort generator: contract-shaped events, deterministic, in recorded_at
order, with broken lines where asked for. (The handover gaps it says it holds:
`test_cohort_gaps.py`.)

The checks read the events themselves, with their own copy of the contract's table
(CONTRACT §2), never the generator's internals.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
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


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(1_500, seed=7, start=START, end=END)


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
