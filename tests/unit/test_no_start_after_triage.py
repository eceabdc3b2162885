"""NO_START_AFTER_TRIAGE (CONTRACT §4): nothing active within 30 days of the first triage.

Every expected value is worked out by hand from the contract: a journey triaged on day 0
with nothing active in [day 0, day 30] raises on day 30. The subject is the journey,
`journey:` and the instant it opened.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.kernel.settings import RuleSettings
from services.outcomes.domain import Fact
from services.outcomes.journey import Journey
from services.outcomes.rules import Alert, Resolution, evaluate
from services.outcomes.rules.gaps import NO_START_AFTER_TRIAGE
from services.outcomes.rules.walk import walk
from tests.unit.rule_properties import (
    DrawnFacts,
    check_arrival_order_and_redelivery_change_nothing,
    check_following_next_change_agrees_with_one_evaluation,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = RuleSettings()
MINUTE = 1 / (24 * 60)
_ids = count()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def fact(type_: str, at: float, recorded: float | None = None, **data: Any) -> Fact:
    return Fact(f"e{next(_ids)}", type_, day(at), day(at if recorded is None else recorded), data)


def triaged(at: float, recorded: float | None = None) -> Fact:
    return fact(
        "participant.triaged",
        at,
        recorded,
        need_group="GODE_MULIGHETER",
        main_goal="SKAFFE_ARBEID",
        needs_coordinator=False,
        org_unit="0301",
    )


def referred(at: float) -> Fact:
    return fact("participant.referred", at, channel="nav", org_unit="0301")


def started(m: str, at: float, recorded: float | None = None) -> Fact:
    return fact("measure.started", at, recorded, measure_id=m, measure_code="AVKLARING")


def ended(m: str, at: float, recorded: float | None = None) -> Fact:
    return fact("measure.ended", at, recorded, measure_id=m, status="FULLFORT", reason="FERDIG")


def placed(p: str, at: float, recorded: float | None = None) -> Fact:
    return fact("placement.started", at, recorded, placement_id=p, kind="TEMPORARY", hours_pct=50)


def closed(at: float, recorded: float | None = None) -> Fact:
    return fact("journey.closed", at, recorded, reason="MOVED")


def alerts(facts: list[Fact], clock: float) -> list[Alert]:
    return walk((NO_START_AFTER_TRIAGE,), Journey("p1", facts), day(clock), RULES)[0]


def change(facts: list[Fact], clock: float) -> datetime | None:
    return walk((NO_START_AFTER_TRIAGE,), Journey("p1", facts), day(clock), RULES)[1]


def no_start(
    opened: float,
    triage: float,
    raised: float,
    resolved: float | None = None,
    how: Resolution | None = None,
) -> Alert:
    subject = f"journey:{day(opened).isoformat()}"
    return Alert(
        rule="NO_START_AFTER_TRIAGE",
        subject=subject,
        condition_key=f"NO_START_AFTER_TRIAGE:{subject}:{day(triage).isoformat()}",
        raised_at=day(raised),
        status="open" if resolved is None else "resolved",
        resolved_at=None if resolved is None else day(resolved),
        resolution=how,
    )


# --- raised -------------------------------------------------------------------------------


def test_a_triage_with_nothing_started_raises_after_thirty_days() -> None:
    (alert,) = alerts([triaged(0)], clock=60)

    assert alert == no_start(opened=0, triage=0, raised=30)
    assert alert.subject == "journey:2025-03-03T09:00:00+00:00"
    assert alert.condition_key == (
        "NO_START_AFTER_TRIAGE:journey:2025-03-03T09:00:00+00:00:2025-03-03T09:00:00+00:00"
    )


def test_it_is_one_of_the_rules_evaluate_runs() -> None:
    raised, upcoming = evaluate(Journey("p1", [triaged(0)]), day(10), RULES)

    assert raised == []
    assert upcoming == day(30)
    everything = evaluate(Journey("p1", [triaged(0)]), day(60), RULES)[0]
    assert [a for a in everything if a.rule == "NO_START_AFTER_TRIAGE"] == alerts(
        [triaged(0)], clock=60
    )


def test_the_journey_opened_by_a_referral_is_the_subject_and_the_triage_is_t() -> None:
    assert alerts([referred(-5), triaged(0)], clock=60) == [no_start(-5, triage=0, raised=30)]


def test_only_the_first_triage_of_a_journey_counts() -> None:
    assert alerts([triaged(0), triaged(20)], clock=90) == [no_start(0, triage=0, raised=30)]


def test_before_the_deadline_nothing_is_raised_and_the_deadline_is_the_next_change() -> None:
    assert alerts([triaged(0)], clock=30 - MINUTE) == []
    assert change([triaged(0)], clock=1) == day(30)
    assert change([triaged(0)], clock=30) is None


# --- the window [T, T+30d] ------------------------------------------------------------------


@pytest.mark.parametrize("start", [0, 1, 29, 30])
def test_an_engagement_starting_inside_the_closed_window_means_no_alert(start: float) -> None:
    assert alerts([triaged(0), started("m1", start)], clock=90) == []
    assert alerts([triaged(0), placed("p-1", start)], clock=90) == []


def test_an_engagement_already_running_at_the_triage_counts() -> None:
    assert alerts([started("m1", -40), triaged(0)], clock=90) == []


def test_an_engagement_that_ended_exactly_at_the_triage_was_not_active_in_the_window() -> None:
    facts = [started("m1", -40), ended("m1", 0), triaged(0)]

    assert alerts(facts, clock=90) == [no_start(0, triage=0, raised=30)]
    assert alerts([started("m1", -40), ended("m1", MINUTE), triaged(0)], clock=90) == []


def test_one_ended_by_a_dropout_before_the_triage_does_not_count() -> None:
    facts = [started("m1", -40), fact("participant.dropped_out", -1, reason="DECLINED")]

    assert alerts([*facts, triaged(0)], clock=90) == [no_start(0, triage=0, raised=30)]


def test_a_start_just_after_the_window_resolves_the_alert_when_it_starts() -> None:
    facts = [triaged(0), started("m1", 30 + MINUTE)]

    assert alerts(facts, clock=90) == [
        no_start(0, triage=0, raised=30, resolved=30 + MINUTE, how="engagement_started")
    ]


# --- knowledge time ---------------------------------------------------------------------------


def test_an_engagement_in_the_window_known_late_resolves_with_late_information() -> None:
    facts = [triaged(0), started("m1", 10, recorded=35)]

    assert alerts(facts, clock=34) == [no_start(0, triage=0, raised=30)]
    assert change(facts, clock=31) == day(35)
    assert alerts(facts, clock=90) == [
        no_start(0, triage=0, raised=30, resolved=35, how="late_information")
    ]


def test_a_triage_known_only_after_its_deadline_raises_at_once() -> None:
    assert alerts([triaged(0, recorded=40)], clock=90) == [no_start(0, triage=0, raised=40)]


def test_a_later_start_known_late_resolves_when_it_is_known() -> None:
    facts = [triaged(0), started("m1", 40, recorded=45)]

    assert alerts(facts, clock=90) == [
        no_start(0, triage=0, raised=30, resolved=45, how="engagement_started")
    ]


def test_a_start_planned_ahead_of_the_deadline_resolves_when_it_happens() -> None:
    facts = [triaged(0), started("m1", 40, recorded=5)]

    assert alerts(facts, clock=35) == [no_start(0, triage=0, raised=30)]
    assert change(facts, clock=35) == day(40)
    assert alerts(facts, clock=90) == [
        no_start(0, triage=0, raised=30, resolved=40, how="engagement_started")
    ]


def test_an_earlier_triage_known_late_is_a_new_condition() -> None:
    # Known first: triage on day 10 (deadline day 40). On day 45 a triage on day 0 becomes
    # known: the first triage was on day 0, and the journey opened then.
    facts = [triaged(10), triaged(0, recorded=45)]

    assert alerts(facts, clock=90) == [
        no_start(10, triage=10, raised=40, resolved=45, how="late_information"),
        no_start(0, triage=0, raised=45),
    ]


# --- the journey ------------------------------------------------------------------------------


@pytest.mark.parametrize(("occurred", "recorded"), [(10, 10), (20, 30), (29, 29)])
def test_no_alert_for_a_journey_closed_by_the_deadline(occurred: float, recorded: float) -> None:
    assert alerts([triaged(0), closed(occurred, recorded)], clock=90) == []


def test_a_closing_after_the_deadline_resolves_the_alert() -> None:
    assert alerts([triaged(0), closed(40)], clock=90) == [
        no_start(0, triage=0, raised=30, resolved=40, how="journey_closed")
    ]


def test_each_journey_has_its_own_first_triage() -> None:
    facts = [triaged(0), started("m1", 5), ended("m1", 8), closed(10)]
    facts += [referred(40), triaged(45)]

    assert alerts(facts, clock=120) == [no_start(40, triage=45, raised=75)]


# --- one condition, one alert -----------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [referred(-1), triaged(0), started("m1", 10, recorded=35), triaged(50)]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=3), seq=9) for f in facts]

    expected = alerts(facts, clock=90)
    assert len(expected) == 1
    assert alerts(facts + redelivered, clock=90) == expected
    assert alerts(redelivered[::-1] + facts, clock=90) == expected


# --- properties -------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Triages, referrals, closings and engagements, each recorded at its own minute."""
    drawn = DrawnFacts(day)
    make = drawn.make

    delays = st.integers(min_value=-3, max_value=40)
    for _ in range(draw(st.integers(1, 3))):
        make("participant.triaged", draw(st.integers(0, 100)), draw(delays.map(abs)))
    if draw(st.booleans()):
        make("participant.referred", draw(st.integers(-10, 60)), 0)
    for n in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["measure", "placement"]))
        start = draw(st.integers(-30, 150))
        make(f"{kind}.started", start, draw(delays), **{f"{kind}_id": f"x{n}"})
        if draw(st.booleans()):
            end = start + draw(st.integers(0, 40))
            make(f"{kind}.ended", end, draw(delays.map(abs)), **{f"{kind}_id": f"x{n}"})
    if draw(st.booleans()):
        make("journey.closed", draw(st.integers(0, 160)), draw(delays), reason="OTHER")
    return drawn.facts


clocks = st.integers(min_value=-5, max_value=220).map(lambda d: day(d) + timedelta(hours=7))


@settings(max_examples=200, deadline=None)
@given(journeys(), clocks, st.randoms(use_true_random=False))
def test_arrival_order_and_redelivery_change_nothing(
    facts: list[Fact], clock: datetime, rnd: random.Random
) -> None:
    check_arrival_order_and_redelivery_change_nothing(facts, clock, rnd, RULES)


@settings(max_examples=150, deadline=None)
@given(journeys(), clocks)
def test_following_next_change_agrees_with_one_evaluation_at_the_end(
    facts: list[Fact], until: datetime
) -> None:
    check_following_next_change_agrees_with_one_evaluation(facts, until, day(-10), RULES)
