"""HANDOVER_GAP (CONTRACT §4): nothing active within 14 days (7 after an unplanned end).

Every expected value here is worked out by hand from the contract: a measure that ends on
day 10 has its deadline on day 24 (day 17 when the end was unplanned).
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
from services.outcomes.rules import Alert, Resolution, handover_gaps, next_change
from tests.unit.rule_properties import (
    DrawnFacts,
    check_arrival_order_and_redelivery_change_nothing,
    check_following_next_change_agrees_with_one_evaluation,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = RuleSettings()
_ids = count()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def fact(type_: str, at: float, recorded: float | None = None, **data: Any) -> Fact:
    """A fact occurring on day `at`, recorded on day `recorded` (by default the same)."""
    return Fact(f"e{next(_ids)}", type_, day(at), day(at if recorded is None else recorded), data)


def started(m: str, at: float, recorded: float | None = None) -> Fact:
    return fact("measure.started", at, recorded, measure_id=m, measure_code="AVKLARING")


def ended(
    m: str,
    at: float,
    recorded: float | None = None,
    status: str = "FULLFORT",
    reason: str = "FERDIG",
) -> Fact:
    return fact("measure.ended", at, recorded, measure_id=m, status=status, reason=reason)


def placement(p: str, at: float, reason: str | None = None, end: float | None = None) -> list[Fact]:
    facts = [fact("placement.started", at, placement_id=p, kind="TEMPORARY", hours_pct=50)]
    if end is not None:
        facts.append(fact("placement.ended", end, placement_id=p, reason=reason))
    return facts


def dropout(at: float, recorded: float | None = None) -> Fact:
    return fact("participant.dropped_out", at, recorded, reason="LOST_CONTACT")


def closed(at: float, recorded: float | None = None) -> Fact:
    return fact("journey.closed", at, recorded, reason="MOVED")


def referred(at: float) -> Fact:
    return fact("participant.referred", at, channel="nav", org_unit="0301")


def gaps(facts: list[Fact], clock: float) -> list[Alert]:
    return handover_gaps(Journey("p1", facts), day(clock), RULES)


def change(facts: list[Fact], clock: float) -> datetime | None:
    return next_change(Journey("p1", facts), day(clock), RULES)


def gap(
    subject: str,
    end: float,
    raised: float,
    resolved: float | None = None,
    how: Resolution | None = None,
) -> Alert:
    return Alert(
        rule="HANDOVER_GAP",
        subject=subject,
        condition_key=f"HANDOVER_GAP:{subject}:{day(end).isoformat()}",
        raised_at=day(raised),
        status="open" if resolved is None else "resolved",
        resolved_at=None if resolved is None else day(resolved),
        resolution=how,
    )


M1 = [started("m1", 0), ended("m1", 10)]  # ends on day 10: deadline day 24


# --- raised -----------------------------------------------------------------------------


def test_a_measure_ending_with_nothing_after_raises_at_fourteen_days() -> None:
    (alert,) = gaps(M1, clock=40)

    assert alert == gap("m1", end=10, raised=24)
    assert alert.condition_key == "HANDOVER_GAP:m1:2025-03-13T09:00:00+00:00"


def test_the_same_measure_id_from_another_source_system_is_another_measure() -> None:
    # CONTRACT §2: a measure_id is unique per source. NAV's m1 ends on day 10 while the
    # municipality's m1, started on day 5, goes on: the person is never without a measure.
    kommune_m1 = Fact(
        "e-kommune", "measure.started", day(5), day(5), {"measure_id": "m1"}, 0, "kommune"
    )

    assert gaps([*M1, kommune_m1], clock=40) == []


@pytest.mark.parametrize(
    ("status", "reason", "raised"),
    [
        ("AVBRUTT", "ANNET", 17),
        ("HAR_SLUTTET", "IKKE_MOTT", 17),
        ("IKKE_AKTUELL", "FIKK_IKKE_PLASS", 24),  # an end like any other
        ("HAR_SLUTTET", "FATT_JOBB", 24),
    ],
)
def test_an_unplanned_measure_end_gives_seven_days(status: str, reason: str, raised: int) -> None:
    facts = [started("m1", 0), ended("m1", 10, status=status, reason=reason)]

    assert gaps(facts, clock=40) == [gap("m1", end=10, raised=raised)]


@pytest.mark.parametrize(
    ("reason", "raised"), [("QUIT", 17), ("DISMISSED", 17), ("CONTRACT_ENDED", 24)]
)
def test_a_placement_quit_or_dismissed_gives_seven_days(reason: str, raised: int) -> None:
    assert gaps(placement("p-1", 0, reason, end=10), clock=40) == [gap("p-1", 10, raised)]


def test_a_dropout_ends_the_engagement_unplanned() -> None:
    assert gaps([started("m1", 0), dropout(10)], clock=40) == [gap("m1", end=10, raised=17)]


def test_a_dropout_ending_several_raises_one_alert_about_the_latest_started() -> None:
    facts = [started("m1", 0), started("m3", 3), started("m2", 3), dropout(10)]

    assert gaps(facts, clock=40) == [gap("m2", end=10, raised=17)]


def test_simultaneous_last_ends_take_seven_days_if_any_was_unplanned() -> None:
    facts = [started("m1", 0), started("m2", 2), ended("m1", 10), ended("m2", 10, status="AVBRUTT")]

    assert gaps(facts, clock=40) == [gap("m2", end=10, raised=17)]


def test_with_overlapping_measures_only_the_last_end_counts() -> None:
    facts = [started("m1", 0), started("m2", 5), ended("m2", 12, status="AVBRUTT"), ended("m1", 20)]

    assert gaps(facts, clock=60) == [gap("m1", end=20, raised=34)]


def test_the_window_of_the_last_end_is_the_one_that_counts() -> None:
    facts = [started("m1", 0), started("m2", 5), ended("m1", 12), ended("m2", 20, status="AVBRUTT")]

    assert gaps(facts, clock=60) == [gap("m2", end=20, raised=27)]


def test_each_gap_of_a_person_is_its_own_alert() -> None:
    facts = [*M1, started("m2", 30), ended("m2", 40)]

    alerts = gaps(facts, clock=60)

    assert alerts == [
        gap("m1", end=10, raised=24, resolved=30, how="engagement_started"),
        gap("m2", end=40, raised=54),
    ]
    assert len({a.condition_key for a in alerts}) == 2


# --- not raised ---------------------------------------------------------------------------


@pytest.mark.parametrize("successor_start", [10, 11, 23, 24])
def test_a_successor_measure_inside_the_window_means_no_gap(successor_start: int) -> None:
    assert gaps([*M1, started("m2", successor_start)], clock=60) == []


def test_a_successor_placement_inside_the_window_means_no_gap() -> None:
    assert gaps([*M1, *placement("p-1", 15)], clock=60) == []


def test_a_successor_that_starts_and_ends_inside_the_window_still_counts() -> None:
    facts = [*M1, started("m2", 12), ended("m2", 13)]

    # m2's own end on day 13 opens the next gap, due day 27.
    assert gaps(facts, clock=60) == [gap("m2", end=13, raised=27)]


def test_before_the_deadline_nothing_is_raised_and_the_deadline_is_the_next_change() -> None:
    assert gaps(M1, clock=23.9) == []
    assert change(M1, clock=23.9) == day(24)
    assert change(M1, clock=5) == day(10)
    assert gaps(M1, clock=24) == [gap("m1", end=10, raised=24)]
    assert change(M1, clock=24) is None


def test_an_end_with_no_known_start_is_ignored() -> None:
    assert gaps([ended("m1", 10)], clock=60) == []
    assert change([ended("m1", 10)], clock=60) is None


def test_a_start_known_only_after_the_deadline_completes_the_gap_then() -> None:
    facts = [started("m1", 0, recorded=30), ended("m1", 10)]

    assert gaps(facts, clock=60) == [gap("m1", end=10, raised=30)]


# --- knowledge time ------------------------------------------------------------------------


def test_an_end_reported_after_its_deadline_is_raised_when_it_is_recorded() -> None:
    facts = [started("m1", 0), ended("m1", 10, recorded=30)]

    assert gaps(facts, clock=29) == []
    assert change(facts, clock=20) == day(30)
    assert gaps(facts, clock=40) == [gap("m1", end=10, raised=30)]


def test_an_end_reported_late_but_before_its_deadline_is_raised_at_the_deadline() -> None:
    facts = [started("m1", 0), ended("m1", 10, recorded=20)]

    assert gaps(facts, clock=40) == [gap("m1", end=10, raised=24)]


def test_a_successor_known_only_after_the_deadline_resolves_with_late_information() -> None:
    facts = [*M1, started("m2", 15, recorded=27)]

    assert gaps(facts, clock=26) == [gap("m1", end=10, raised=24)]
    assert change(facts, clock=20) == day(24)
    assert change(facts, clock=25) == day(27)
    assert gaps(facts, clock=40) == [
        gap("m1", end=10, raised=24, resolved=27, how="late_information")
    ]
    assert change(facts, clock=27) is None


def test_a_successor_after_the_window_resolves_when_it_starts() -> None:
    facts = [*M1, started("m2", 30)]

    assert gaps(facts, clock=29) == [gap("m1", end=10, raised=24)]
    assert gaps(facts, clock=40) == [
        gap("m1", end=10, raised=24, resolved=30, how="engagement_started")
    ]


def test_a_successor_after_the_window_reported_late_resolves_when_it_is_known() -> None:
    facts = [*M1, started("m2", 30, recorded=33)]

    assert gaps(facts, clock=40) == [
        gap("m1", end=10, raised=24, resolved=33, how="engagement_started")
    ]


def test_a_start_planned_ahead_counts_from_when_it_occurs() -> None:
    inside = [*M1, started("m2", 12, recorded=2)]
    after = [*M1, started("m2", 30, recorded=2)]

    assert gaps(inside, clock=60) == []
    assert gaps(after, clock=27) == [gap("m1", end=10, raised=24)]
    assert change(after, clock=27) == day(30)
    assert gaps(after, clock=60) == [
        gap("m1", end=10, raised=24, resolved=30, how="engagement_started")
    ]


def test_a_late_end_after_the_successor_started_raises_and_resolves_at_once() -> None:
    facts = [started("m1", 0), ended("m1", 10, recorded=30), started("m2", 27)]

    assert gaps(facts, clock=40) == [
        gap("m1", end=10, raised=30, resolved=30, how="engagement_started")
    ]


def test_facts_recorded_after_the_clock_are_not_yet_known() -> None:
    facts = [*M1, started("m2", 15, recorded=27)]

    assert gaps(facts, clock=26.5) == [gap("m1", end=10, raised=24)]


def test_an_end_that_moves_under_later_facts_is_a_new_condition() -> None:
    # The dropout on day 10 ends m1 (deadline day 17); on day 20 m1's own planned end on
    # day 8 becomes known: the gap began on day 8, deadline day 22.
    facts = [started("m1", 0), dropout(10), ended("m1", 8, recorded=20)]

    assert gaps(facts, clock=40) == [
        gap("m1", end=10, raised=17, resolved=20, how="late_information"),
        gap("m1", end=8, raised=22),
    ]


def test_an_alert_whose_deadline_moves_later_stays_open() -> None:
    # Known first as ended by the dropout (deadline day 17); on day 20 its own planned end
    # at the same instant becomes known, which stands (deadline day 24). The gap is the same.
    facts = [started("m1", 0), dropout(10), ended("m1", 10, recorded=20)]

    assert gaps(facts, clock=40) == [gap("m1", end=10, raised=17)]
    assert gaps([*facts, started("m2", 22, recorded=23)], clock=40) == [
        gap("m1", end=10, raised=17, resolved=23, how="late_information")
    ]


# --- the journey -----------------------------------------------------------------------------


@pytest.mark.parametrize(("occurred", "recorded"), [(15, 15), (20, 24), (5, 5)])
def test_no_alert_is_raised_for_a_journey_closed_by_the_deadline(
    occurred: float, recorded: float
) -> None:
    facts = [referred(-1), *M1, closed(occurred, recorded)]

    assert gaps(facts, clock=60) == []
    # Once the end and the closing are known, the deadline is not worth waking up for.
    assert change(facts, clock=max(recorded, 10)) is None


@pytest.mark.parametrize(
    ("occurred", "recorded", "resolved"),
    [(30, 30, 30), (20, 30, 30), (30, 20, 30)],  # closed late, known late, planned ahead
)
def test_a_closing_after_the_deadline_resolves_the_alert(
    occurred: float, recorded: float, resolved: float
) -> None:
    facts = [referred(-1), *M1, closed(occurred, recorded)]

    assert gaps(facts, clock=29) == [gap("m1", end=10, raised=24)]
    assert gaps(facts, clock=60) == [
        gap("m1", end=10, raised=24, resolved=resolved, how="journey_closed")
    ]


def test_a_later_referral_opens_a_new_journey_whose_gaps_are_raised() -> None:
    facts = [referred(0), started("m1", 1), ended("m1", 3), closed(5), referred(50)]
    facts += [started("m2", 55), ended("m2", 60)]

    assert gaps(facts, clock=90) == [gap("m2", end=60, raised=74)]


# --- one condition, one alert ----------------------------------------------------------------


def test_duplicate_facts_change_nothing() -> None:
    facts = [referred(-1), *M1, started("m2", 15, recorded=27), started("m3", 40), ended("m3", 41)]
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=3), seq=9) for f in facts]

    expected = gaps(facts, clock=90)
    assert gaps(facts + facts + redelivered, clock=90) == expected
    assert gaps(redelivered[::-1] + facts, clock=90) == expected


# --- properties -------------------------------------------------------------------------------


@st.composite
def journeys(draw: st.DrawFn) -> list[Fact]:
    """Random journeys of measures, placements, dropouts and closings, with every fact at a
    distinct recorded_at (a whole number of days plus its own minute)."""
    drawn = DrawnFacts(day)
    make = drawn.make

    delays = st.integers(min_value=-5, max_value=30)
    for n in range(draw(st.integers(min_value=1, max_value=5))):
        kind = draw(st.sampled_from(["measure", "placement"]))
        start = draw(st.integers(min_value=0, max_value=120))
        make(f"{kind}.started", start, draw(delays), **{f"{kind}_id": f"x{n}"})
        if draw(st.booleans()):
            end = start + draw(st.integers(min_value=1, max_value=40))
            reason = draw(st.sampled_from(["QUIT", "IKKE_MOTT", "FERDIG", "CONTRACT_ENDED"]))
            ids_and_reason = {f"{kind}_id": f"x{n}", "reason": reason}
            make(f"{kind}.ended", end, draw(delays.map(abs)), **ids_and_reason)
    if draw(st.booleans()):
        make("participant.dropped_out", draw(st.integers(0, 150)), draw(delays.map(abs)))
    if draw(st.booleans()):
        make("participant.referred", 0, 0, channel="nav")
        make("journey.closed", draw(st.integers(0, 200)), draw(delays), reason="OTHER")
    return drawn.facts


def gaps_and_next_change(
    journey: Journey, clock: datetime, rules: RuleSettings
) -> tuple[list[Alert], datetime | None]:
    """What the properties check of this rule: its alerts, and when any rule's can change."""
    return handover_gaps(journey, clock, rules), next_change(journey, clock, rules)


clocks = st.integers(min_value=-10, max_value=250).map(lambda d: day(d) + timedelta(hours=7))


@settings(max_examples=300, deadline=None)
@given(journeys(), clocks, st.randoms(use_true_random=False))
def test_arrival_order_and_redelivery_change_nothing(
    facts: list[Fact], clock: datetime, rnd: random.Random
) -> None:
    check_arrival_order_and_redelivery_change_nothing(
        facts, clock, rnd, RULES, evaluation=gaps_and_next_change
    )


@settings(max_examples=300, deadline=None)
@given(journeys(), clocks)
def test_nothing_changes_before_next_change(facts: list[Fact], clock: datetime) -> None:
    journey = Journey("p", facts)
    alerts = handover_gaps(journey, clock, RULES)
    upcoming = next_change(journey, clock, RULES)

    just_before = (upcoming or day(400)) - timedelta(microseconds=1)
    assert handover_gaps(journey, just_before, RULES) == alerts


@settings(max_examples=300, deadline=None)
@given(journeys(), clocks, st.integers(min_value=0, max_value=200))
def test_an_alert_once_raised_is_kept_and_a_resolution_is_final(
    facts: list[Fact], clock: datetime, later: int
) -> None:
    journey = Journey("p", facts)
    before = handover_gaps(journey, clock, RULES)
    after_list = handover_gaps(journey, clock + timedelta(days=later), RULES)
    after = {a.condition_key: a for a in after_list}

    assert len(after) == len(after_list)  # one condition, one alert
    for alert in before:
        assert alert.raised_at <= clock
        assert alert.resolved_at is None or alert.raised_at <= alert.resolved_at <= clock
        kept = after[alert.condition_key]
        assert kept.raised_at == alert.raised_at
        if alert.status == "resolved":
            assert kept == alert


@settings(max_examples=200, deadline=None)
@given(journeys(), clocks)
def test_following_next_change_agrees_with_one_evaluation_at_the_end(
    facts: list[Fact], until: datetime
) -> None:
    """The live service wakes at each next_change; replay evaluates once at --until."""
    check_following_next_change_agrees_with_one_evaluation(
        facts,
        until,
        day(-20),
        RULES,
        evaluation=gaps_and_next_change,
        unchanged_just_before=False,
    )
