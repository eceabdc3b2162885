"""NO_COORDINATOR (CONTRACT §4): a person who needs a coordinator has none for 7 days.

Every expected value is worked out by hand from the contract: a triage on day 0 that says
`needs_coordinator`, with no coordinator assigned in [day 0, day 7], raises on day 7. The
subject is the journey (`journey:` and the instant it opened); the key adds T.
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
from services.outcomes.rules.coordination import NO_COORDINATOR
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


def triaged(at: float, needs: bool = True, recorded: float | None = None) -> Fact:
    return fact(
        "participant.triaged",
        at,
        recorded,
        need_group="TRENGER_VEILEDNING",
        main_goal="SKAFFE_ARBEID",
        needs_coordinator=needs,
        org_unit="0301",
    )


def assigned(c: str, at: float, recorded: float | None = None) -> Fact:
    return fact("coordinator.assigned", at, recorded, coordinator_id=c, org_unit="0301")


def unassigned(c: str, at: float, recorded: float | None = None) -> Fact:
    return fact("coordinator.unassigned", at, recorded, coordinator_id=c, reason="moved")


def referred(at: float) -> Fact:
    return fact("participant.referred", at, channel="nav", org_unit="0301")


def closed(at: float, recorded: float | None = None) -> Fact:
    return fact("journey.closed", at, recorded, reason="OTHER")


def alerts(facts: list[Fact], clock: float) -> list[Alert]:
    return walk((NO_COORDINATOR,), Journey("p1", facts), day(clock), RULES)[0]


def change(facts: list[Fact], clock: float) -> datetime | None:
    return walk((NO_COORDINATOR,), Journey("p1", facts), day(clock), RULES)[1]


def no_coordinator(
    opened: float,
    since: float,
    raised: float,
    resolved: float | None = None,
    how: Resolution | None = None,
) -> Alert:
    subject = f"journey:{day(opened).isoformat()}"
    return Alert(
        rule="NO_COORDINATOR",
        subject=subject,
        condition_key=f"NO_COORDINATOR:{subject}:{day(since).isoformat()}",
        raised_at=day(raised),
        status="open" if resolved is None else "resolved",
        resolved_at=None if resolved is None else day(resolved),
        resolution=how,
    )


# --- raised when a triage says needs_coordinator ------------------------------------------


def test_a_triage_needing_a_coordinator_with_none_assigned_raises_after_seven_days() -> None:
    (alert,) = alerts([triaged(0)], clock=30)

    assert alert == no_coordinator(opened=0, since=0, raised=7)
    assert alert.condition_key == (
        "NO_COORDINATOR:journey:2025-03-03T09:00:00+00:00:2025-03-03T09:00:00+00:00"
    )
    everything = evaluate(Journey("p1", [triaged(0)]), day(30), RULES)[0]
    assert alert in everything


def test_a_coordinator_assigned_after_the_window_resolves_it() -> None:
    assert alerts([triaged(0), assigned("c1", 10)], clock=30) == [
        no_coordinator(0, since=0, raised=7, resolved=10, how="coordinator_assigned")
    ]


@pytest.mark.parametrize("at", [0, 3, 7])
def test_an_assignment_inside_the_closed_window_means_no_alert(at: float) -> None:
    assert alerts([triaged(0), assigned("c1", at)], clock=30) == []


def test_an_assignment_just_after_the_window_is_too_late() -> None:
    assert alerts([triaged(0), assigned("c1", 7 + MINUTE)], clock=30) == [
        no_coordinator(0, since=0, raised=7, resolved=7 + MINUTE, how="coordinator_assigned")
    ]


def test_a_triage_that_needs_no_coordinator_raises_nothing() -> None:
    assert alerts([triaged(0, needs=False)], clock=30) == []


def test_a_triage_while_a_coordinator_is_assigned_raises_nothing() -> None:
    assert alerts([assigned("c1", -5), triaged(0)], clock=30) == []


def test_a_second_triage_inside_an_unmet_need_begins_nothing_new() -> None:
    assert alerts([triaged(0), triaged(3), triaged(5, needs=False), triaged(6)], clock=30) == [
        no_coordinator(0, since=0, raised=7)
    ]


def test_the_deadline_is_the_next_change() -> None:
    assert alerts([triaged(0)], clock=7 - MINUTE) == []
    assert change([triaged(0)], clock=2) == day(7)
    assert change([triaged(0)], clock=7) is None
    assert change([triaged(0), assigned("c1", 10)], clock=7) == day(10)


# --- raised when a coordinator is unassigned ------------------------------------------------


def test_unassigning_the_coordinator_while_the_triage_says_needs_raises_from_then() -> None:
    facts = [assigned("c1", -5), triaged(0), unassigned("c1", 20)]

    # The journey opened with the triage; the assignment before it does not open one.
    assert alerts(facts, clock=40) == [no_coordinator(0, since=20, raised=27)]


def test_a_new_need_after_the_first_was_met_is_its_own_alert() -> None:
    facts = [triaged(0), assigned("c1", 10), unassigned("c1", 20)]

    assert alerts(facts, clock=40) == [
        no_coordinator(0, since=0, raised=7, resolved=10, how="coordinator_assigned"),
        no_coordinator(0, since=20, raised=27),
    ]


def test_unassigning_when_the_latest_triage_says_no_need_raises_nothing() -> None:
    facts = [assigned("c1", -5), triaged(0), triaged(5, needs=False), unassigned("c1", 20)]

    assert alerts(facts, clock=40) == []


def test_unassigning_a_coordinator_already_replaced_changes_nothing() -> None:
    facts = [triaged(0), assigned("c1", 1), assigned("c2", 10), unassigned("c1", 15)]

    assert alerts(facts, clock=40) == []


def test_a_hand_over_within_one_instant_leaves_the_new_coordinator() -> None:
    facts = [triaged(0), assigned("c1", 1), assigned("c2", 10), unassigned("c1", 10)]
    same_coordinator_again = [triaged(0), assigned("c1", 1), unassigned("c1", 10)]

    assert alerts(facts, clock=40) == []
    assert alerts([*same_coordinator_again, assigned("c1", 10)], clock=40) == []


# --- knowledge time -----------------------------------------------------------------------------


def test_an_assignment_in_the_window_known_late_resolves_with_late_information() -> None:
    facts = [triaged(0), assigned("c1", 5, recorded=9)]

    assert alerts(facts, clock=8) == [no_coordinator(0, since=0, raised=7)]
    assert change(facts, clock=8) == day(9)
    assert alerts(facts, clock=30) == [
        no_coordinator(0, since=0, raised=7, resolved=9, how="late_information")
    ]


def test_an_assignment_after_the_window_known_late_resolves_when_known() -> None:
    facts = [triaged(0), assigned("c1", 12, recorded=15)]

    assert alerts(facts, clock=30) == [
        no_coordinator(0, since=0, raised=7, resolved=15, how="coordinator_assigned")
    ]


def test_a_triage_known_only_after_its_deadline_raises_at_once() -> None:
    assert alerts([triaged(0, recorded=10)], clock=30) == [no_coordinator(0, since=0, raised=10)]


def test_an_assignment_planned_ahead_resolves_when_it_happens() -> None:
    facts = [triaged(0), assigned("c1", 12, recorded=2)]

    assert change(facts, clock=8) == day(12)
    assert alerts(facts, clock=30) == [
        no_coordinator(0, since=0, raised=7, resolved=12, how="coordinator_assigned")
    ]


# --- the journey ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("occurred", "recorded"), [(3, 3), (5, 6), (7, 7)])
def test_no_alert_for_a_journey_closed_by_the_deadline(occurred: float, recorded: float) -> None:
    assert alerts([triaged(0), closed(occurred, recorded)], clock=30) == []


def test_a_closing_after_the_deadline_resolves_the_alert() -> None:
    assert alerts([referred(-1), triaged(0), closed(10)], clock=30) == [
        no_coordinator(-1, since=0, raised=7, resolved=10, how="journey_closed")
    ]


def test_a_new_journey_needs_its_own_coordinator_decision() -> None:
    # The need of the first journey ends with it; the second journey's triage begins anew.
    facts = [triaged(0), closed(10), referred(20), triaged(21)]

    assert alerts(facts, clock=40) == [
        no_coordinator(0, since=0, raised=7, resolved=10, how="journey_closed"),
        no_coordinator(20, since=21, raised=28),
    ]


def test_the_coordinator_of_a_closed_journey_does_not_carry_over() -> None:
    # c1 coordinated the first journey and was never unassigned; the second journey's
    # triage says it needs a coordinator, and nobody is assigned in [21, 28].
    facts = [assigned("c1", -5), triaged(0), closed(10), referred(20), triaged(21)]

    assert alerts(facts, clock=40) == [no_coordinator(20, since=21, raised=28)]


def test_what_a_closed_journey_said_about_needs_does_not_carry_over() -> None:
    facts = [assigned("c1", -5), triaged(0), closed(10), referred(20), unassigned("c1", 25)]

    assert alerts(facts, clock=40) == []


# --- one condition, one alert ---------------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [triaged(0), assigned("c1", 5, recorded=9), unassigned("c1", 20), assigned("c2", 30)]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=2), seq=9) for f in facts]

    expected = alerts(facts, clock=60)
    assert len(expected) == 2
    assert alerts(facts + redelivered, clock=60) == expected
    assert alerts(redelivered[::-1] + facts, clock=60) == expected


# --- properties -----------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Triages, assignments, unassignments, referrals and a closing, each at its own minute."""
    drawn = DrawnFacts(day)
    make = drawn.make

    delays = st.integers(min_value=-2, max_value=12)
    for _ in range(draw(st.integers(1, 3))):
        needs = draw(st.booleans())
        make("participant.triaged", draw(st.integers(0, 40)), draw(delays), needs_coordinator=needs)
    coordinators = st.sampled_from(["c1", "c2"])
    for _ in range(draw(st.integers(0, 4))):
        type_ = draw(st.sampled_from(["coordinator.assigned", "coordinator.unassigned"]))
        make(type_, draw(st.integers(-5, 50)), draw(delays), coordinator_id=draw(coordinators))
    if draw(st.booleans()):
        make("participant.referred", draw(st.integers(-5, 45)), 0)
    if draw(st.booleans()):
        make("journey.closed", draw(st.integers(0, 60)), draw(delays), reason="OTHER")
    return drawn.facts


clocks = st.integers(min_value=-5, max_value=90).map(lambda d: day(d) + timedelta(hours=5))


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
