"""MEASURE_CHURN (CONTRACT §4): three short measures ended within a year, no job started.

Every expected value is worked out by hand from the contract: measures of 30 days ending
on days 30, 70 and 110, with no placement, raise on day 110 when the third end is known.
Only a person resolves it (`acknowledged`, in the alert store), so in the rules a churn
alert stays open, and at most one is open per person: a further churn condition is raised
only once the open one is resolved (its journey closes, or it turns out not to hold).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.kernel.settings import RuleSettings
from services.outcomes.domain import Fact
from services.outcomes.journey import Journey
from services.outcomes.rules import Alert, Resolution, evaluate
from services.outcomes.rules.measures import MEASURE_CHURN
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


def started(m: str, at: float, recorded: float | None = None) -> Fact:
    return fact("measure.started", at, recorded, measure_id=m, measure_code="JOBBKLUBB")


def ended(m: str, at: float, recorded: float | None = None, status: str = "AVBRUTT") -> Fact:
    return fact("measure.ended", at, recorded, measure_id=m, status=status, reason="ANNET")


def measure(m: str, start: float, end: float, recorded: float | None = None) -> list[Fact]:
    return [started(m, start), ended(m, end, recorded)]


def placed(p: str, at: float) -> Fact:
    return fact("placement.started", at, placement_id=p, kind="SUBSIDISED", hours_pct=50)


def referred(at: float) -> Fact:
    return fact("participant.referred", at, channel="nav", org_unit="0301")


def closed(at: float) -> Fact:
    return fact("journey.closed", at, reason="OTHER")


def alerts(facts: list[Fact], clock: float) -> list[Alert]:
    return walk((MEASURE_CHURN,), Journey("p1", facts), day(clock), RULES)[0]


def change(facts: list[Fact], clock: float) -> datetime | None:
    return walk((MEASURE_CHURN,), Journey("p1", facts), day(clock), RULES)[1]


def churn(
    m: str, end: float, raised: float, resolved: float | None = None, how: Resolution | None = None
) -> Alert:
    return Alert(
        rule="MEASURE_CHURN",
        subject=m,
        condition_key=f"MEASURE_CHURN:{m}:{day(end).isoformat()}",
        raised_at=day(raised),
        status="open" if resolved is None else "resolved",
        resolved_at=None if resolved is None else day(resolved),
        resolution=how,
    )


THREE = [*measure("m1", 0, 30), *measure("m2", 40, 70), *measure("m3", 80, 110)]


# --- raised -------------------------------------------------------------------------------------


def test_the_third_short_measure_within_a_year_raises_when_its_end_is_known() -> None:
    (alert,) = alerts(THREE, clock=400)

    assert alert == churn("m3", end=110, raised=110)
    assert alert.condition_key == "MEASURE_CHURN:m3:2025-06-21T09:00:00+00:00"
    assert alert in evaluate(Journey("p1", THREE), day(400), RULES)[0]


def test_two_short_measures_are_not_churn() -> None:
    assert alerts(THREE[:4], clock=400) == []


def test_a_measure_of_90_days_is_not_short_and_a_minute_less_is() -> None:
    first_two = THREE[:4]

    assert alerts([*first_two, *measure("m3", 20, 110)], clock=400) == []
    assert alerts([*first_two, *measure("m3", 20 + MINUTE, 110)], clock=400) == [
        churn("m3", end=110, raised=110)
    ]


def test_long_measures_in_between_neither_count_nor_stop_it() -> None:
    assert alerts([*THREE, *measure("long", 10, 200)], clock=400) == [churn("m3", 110, 110)]


def test_the_window_is_the_365_days_up_to_and_including_the_end() -> None:
    # The third end on day 375: an end on day 10 is 365 days before, outside (E-365d, E].
    later = [*measure("m2", 100, 120), *measure("m3", 350, 375)]

    assert alerts([*measure("m1", -20, 10), *later], clock=500) == []
    assert alerts([*measure("m1", -20, 10 + MINUTE), *later], clock=500) == [
        churn("m3", end=375, raised=375)
    ]


def test_an_unplanned_or_planned_end_alike_and_ikke_aktuell_is_an_end() -> None:
    facts = [*THREE[:4], started("m3", 80), ended("m3", 110, status="IKKE_AKTUELL")]

    assert alerts(facts, clock=400) == [churn("m3", end=110, raised=110)]


def test_a_dropout_ending_three_short_measures_is_one_condition() -> None:
    facts = [started("m1", 0), started("m3", 10), started("m2", 10)]
    facts.append(fact("participant.dropped_out", 30, reason="LOST_CONTACT"))

    # Several end at once: about the one that started last, then the smallest id.
    assert alerts(facts, clock=400) == [churn("m2", end=30, raised=30)]


# --- a placement in the window ------------------------------------------------------------------


def test_a_placement_started_in_the_window_means_no_churn() -> None:
    assert alerts([*THREE, placed("p-1", 50)], clock=400) == []
    assert alerts([*THREE, placed("p-1", 110)], clock=400) == []


def test_a_placement_outside_the_window_does_not_stop_it() -> None:
    assert alerts([*THREE, placed("p-1", 110 - 365)], clock=400) == [churn("m3", 110, 110)]
    assert alerts([*THREE, placed("p-1", 110 + MINUTE)], clock=400) == [churn("m3", 110, 110)]


# --- at most one open per person ----------------------------------------------------------------


def test_further_churn_while_one_is_open_raises_nothing() -> None:
    facts = [*THREE, *measure("m4", 120, 150), *measure("m5", 800, 820)]
    facts += [*measure("m6", 830, 850), *measure("m7", 860, 880)]

    assert alerts(facts, clock=1000) == [churn("m3", end=110, raised=110)]


def test_churn_passed_over_is_raised_once_the_open_one_turns_out_not_to_hold() -> None:
    # On day 200 it becomes known that m1 began on day -100: it lasted 130 days, so the
    # churn at day 110 never was; the churn at day 150 (m2, m3, m4) still is.
    facts = [*THREE, *measure("m4", 120, 150), started("m1", -100, recorded=200)]

    assert alerts(facts, clock=400) == [
        churn("m3", end=110, raised=110, resolved=200, how="late_information"),
        churn("m4", end=150, raised=200),
    ]


def test_a_closed_journey_resolves_it_and_churn_in_the_next_is_raised() -> None:
    facts = [referred(-5), *THREE, closed(115), referred(120)]
    facts += [*measure("m4", 125, 140), *measure("m5", 141, 150)]

    assert alerts(facts, clock=400) == [
        churn("m3", end=110, raised=110, resolved=115, how="journey_closed"),
        churn("m4", end=140, raised=140),
    ]


def test_no_alert_once_the_journey_is_closed() -> None:
    assert alerts([referred(-5), *THREE[:5], closed(100), ended("m3", 110)], clock=400) == []


# --- knowledge time ------------------------------------------------------------------------------


def test_an_end_reported_late_is_raised_when_it_is_recorded() -> None:
    facts = [*THREE[:5], ended("m3", 110, recorded=130)]

    assert alerts(facts, clock=129) == []
    assert change(facts, clock=115) == day(130)
    assert alerts(facts, clock=400) == [churn("m3", end=110, raised=130)]


def test_an_end_known_before_it_happens_is_raised_when_it_happens() -> None:
    facts = [*THREE[:5], ended("m3", 110, recorded=90)]

    assert change(facts, clock=95) == day(110)
    assert alerts(facts, clock=400) == [churn("m3", end=110, raised=110)]
    assert change(facts, clock=110) is None


def test_a_placement_in_the_window_known_late_resolves_with_late_information() -> None:
    facts = [*THREE, fact("placement.started", 60, 140, placement_id="p-1", kind="TEMPORARY")]

    assert alerts(facts, clock=400) == [
        churn("m3", end=110, raised=110, resolved=140, how="late_information")
    ]


# --- one condition, one alert ---------------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [*THREE, *measure("m4", 120, 150, recorded=160)]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=2), seq=9) for f in facts]

    expected = alerts(facts, clock=400)
    assert expected == [churn("m3", end=110, raised=110)]
    assert alerts(facts + redelivered, clock=400) == expected
    assert alerts(redelivered[::-1] + facts, clock=400) == expected


# --- properties -----------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Short and long measures, placements, a dropout, referrals and a closing, each recorded
    at its own minute."""
    drawn = DrawnFacts(day)
    make = drawn.make

    delays = st.integers(min_value=-3, max_value=30)
    for n in range(draw(st.integers(2, 6))):
        start = draw(st.integers(0, 400))
        make("measure.started", start, draw(delays), measure_id=f"m{n}")
        if draw(st.integers(0, 4)):
            end = start + draw(st.sampled_from([0, 10, 60, 89, 90, 120]))
            make("measure.ended", end, draw(delays.map(abs)), measure_id=f"m{n}", status="AVBRUTT")
    if draw(st.booleans()):
        make("placement.started", draw(st.integers(0, 500)), draw(delays), placement_id="p")
    if draw(st.booleans()):
        make("participant.dropped_out", draw(st.integers(0, 500)), draw(delays.map(abs)))
    if draw(st.booleans()):
        make("participant.referred", draw(st.integers(-10, 300)), 0)
    if draw(st.booleans()):
        make("journey.closed", draw(st.integers(0, 500)), draw(delays), reason="OTHER")
    return drawn.facts


clocks = st.integers(min_value=-5, max_value=650).map(lambda d: day(d) + timedelta(hours=3))


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


@st.composite
def churning(draw: st.DrawFn) -> list[Fact]:
    """Many short measures in a year or two, so that churn conditions overlap: the general
    journeys above almost never hold two at once (1 in 300 draws would show a rule
    without `one_open` open twice; 25 in 300 of these)."""
    drawn = DrawnFacts(day)
    delays = st.integers(min_value=-3, max_value=30)
    for n in range(draw(st.integers(3, 9))):
        start = draw(st.integers(0, 500))
        drawn.make("measure.started", start, draw(delays), measure_id=f"m{n}")
        end = start + draw(st.sampled_from([0, 10, 30, 60, 89, 120]))
        drawn.make(
            "measure.ended", end, draw(delays.map(abs)), measure_id=f"m{n}", status="AVBRUTT"
        )
    if draw(st.booleans()):
        drawn.make("placement.started", draw(st.integers(0, 600)), draw(delays), placement_id="p")
    if draw(st.booleans()):
        drawn.make("journey.closed", draw(st.integers(0, 600)), draw(delays), reason="OTHER")
        drawn.make("participant.referred", draw(st.integers(0, 600)), 0)
    return drawn.facts


@settings(max_examples=150, deadline=None)
@given(churning(), clocks)
def test_at_most_one_churn_alert_is_open(facts: list[Fact], clock: datetime) -> None:
    raised = walk((MEASURE_CHURN,), Journey("p", facts), clock, RULES)[0]

    assert sum(1 for a in raised if a.status == "open") <= 1
