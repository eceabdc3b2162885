"""Caseloads: whose caseload a person is in over time (`responsibilities`), and where they
stand in their engagements (`standing`). Expected values are worked out by hand from the
contract's recipient (§4): the coordinator responsible, else the team of the latest
assignment, triage or referral; a closing ends both the journey and the responsibility.
Days count from T0."""

from __future__ import annotations

from services.outcomes.domain import Engagement
from services.outcomes.journey import Journey
from services.outcomes.recipients import Responsibility, responsibilities
from services.outcomes.timeline import standing, standing_in_journey
from tests.unit.test_alert_engine import (
    PARTICIPANT,
    assigned,
    day,
    fact,
    referred,
    triaged,
    unassigned,
)


def queue(team: str, since: float, until: float | None = None) -> Responsibility:
    return Responsibility(None, team, day(since), None if until is None else day(until))


def coordinator(who: str, team: str, since: float, until: float | None = None) -> Responsibility:
    return Responsibility(who, team, day(since), None if until is None else day(until))


def test_a_referral_waits_in_its_teams_queue_until_a_coordinator_is_assigned() -> None:
    journey = Journey(PARTICIPANT, [referred("team-a", 0), assigned("c-17", "team-b", 3)])

    assert responsibilities(journey) == [
        queue("team-a", 0, 3),
        coordinator("c-17", "team-b", 3),
    ]


def test_a_hand_over_within_one_instant_passes_through_no_queue() -> None:
    journey = Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            assigned("c-17", "team-a", 1),
            assigned("c-18", "team-a", 5),
            unassigned("c-17", 5),
        ],
    )

    assert responsibilities(journey) == [
        queue("team-a", 0, 1),
        coordinator("c-17", "team-a", 1, 5),
        coordinator("c-18", "team-a", 5),
    ]


def test_an_unassignment_leaves_the_person_in_the_queue_of_their_latest_team() -> None:
    journey = Journey(
        PARTICIPANT,
        [triaged("team-t", 0), assigned("c-17", "team-b", 2), unassigned("c-17", 6)],
    )

    assert responsibilities(journey) == [
        queue("team-t", 0, 2),
        coordinator("c-17", "team-b", 2, 6),
        queue("team-b", 6),
    ]


def test_unassigning_someone_already_replaced_changes_nothing() -> None:
    journey = Journey(
        PARTICIPANT,
        [assigned("c-17", "team-a", 0), assigned("c-18", "team-a", 2), unassigned("c-17", 4)],
    )

    assert responsibilities(journey) == [
        coordinator("c-17", "team-a", 0, 2),
        coordinator("c-18", "team-a", 2),
    ]


def test_a_triage_by_another_team_does_not_interrupt_the_coordinator() -> None:
    journey = Journey(PARTICIPANT, [assigned("c-17", "team-a", 0), triaged("team-t", 3)])

    assert responsibilities(journey) == [coordinator("c-17", "team-a", 0)]


def test_a_closed_journey_is_in_no_caseload_until_a_new_one_opens() -> None:
    journey = Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            assigned("c-17", "team-a", 1),
            fact("journey.closed", 10, reason="GOAL_REACHED"),
            referred("team-c", 20),
        ],
    )

    assert responsibilities(journey) == [
        queue("team-a", 0, 1),
        coordinator("c-17", "team-a", 1, 10),
        queue("team-c", 20),
    ]


def test_the_same_coordinator_assigned_again_by_another_team_moves_to_that_team() -> None:
    journey = Journey(
        PARTICIPANT,
        [referred("team-a", 0), assigned("c-17", "team-a", 1), assigned("c-17", "team-b", 4)],
    )

    assert responsibilities(journey) == [
        queue("team-a", 0, 1),
        coordinator("c-17", "team-a", 1, 4),
        coordinator("c-17", "team-b", 4),
    ]


def test_a_hand_over_undone_within_one_instant_leaves_the_first_coordinator_as_they_were() -> None:
    # On day 5, at one instant: c-17 unassigned, c-18 assigned, then c-17 assigned again.
    journey = Journey(
        PARTICIPANT,
        [
            assigned("c-17", "team-a", 0),
            unassigned("c-17", 5),
            assigned("c-18", "team-a", 5),
            assigned("c-17", "team-a", 5),
        ],
    )

    assert responsibilities(journey) == [coordinator("c-17", "team-a", 0)]


def test_an_assignment_after_a_closing_opens_no_journey() -> None:
    # A journey opens with a referral or triage (CONTRACT §3); the alerts still go to c-18.
    journey = Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            assigned("c-17", "team-a", 1),
            fact("journey.closed", 10, reason="GOAL_REACHED"),
            assigned("c-18", "team-a", 12),
        ],
    )

    assert responsibilities(journey) == [
        queue("team-a", 0, 1),
        coordinator("c-17", "team-a", 1, 10),
    ]


def test_an_assignment_dated_ahead_takes_effect_on_its_date() -> None:
    journey = Journey(PARTICIPANT, [referred("team-a", 0), assigned("c-17", "team-a", 6, 2)])

    assert responsibilities(journey) == [queue("team-a", 0, 6), coordinator("c-17", "team-a", 6)]


def test_what_happened_decides_not_the_order_it_was_recorded_in() -> None:
    # The referral, recorded last, happened first; the unassignment was recorded later.
    journey = Journey(
        PARTICIPANT,
        [assigned("c-17", "team-b", 3, 3), unassigned("c-17", 8, 12), referred("team-a", 1, 20)],
    )

    assert responsibilities(journey) == [
        queue("team-a", 1, 3),
        coordinator("c-17", "team-b", 3, 8),
        queue("team-b", 8),
    ]


def test_someone_known_only_from_measures_is_in_no_caseload() -> None:
    started = fact("measure.started", 0, measure_id="m-1", measure_code="AVKLARING", provider="p-1")

    assert responsibilities(Journey(PARTICIPANT, [started])) == []


def measure(start: float, end: float | None) -> Engagement:
    return Engagement("measure", f"m-{start}", day(start), None if end is None else day(end), False)


def test_before_anything_starts_the_person_has_not_started() -> None:
    assert standing([], day(5)) == ("not_started", None)
    assert standing([measure(8, None)], day(5)) == ("not_started", None)


def test_while_engagements_follow_on_without_a_gap_the_person_is_engaged_since_the_first() -> None:
    assert standing([measure(1, 4), measure(4, None)], day(5)) == ("engaged", day(1))


def test_after_the_last_end_the_person_is_between_since_it() -> None:
    assert standing([measure(1, 4), measure(2, 3)], day(5)) == ("between", day(4))


def test_after_a_gap_the_person_is_engaged_since_it_closed() -> None:
    engagements = [measure(1, 3), measure(6, 9), measure(7, None), measure(20, None)]

    assert standing(engagements, day(10)) == ("engaged", day(6))


def test_in_a_journey_opened_again_what_ended_before_it_does_not_count() -> None:
    started = fact("measure.started", 1, measure_id="m-1", measure_code="AVKLARING", provider="p-1")
    ended = fact("measure.ended", 4, measure_id="m-1", status="FULLFORT", reason="FERDIG")
    closed = fact("journey.closed", 6, reason="GOAL_REACHED")
    first = [referred("team-a", 0), started, ended]

    assert standing_in_journey(Journey(PARTICIPANT, first), day(8)) == ("between", day(4))
    again = Journey(PARTICIPANT, [*first, closed, referred("team-a", 7)])
    assert standing_in_journey(again, day(8)) == ("not_started", None)
