"""SIX_MONTH_CHECK_OVERDUE (CONTRACT §4): no six-month check known 182 + 14 days into a
placement.

Every expected value is worked out by hand from the contract: a placement started on day 0
is due its check on day 182 and overdue, with the grace, on day 196.
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
from services.outcomes.rules.employment import SIX_MONTH_CHECK_OVERDUE
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


def placed(p: str, at: float, recorded: float | None = None) -> Fact:
    return fact("placement.started", at, recorded, placement_id=p, kind="PERMANENT", hours_pct=80)


def left(p: str, at: float, reason: str = "CONTRACT_ENDED") -> Fact:
    return fact("placement.ended", at, placement_id=p, reason=reason)


def checked(p: str, at: float, recorded: float | None = None) -> Fact:
    evidence = {"source": "register", "obtained_at": day(at).date().isoformat()}
    return fact(
        "followup.six_month_checked",
        at,
        recorded,
        placement_id=p,
        status="EMPLOYED_SAME",
        evidence=evidence,
    )


def referred(at: float) -> Fact:
    return fact("participant.referred", at, channel="nav", org_unit="0301")


def closed(at: float, reason: str, recorded: float | None = None) -> Fact:
    return fact("journey.closed", at, recorded, reason=reason)


def alerts(facts: list[Fact], clock: float) -> list[Alert]:
    return walk((SIX_MONTH_CHECK_OVERDUE,), Journey("p1", facts), day(clock), RULES)[0]


def change(facts: list[Fact], clock: float) -> datetime | None:
    return walk((SIX_MONTH_CHECK_OVERDUE,), Journey("p1", facts), day(clock), RULES)[1]


def overdue(
    p: str, raised: float, resolved: float | None = None, how: Resolution | None = None
) -> Alert:
    return Alert(
        rule="SIX_MONTH_CHECK_OVERDUE",
        subject=p,
        condition_key=f"SIX_MONTH_CHECK_OVERDUE:{p}",
        raised_at=day(raised),
        status="open" if resolved is None else "resolved",
        resolved_at=None if resolved is None else day(resolved),
        resolution=how,
    )


# --- raised -----------------------------------------------------------------------------------


def test_a_placement_with_no_check_is_overdue_after_182_plus_14_days() -> None:
    assert alerts([placed("p-1", 0)], clock=300) == [overdue("p-1", raised=196)]
    assert overdue("p-1", 196) in evaluate(Journey("p1", [placed("p-1", 0)]), day(300), RULES)[0]


def test_the_check_recorded_later_resolves_it() -> None:
    assert alerts([placed("p-1", 0), checked("p-1", 200)], clock=300) == [
        overdue("p-1", raised=196, resolved=200, how="check_recorded")
    ]


@pytest.mark.parametrize("recorded", [150, 182, 196])
def test_a_check_known_by_the_deadline_means_no_alert(recorded: float) -> None:
    assert alerts([placed("p-1", 0), checked("p-1", 150, recorded)], clock=300) == []


def test_a_check_known_a_minute_after_the_deadline_is_too_late() -> None:
    assert alerts([placed("p-1", 0), checked("p-1", 190, recorded=196 + MINUTE)], clock=300) == [
        overdue("p-1", raised=196, resolved=196 + MINUTE, how="check_recorded")
    ]


def test_a_check_done_in_time_but_reported_late_still_resolves_as_recorded() -> None:
    # The rule is about what is known: on day 196 no check was.
    assert alerts([placed("p-1", 0), checked("p-1", 190, recorded=230)], clock=300) == [
        overdue("p-1", raised=196, resolved=230, how="check_recorded")
    ]


def test_a_placement_that_ended_early_still_owes_its_check() -> None:
    assert alerts([placed("p-1", 0), left("p-1", 30, "QUIT")], clock=300) == [
        overdue("p-1", raised=196)
    ]


def test_only_a_check_of_that_placement_counts_and_each_placement_has_its_own() -> None:
    facts = [placed("p-1", 0), placed("p-2", 10), checked("p-2", 150)]

    assert alerts(facts, clock=300) == [overdue("p-1", raised=196)]


def test_the_deadline_is_the_next_change() -> None:
    assert alerts([placed("p-1", 0)], clock=196 - MINUTE) == []
    assert change([placed("p-1", 0)], clock=5) == day(196)
    assert change([placed("p-1", 0)], clock=196) is None


# --- knowledge time ---------------------------------------------------------------------------


def test_a_placement_known_only_after_its_deadline_raises_at_once() -> None:
    assert alerts([placed("p-1", 0, recorded=250)], clock=300) == [overdue("p-1", raised=250)]


def test_an_earlier_start_known_later_moves_the_deadline_not_the_alert() -> None:
    # Known first as starting on day 0 (due day 196); on day 100 a start on day -20 of the
    # same placement becomes known, and the earliest start counts: due day 176.
    facts = [placed("p-1", 0), placed("p-1", -20, recorded=100)]

    assert alerts(facts, clock=300) == [overdue("p-1", raised=176)]
    assert alerts([*facts, placed("p-1", -60, recorded=200)], clock=300) == [
        overdue("p-1", raised=176)
    ]


# --- the journey --------------------------------------------------------------------------------


def test_a_journey_closed_with_goal_reached_still_owes_the_check() -> None:
    assert alerts([referred(-10), placed("p-1", 0), closed(100, "GOAL_REACHED")], clock=300) == [
        overdue("p-1", raised=196)
    ]
    assert alerts([referred(-10), placed("p-1", 0), closed(250, "GOAL_REACHED")], clock=300) == [
        overdue("p-1", raised=196)
    ]


@pytest.mark.parametrize("reason", ["MOVED", "DECEASED", "TRANSFERRED_OUT", "OTHER"])
def test_any_other_closing_by_the_deadline_means_no_alert(reason: str) -> None:
    assert alerts([referred(-10), placed("p-1", 0), closed(100, reason)], clock=300) == []


def test_any_other_closing_after_the_deadline_resolves_it() -> None:
    assert alerts([referred(-10), placed("p-1", 0), closed(250, "MOVED")], clock=300) == [
        overdue("p-1", raised=196, resolved=250, how="journey_closed")
    ]


def test_the_alert_belongs_to_the_journey_the_placement_started_in() -> None:
    facts = [referred(-10), placed("p-1", 0), closed(100, "GOAL_REACHED")]
    facts += [referred(150), closed(170, "MOVED")]

    assert alerts(facts, clock=300) == [overdue("p-1", raised=196)]


# --- one condition, one alert -------------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [placed("p-1", 0), placed("p-2", 30), checked("p-1", 190, recorded=230)]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=2), seq=9) for f in facts]

    expected = alerts(facts, clock=400)
    assert expected == [
        overdue("p-1", raised=196, resolved=230, how="check_recorded"),
        overdue("p-2", raised=226),
    ]
    assert alerts(facts + redelivered, clock=400) == expected
    assert alerts(redelivered[::-1] + facts, clock=400) == expected


# --- properties ---------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Placements, their checks, referrals and a closing, each recorded at its own minute."""
    drawn = DrawnFacts(day)
    make = drawn.make

    delays = st.integers(min_value=-5, max_value=60)
    for n in range(draw(st.integers(1, 3))):
        make("placement.started", draw(st.integers(0, 100)), draw(delays), placement_id=f"p{n}")
        if draw(st.booleans()):
            at, delay = draw(st.integers(150, 260)), draw(delays.map(abs))
            make("followup.six_month_checked", at, delay, placement_id=f"p{n}")
    if draw(st.booleans()):
        make("participant.referred", draw(st.integers(-10, 120)), 0)
    if draw(st.booleans()):
        reason = draw(st.sampled_from(["GOAL_REACHED", "MOVED"]))
        make("journey.closed", draw(st.integers(0, 300)), draw(delays), reason=reason)
    return drawn.facts


clocks = st.integers(min_value=-5, max_value=420).map(lambda d: day(d) + timedelta(hours=3))


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
