"""EARLY_JOB_EXIT (CONTRACT §4): a placement ends with QUIT or DISMISSED within 182 days.

Every expected value is worked out by hand from the contract: raised at the clock when the
end became known, and only a person resolves it (`acknowledged`, applied by the alert
store), so the rules leave it open unless its journey closes or it turns out not to hold.
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
from services.outcomes.rules.employment import EARLY_JOB_EXIT
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


def left(p: str, at: float, reason: str = "QUIT", recorded: float | None = None) -> Fact:
    return fact("placement.ended", at, recorded, placement_id=p, reason=reason)


def referred(at: float) -> Fact:
    return fact("participant.referred", at, channel="nav", org_unit="0301")


def closed(at: float, recorded: float | None = None) -> Fact:
    return fact("journey.closed", at, recorded, reason="OTHER")


def alerts(facts: list[Fact], clock: float) -> list[Alert]:
    return walk((EARLY_JOB_EXIT,), Journey("p1", facts), day(clock), RULES)[0]


def change(facts: list[Fact], clock: float) -> datetime | None:
    return walk((EARLY_JOB_EXIT,), Journey("p1", facts), day(clock), RULES)[1]


def exit_(
    p: str, raised: float, resolved: float | None = None, how: Resolution | None = None
) -> Alert:
    return Alert(
        rule="EARLY_JOB_EXIT",
        subject=p,
        condition_key=f"EARLY_JOB_EXIT:{p}",
        raised_at=day(raised),
        status="open" if resolved is None else "resolved",
        resolved_at=None if resolved is None else day(resolved),
        resolution=how,
    )


# --- raised ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["QUIT", "DISMISSED"])
def test_quitting_or_dismissal_within_182_days_raises_when_known(reason: str) -> None:
    facts = [placed("p-1", 0), left("p-1", 100, reason)]

    assert alerts(facts, clock=400) == [exit_("p-1", raised=100)]
    assert exit_("p-1", raised=100) in evaluate(Journey("p1", facts), day(400), RULES)[0]


@pytest.mark.parametrize("reason", ["CONTRACT_ENDED", "CONVERTED", "OTHER"])
def test_other_ends_raise_nothing(reason: str) -> None:
    assert alerts([placed("p-1", 0), left("p-1", 100, reason)], clock=400) == []


def test_an_end_at_182_days_is_not_early_and_a_minute_before_is() -> None:
    assert alerts([placed("p-1", 0), left("p-1", 182)], clock=400) == []
    assert alerts([placed("p-1", 0), left("p-1", 182 - MINUTE)], clock=400) == [
        exit_("p-1", raised=182 - MINUTE)
    ]


def test_it_stays_open_only_a_person_acknowledges_it() -> None:
    facts = [placed("p-1", 0), left("p-1", 100), placed("p-2", 120)]

    assert alerts(facts, clock=2000) == [exit_("p-1", raised=100)]
    assert change(facts, clock=100) == day(120)  # only because a fact is recorded then
    assert change(facts, clock=120) is None


def test_each_placement_is_its_own_alert() -> None:
    facts = [placed("p-1", 0), left("p-1", 10), placed("p-2", 20), left("p-2", 40, "DISMISSED")]

    assert alerts(facts, clock=400) == [exit_("p-1", raised=10), exit_("p-2", raised=40)]


def test_a_dropout_is_not_the_reason_the_job_ended() -> None:
    dropout = fact("participant.dropped_out", 50, reason="LOST_CONTACT")

    assert alerts([placed("p-1", 0), dropout], clock=400) == []
    assert alerts([placed("p-1", 0), dropout, left("p-1", 60)], clock=400) == [
        exit_("p-1", raised=60)
    ]


# --- knowledge time --------------------------------------------------------------------------


def test_an_end_reported_late_is_raised_when_it_is_recorded() -> None:
    facts = [placed("p-1", 0), left("p-1", 100, recorded=130)]

    assert alerts(facts, clock=129) == []
    assert change(facts, clock=110) == day(130)
    assert alerts(facts, clock=400) == [exit_("p-1", raised=130)]


def test_an_end_known_before_it_happens_is_raised_when_it_happens() -> None:
    facts = [placed("p-1", 0), left("p-1", 100, recorded=90)]

    assert alerts(facts, clock=99) == []
    assert change(facts, clock=95) == day(100)
    assert alerts(facts, clock=400) == [exit_("p-1", raised=100)]


def test_an_earlier_start_known_later_that_makes_it_long_resolves_with_late_information() -> None:
    facts = [placed("p-1", 0), left("p-1", 100), placed("p-1", -100, recorded=120)]

    assert alerts(facts, clock=400) == [
        exit_("p-1", raised=100, resolved=120, how="late_information")
    ]


def test_an_earlier_planned_end_known_later_resolves_with_late_information() -> None:
    facts = [placed("p-1", 0), left("p-1", 100), left("p-1", 90, "CONTRACT_ENDED", recorded=110)]

    assert alerts(facts, clock=400) == [
        exit_("p-1", raised=100, resolved=110, how="late_information")
    ]


def test_an_end_corrected_to_an_earlier_quit_is_the_same_alert() -> None:
    facts = [placed("p-1", 0), left("p-1", 100), left("p-1", 95, recorded=110)]

    assert alerts(facts, clock=400) == [exit_("p-1", raised=100)]


# --- the journey ---------------------------------------------------------------------------------


def test_no_alert_when_the_journey_closed_before_the_end_was_known() -> None:
    assert alerts([referred(-5), placed("p-1", 0), closed(90), left("p-1", 100)], clock=400) == []
    facts = [referred(-5), placed("p-1", 0), left("p-1", 80, recorded=95), closed(90)]
    assert alerts(facts, clock=400) == []


def test_a_closing_resolves_it() -> None:
    facts = [referred(-5), placed("p-1", 0), left("p-1", 100), closed(150)]

    assert alerts(facts, clock=400) == [
        exit_("p-1", raised=100, resolved=150, how="journey_closed")
    ]


# --- one condition, one alert ---------------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [placed("p-1", 0), left("p-1", 100, recorded=101), placed("p-2", 120)]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=2), seq=9) for f in facts]

    expected = alerts(facts, clock=400)
    assert expected == [exit_("p-1", raised=101)]
    assert alerts(facts + redelivered, clock=400) == expected
    assert alerts(redelivered[::-1] + facts, clock=400) == expected


# --- properties ----------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Placements and their ends, dropouts, referrals and a closing, each at its own minute."""
    drawn = DrawnFacts(day)
    make = drawn.make

    delays = st.integers(min_value=-5, max_value=40)
    reasons = st.sampled_from(["QUIT", "DISMISSED", "CONTRACT_ENDED"])
    for n in range(draw(st.integers(1, 3))):
        for _ in range(draw(st.integers(1, 2))):
            make(
                "placement.started", draw(st.integers(-60, 100)), draw(delays), placement_id=f"p{n}"
            )
        for _ in range(draw(st.integers(0, 2))):
            end, delay, reason = draw(st.integers(100, 300)), draw(delays), draw(reasons)
            make("placement.ended", end, delay, placement_id=f"p{n}", reason=reason)
    if draw(st.booleans()):
        make("participant.dropped_out", draw(st.integers(0, 300)), draw(delays), reason="OTHER")
    if draw(st.booleans()):
        make("participant.referred", draw(st.integers(-10, 200)), 0)
    if draw(st.booleans()):
        make("journey.closed", draw(st.integers(0, 350)), draw(delays), reason="OTHER")
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
    check_following_next_change_agrees_with_one_evaluation(facts, until, day(-70), RULES)
