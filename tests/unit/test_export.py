"""`los export`'s microdata: one row per engagement and per person, as known at `--until`,
pseudonymised under the study's key. Expected rows are worked out by hand from the events."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.outcomes.domain import Fact
from services.outcomes.export import Export, engagement_rows, export
from services.outcomes.journey import Journey, KnownJourney
from tests.unit.replaying import KEY, RULES, day
from tests.unit.rule_cases import ANA, Participant

UNTIL = day(400)
BO = Participant.make(2)


def run(lines: list[str], key: str = KEY) -> Export:
    return export(enumerate(lines, start=1), UNTIL, key, RULES)


def by_id(result: Export) -> dict[str, dict[str, Any]]:
    return {row["engagement_id"]: row for row in result.engagements}


def test_a_measure_row_says_what_started_ended_and_was_planned() -> None:
    lines = [
        ANA.referred(0),
        ANA.started_until("m1", 1, "2025-03-01"),
        ANA.extended("m1", 40, "2025-04-01"),
        ANA.ended("m1", 60, status="AVBRUTT", reason="SYK"),
    ]
    [row] = run(lines).engagements
    assert row == {
        "person": ANA.pseudonym,
        "kind": "measure",
        "system": "nav",
        "engagement_id": "m1",
        "code": "ARBEIDSTRENING",
        "provider": ANA.org,
        "started_at": day(1),
        "ended_at": day(60),
        "ended_by": "measure.ended",
        "unplanned": True,
        "end_status": "AVBRUTT",
        "end_reason": "SYK",
        "planned_end": date(2025, 4, 1),
        "six_month_status": None,
        "six_month_evidence": None,
    }


def test_a_dropout_ends_what_was_active_and_an_active_measure_has_no_end() -> None:
    lines = [
        ANA.referred(0),
        ANA.started("m1", 1),
        ANA.dropped_out(30),
        ANA.started("m2", 50),
    ]
    rows = by_id(run(lines))
    ended = {name: rows["m1"][name] for name in ("ended_at", "ended_by", "unplanned", "end_reason")}
    assert ended == {
        "ended_at": day(30),
        "ended_by": "participant.dropped_out",
        "unplanned": True,
        "end_reason": "LOST_CONTACT",
    }
    still = {
        name: rows["m2"][name] for name in ("ended_at", "ended_by", "unplanned", "planned_end")
    }
    assert still == dict.fromkeys(("ended_at", "ended_by", "unplanned", "planned_end"))


def test_of_two_ends_at_one_instant_the_row_shows_the_unplanned_one_that_counts() -> None:
    # The journey service refuses a second end, so only facts stored otherwise have two.
    def fact(number: int, type_: str, at: float, **data: str) -> Fact:
        return Fact(f"e{number}", type_, day(at), day(at), {"measure_id": "m1", **data}, number)

    journey = Journey(
        "someone",
        [
            fact(1, "measure.started", 1, measure_code="AVKLARING", provider=ANA.org),
            fact(2, "measure.ended", 30, status="FULLFORT", reason="FERDIG"),
            fact(3, "measure.ended", 30, status="AVBRUTT", reason="IKKE_MOTT"),
        ],
    )
    facts = journey.known_at(UNTIL)
    [row] = engagement_rows(journey.participant, facts, KnownJourney(facts))
    ended = (row["unplanned"], row["end_status"], row["end_reason"])
    assert ended == (True, "AVBRUTT", "IKKE_MOTT")


def test_a_placement_row_carries_its_employer_kind_and_six_month_check() -> None:
    lines = [ANA.referred(0), ANA.placed("p1", 10), ANA.left("p1", 100), ANA.checked("p1", 200)]
    [row] = run(lines).engagements
    assert (row["kind"], row["code"], row["provider"]) == ("placement", "PERMANENT", ANA.org)
    assert (row["ended_by"], row["unplanned"], row["end_reason"]) == (
        "placement.ended",
        True,
        "QUIT",
    )
    assert (row["six_month_status"], row["six_month_evidence"]) == ("EMPLOYED_SAME", "register")


def test_a_placement_row_shows_the_latest_known_six_month_check() -> None:
    evidence = {"source": "participant", "obtained_at": "2025-08-01"}
    corrected = {"placement_id": "p1", "status": "NOT_EMPLOYED", "evidence": evidence}
    later = ANA.event("followup.six_month_checked", corrected, 195, recorded=210)
    lines = [ANA.referred(0), ANA.placed("p1", 10), ANA.checked("p1", 200), later]
    [row] = run(lines).engagements
    assert (row["six_month_status"], row["six_month_evidence"]) == ("NOT_EMPLOYED", "participant")


def test_two_sources_measures_with_one_id_are_two_rows() -> None:
    lines = [
        ANA.referred(0),
        ANA.started("m1", 1),
        ANA.event(
            "measure.started",
            {"measure_id": "m1", "measure_code": "INTRODUKSJONSPROGRAM", "provider": ANA.org},
            5,
            system="kommune",
        ),
    ]
    rows = run(lines).engagements
    assert sorted((row["system"], row["code"]) for row in rows) == [
        ("kommune", "INTRODUKSJONSPROGRAM"),
        ("nav", "AVKLARING"),
    ]


def test_what_was_recorded_after_until_is_not_in_the_export() -> None:
    lines = [ANA.referred(0), ANA.started("m1", 1), ANA.ended("m1", 50, recorded=401)]
    [row] = run(lines).engagements
    assert row["ended_at"] is None


def test_a_person_row_sums_up_their_journey() -> None:
    lines = [
        ANA.referred(0),
        ANA.triaged(2, needs=True),
        ANA.triaged(20, needs=False),
        ANA.assigned("c-1", 25),
        ANA.started("m1", 30),
        ANA.ended("m1", 60),
        ANA.placed("p1", 200),
        ANA.closed(300, "GOAL_REACHED"),
    ]
    result = run(lines)
    [person] = result.people
    assert person == {
        "person": ANA.pseudonym,
        "referred_at": day(0),
        "triaged_at": day(2),
        "need_group": "TRENGER_VEILEDNING",
        "main_goal": "SKAFFE_ARBEID",
        "needs_coordinator": False,  # the latest triage
        "coordinator_assigned_at": day(25),
        "first_measure_at": day(30),
        "first_placement_at": day(200),
        "closed_at": day(300),
        "closing_reason": "GOAL_REACHED",
        # NO_COORDINATOR (day 2 + 7, before the assignment on day 25), HANDOVER_GAP after
        # m1 (day 60 + 14) and SIX_MONTH_CHECK_OVERDUE (day 200 + 196; GOAL_REACHED
        # leaves it open).
        "alerts": 3,
    }


def test_the_latest_triage_is_the_latest_in_business_time_not_the_last_known() -> None:
    lines = [ANA.referred(0), ANA.triaged(20, needs=False), ANA.triaged(2, needs=True, recorded=30)]
    [person] = run(lines).people
    assert (person["triaged_at"], person["needs_coordinator"]) == (day(2), False)


def test_the_study_key_decides_the_pseudonyms_and_no_national_id_is_kept() -> None:
    lines = [ANA.referred(0), ANA.started("m1", 1), BO.referred(3), BO.started("m2", 4)]
    result = run(lines, key="another-study")
    people = {row["person"] for row in result.people}
    assert people == {row["person"] for row in result.engagements}
    assert len(people) == 2
    assert not people & {ANA.pseudonym, BO.pseudonym}  # those are under the replay's key
    assert not str(result.engagements + result.people).count(ANA.national_id)


def test_skipped_lines_are_counted_as_the_replay_counts_them() -> None:
    lines = [ANA.referred(0), "{}", ANA.ended("m9", 5)]
    result = run(lines)
    assert (result.replay.invalid, result.replay.held) == (1, 1)
    assert [row["person"] for row in result.people] == [ANA.pseudonym]
