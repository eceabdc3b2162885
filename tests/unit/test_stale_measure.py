"""STALE_MEASURE (CONTRACT §4): a measure's planned end is 30 days past and neither its end
nor an extension is known.

Every expected value is worked out by hand from the contract. A `planned_end` date is the
start of that day in Europe/Oslo, and a day is 24 hours on instants: 2025-04-01 (summer
time, +02:00) is 2025-03-31T22:00Z, and 30 days later is 2025-04-30T22:00Z.
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
from services.outcomes.rules.measures import STALE_MEASURE
from services.outcomes.rules.walk import walk
from tests.unit.rule_properties import (
    DrawnFacts,
    check_arrival_order_and_redelivery_change_nothing,
    check_following_next_change_agrees_with_one_evaluation,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = RuleSettings()
_ids = count()

APRIL_1 = datetime(2025, 3, 31, 22, 0, tzinfo=UTC)  # 2025-04-01 in Oslo
APRIL_1_DUE = datetime(2025, 4, 30, 22, 0, tzinfo=UTC)
JUNE_1_DUE = datetime(2025, 6, 30, 22, 0, tzinfo=UTC)  # 2025-06-01 in Oslo, + 30 days


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def at(when: float | datetime) -> datetime:
    return when if isinstance(when, datetime) else day(when)


def fact(
    type_: str,
    occurred: float | datetime,
    recorded: float | datetime | None = None,
    system: str = "nav",
    **data: Any,
) -> Fact:
    recorded_at = at(occurred if recorded is None else recorded)
    return Fact(f"e{next(_ids)}", type_, at(occurred), recorded_at, data, system=system)


def started(
    m: str,
    planned_end: str | None,
    occurred: float = 0,
    recorded: float | None = None,
    system: str = "nav",
) -> Fact:
    data: dict[str, Any] = {"measure_id": m, "measure_code": "ARBEIDSTRENING"}
    if planned_end is not None:
        data["planned_end"] = planned_end
    return fact("measure.started", occurred, recorded, system, **data)


def extended(
    m: str, planned_end: str, occurred: float | datetime, recorded: float | datetime | None = None
) -> Fact:
    return fact("measure.extended", occurred, recorded, measure_id=m, planned_end=planned_end)


def ended(
    m: str,
    occurred: float | datetime,
    recorded: float | datetime | None = None,
    system: str = "nav",
) -> Fact:
    return fact("measure.ended", occurred, recorded, system, measure_id=m, status="FULLFORT")


def referred(occurred: float) -> Fact:
    return fact("participant.referred", occurred, channel="kommune", org_unit="0301")


def closed(occurred: float | datetime) -> Fact:
    return fact("journey.closed", occurred, reason="MOVED")


def alerts(facts: list[Fact], clock: float | datetime) -> list[Alert]:
    return walk((STALE_MEASURE,), Journey("p1", facts), at(clock), RULES)[0]


def change(facts: list[Fact], clock: float | datetime) -> datetime | None:
    return walk((STALE_MEASURE,), Journey("p1", facts), at(clock), RULES)[1]


def stale(
    m: str,
    planned_end: str,
    raised: datetime,
    resolved: datetime | None = None,
    how: Resolution | None = None,
    system: str = "nav",
) -> Alert:
    return Alert(
        rule="STALE_MEASURE",
        subject=m,
        condition_key=f"STALE_MEASURE:{system}:{m}:{planned_end}",
        raised_at=raised,
        status="open" if resolved is None else "resolved",
        resolved_at=resolved,
        resolution=how,
    )


MINUTE = timedelta(minutes=1)
M1 = started("m1", "2025-04-01")


# --- raised ---------------------------------------------------------------------------------


def test_a_planned_end_thirty_days_past_with_nothing_known_raises() -> None:
    assert alerts([M1], clock=200) == [stale("m1", "2025-04-01", raised=APRIL_1_DUE)]
    assert (
        stale("m1", "2025-04-01", APRIL_1_DUE) in evaluate(Journey("p", [M1]), day(200), RULES)[0]
    )


def test_a_winter_date_is_midnight_at_plus_one_and_days_are_24_hours() -> None:
    # 2025-03-20 in Oslo is 2025-03-19T23:00Z; 30 days on, across summer time, 2025-04-18T23:00Z.
    facts = [started("m1", "2025-03-20")]

    assert alerts(facts, clock=200) == [
        stale("m1", "2025-03-20", raised=datetime(2025, 4, 18, 23, 0, tzinfo=UTC))
    ]


def test_a_measure_with_no_planned_end_is_never_stale() -> None:
    assert alerts([started("m1", None)], clock=2000) == []


def test_before_the_deadline_nothing_is_raised_and_it_is_the_next_change() -> None:
    assert alerts([M1], clock=APRIL_1_DUE - MINUTE) == []
    assert change([M1], clock=5) == APRIL_1_DUE
    assert change([M1], clock=APRIL_1_DUE) is None


# --- the end ----------------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", [APRIL_1, APRIL_1_DUE])
def test_an_end_known_by_the_deadline_means_no_alert(recorded: datetime) -> None:
    assert alerts([M1, ended("m1", APRIL_1, recorded)], clock=200) == []


def test_an_end_recorded_a_minute_after_the_deadline_resolves_it_as_updated() -> None:
    facts = [M1, ended("m1", APRIL_1, APRIL_1_DUE + MINUTE)]

    assert alerts(facts, clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE, APRIL_1_DUE + MINUTE, "updated")
    ]


def test_an_end_in_time_but_recorded_late_resolves_it_when_recorded() -> None:
    facts = [M1, ended("m1", APRIL_1, recorded=70)]

    assert alerts(facts, clock=69) == [stale("m1", "2025-04-01", APRIL_1_DUE)]
    assert change(facts, clock=65) == day(70)
    assert alerts(facts, clock=200) == [stale("m1", "2025-04-01", APRIL_1_DUE, day(70), "updated")]


def test_the_same_measure_id_from_two_source_systems_is_two_measures() -> None:
    # CONTRACT §2: a measure_id is unique per source, so NAV's m1 and the municipality's
    # m1 are watched apart, and the municipality's end says nothing of NAV's measure.
    kommune_m1 = started("m1", "2025-04-01", system="kommune")
    kommune_end = ended("m1", 20, system="kommune")

    assert alerts([M1, kommune_m1], clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE, system="kommune"),
        stale("m1", "2025-04-01", APRIL_1_DUE),
    ]
    assert alerts([M1, kommune_m1, kommune_end], clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE)
    ]


def test_a_dropout_ends_the_measure_too() -> None:
    dropout_in_time = fact("participant.dropped_out", 20, reason="DECLINED")
    dropout_known_late = fact("participant.dropped_out", 20, 70, reason="DECLINED")

    assert alerts([M1, dropout_in_time], clock=200) == []
    assert alerts([M1, dropout_known_late], clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE, day(70), "updated")
    ]
    assert alerts([M1, fact("participant.dropped_out", -5, reason="OTHER")], clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE)
    ]


# --- extensions ---------------------------------------------------------------------------------


def test_an_extension_known_before_the_deadline_moves_it() -> None:
    facts = [M1, extended("m1", "2025-06-01", occurred=20)]

    assert alerts(facts, clock=200) == [stale("m1", "2025-06-01", raised=JUNE_1_DUE)]


def test_an_extension_recorded_after_the_deadline_resolves_the_alert_about_the_old_day() -> None:
    facts = [M1, extended("m1", "2025-06-01", occurred=60)]

    assert alerts(facts, clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE, resolved=day(60), how="updated"),
        stale("m1", "2025-06-01", raised=JUNE_1_DUE),
    ]


def test_an_extension_to_a_day_itself_long_past_raises_about_it_at_once() -> None:
    # 2025-04-05 in Oslo is 2025-04-04T22:00Z, stale from 2025-05-04T22:00Z: before day 70.
    facts = [M1, extended("m1", "2025-04-05", occurred=70)]

    assert alerts(facts, clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE, resolved=day(70), how="updated"),
        stale("m1", "2025-04-05", raised=day(70)),
    ]


def test_an_extension_to_the_same_day_changes_nothing() -> None:
    assert alerts([M1, extended("m1", "2025-04-01", occurred=70)], clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE)
    ]


def test_an_older_extension_learnt_late_changes_nothing() -> None:
    # 2025-04-10 in Oslo is 2025-04-09T22:00Z: stale from 2025-05-09T22:00Z.
    facts = [M1, extended("m1", "2025-05-01", occurred=10, recorded=100)]
    facts.append(extended("m1", "2025-04-10", occurred=20, recorded=21))

    assert alerts(facts, clock=200) == [
        stale("m1", "2025-04-10", raised=datetime(2025, 5, 9, 22, 0, tzinfo=UTC))
    ]


# --- knowledge time -----------------------------------------------------------------------------


def test_a_start_known_only_after_the_deadline_raises_at_once() -> None:
    assert alerts([started("m1", "2025-04-01", recorded=100)], clock=200) == [
        stale("m1", "2025-04-01", raised=day(100))
    ]


def test_an_extension_known_before_its_start_counts_from_the_start() -> None:
    facts = [extended("m1", "2025-06-01", occurred=20), started("m1", "2025-04-01", recorded=21)]

    assert alerts(facts, clock=200) == [stale("m1", "2025-06-01", raised=JUNE_1_DUE)]


# --- the journey --------------------------------------------------------------------------------


def test_no_alert_for_a_journey_closed_by_the_deadline() -> None:
    assert alerts([referred(-1), M1, closed(40)], clock=200) == []


def test_a_closing_after_the_deadline_resolves_it() -> None:
    assert alerts([referred(-1), M1, closed(80)], clock=200) == [
        stale("m1", "2025-04-01", APRIL_1_DUE, resolved=day(80), how="journey_closed")
    ]


# --- one condition, one alert -------------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [M1, extended("m1", "2025-06-01", occurred=60), started("m2", "2025-05-01")]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=2), seq=9) for f in facts]

    expected = alerts(facts, clock=200)
    assert len(expected) == 3
    assert alerts(facts + redelivered, clock=200) == expected
    assert alerts(redelivered[::-1] + facts, clock=200) == expected


# --- properties ----------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Measures with planned ends, extensions, ends, dropouts, referrals and a closing, each
    recorded at its own minute."""
    drawn = DrawnFacts(day)
    make = drawn.make

    def planned() -> str:
        return (T0 + timedelta(days=draw(st.integers(0, 120)))).date().isoformat()

    delays = st.integers(min_value=-5, max_value=50)
    for n in range(draw(st.integers(1, 3))):
        start = draw(st.integers(-20, 60))
        make("measure.started", start, draw(delays), measure_id=f"m{n}", planned_end=planned())
        for _ in range(draw(st.integers(0, 2))):
            at_ = start + draw(st.integers(0, 100))
            make("measure.extended", at_, draw(delays), measure_id=f"m{n}", planned_end=planned())
        if draw(st.booleans()):
            make(
                "measure.ended", start + draw(st.integers(0, 150)), draw(delays), measure_id=f"m{n}"
            )
    if draw(st.booleans()):
        make("participant.dropped_out", draw(st.integers(0, 200)), draw(delays), reason="OTHER")
    if draw(st.booleans()):
        make("participant.referred", draw(st.integers(-30, 100)), 0)
    if draw(st.booleans()):
        make("journey.closed", draw(st.integers(0, 250)), draw(delays), reason="OTHER")
    return drawn.facts


clocks = st.integers(min_value=-5, max_value=300).map(lambda d: day(d) + timedelta(hours=3))


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
    check_following_next_change_agrees_with_one_evaluation(facts, until, day(-30), RULES)
