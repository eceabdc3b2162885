"""The rule engine's own decisions: what to store when the rules speak (CONTRACT §4), who an
alert goes to (§4 Recipient), and the live clock (§3).

Expected values are worked out by hand from the contract. Days count from T0; the alerts
fed to `alert_changes` are written out as the rules would give them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from services.kernel.settings import RuleSettings
from services.outcomes.alerts import StoredAlert
from services.outcomes.domain import Fact
from services.outcomes.engine import alert_changes, alert_id, judge
from services.outcomes.journey import Journey
from services.outcomes.recipients import UNADDRESSED, Recipient, recipient_at
from services.outcomes.rules import Alert, Resolution, Status, evaluate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PARTICIPANT = "a" * 64
OTHER_PARTICIPANT = "b" * 64
_ids = count()
RULES = RuleSettings()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def fact(type_: str, occurred: float, recorded: float | None = None, **data: Any) -> Fact:
    return Fact(
        f"e{next(_ids)}",
        type_,
        day(occurred),
        day(occurred if recorded is None else recorded),
        data,
    )


def referred(team: str, at: float, recorded: float | None = None) -> Fact:
    return fact("participant.referred", at, recorded, channel="nav", org_unit=team)


def triaged(team: str, at: float, recorded: float | None = None) -> Fact:
    return fact(
        "participant.triaged",
        at,
        recorded,
        need_group="TRENGER_VEILEDNING",
        main_goal="SKAFFE_ARBEID",
        needs_coordinator=True,
        org_unit=team,
    )


def assigned(coordinator: str, team: str, at: float, recorded: float | None = None) -> Fact:
    return fact("coordinator.assigned", at, recorded, coordinator_id=coordinator, org_unit=team)


def unassigned(coordinator: str, at: float, recorded: float | None = None) -> Fact:
    return fact("coordinator.unassigned", at, recorded, coordinator_id=coordinator, reason="moved")


# --- alert_changes -----------------------------------------------------------------------

# A measure m-1 ended on day 10 (planned): the handover gap is due on day 24.
GAP_KEY = "HANDOVER_GAP:m-1:2025-03-13T09:00:00+00:00"
GAP_ID = alert_id(PARTICIPANT, GAP_KEY)
CLOCK = day(40)


def gap_alert(
    status: Status = "open",
    resolved_at: datetime | None = None,
    resolution: Resolution | None = None,
) -> Alert:
    return Alert(
        rule="HANDOVER_GAP",
        subject="m-1",
        condition_key=GAP_KEY,
        raised_at=day(24),
        status=status,
        resolved_at=resolved_at,
        resolution=resolution,
    )


def stored_gap(
    status: str = "open",
    resolved_at: datetime | None = None,
    resolution: str | None = None,
) -> StoredAlert:
    """The gap as stored when it was raised on day 24 to c-17 of team-b."""
    return StoredAlert(
        GAP_ID, PARTICIPANT, "HANDOVER_GAP", "m-1", "c-17", "team-b",
        day(24), status, resolved_at, resolution,
    )  # fmt: skip


def coordinated_journey() -> Journey:
    """Referred to team-a, then c-17 of team-b from day 1, then c-99 of team-c from day 30."""
    return Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            assigned("c-17", "team-b", 1),
            assigned("c-99", "team-c", 30),
        ],
    )


def test_an_alert_addressed_to_no_one_goes_to_the_unaddressed_queue() -> None:
    # Measures alone: no coordinator, triage or referral known, so CONTRACT §4 names no
    # recipient; live, such alerts wait in a queue of their own rather than reach nobody.
    changes = alert_changes(Journey(PARTICIPANT, []), [gap_alert()], {}, CLOCK)

    assert [(alert.coordinator, alert.org_unit) for _, alert in changes] == [(None, UNADDRESSED)]
    assert recipient_at(Journey(PARTICIPANT, []), CLOCK) == Recipient(None, None)  # as replay


def test_a_newly_derived_open_alert_is_raised_to_the_coordinator_at_its_raise_time() -> None:
    changes = alert_changes(coordinated_journey(), [gap_alert()], {}, CLOCK)

    assert changes == [
        (
            "raised",
            StoredAlert(
                GAP_ID, PARTICIPANT, "HANDOVER_GAP", "m-1", "c-17", "team-b",
                day(24), "open", None, None,
            ),
        )
    ]  # fmt: skip


def test_a_new_alert_that_is_already_resolved_is_raised_and_then_resolved() -> None:
    derived = gap_alert("resolved", day(27), "engagement_started")

    changes = alert_changes(coordinated_journey(), [derived], {}, CLOCK)

    assert changes == [
        ("raised", stored_gap()),
        ("resolved", stored_gap("resolved", day(27), "engagement_started")),
    ]


def test_a_stored_open_alert_the_rules_now_resolve_is_resolved_as_the_rule_says() -> None:
    # The stored alert keeps the recipient it was raised to, whoever holds the case now.
    derived = gap_alert("resolved", day(33), "engagement_started")

    changes = alert_changes(coordinated_journey(), [derived], {GAP_ID: stored_gap()}, CLOCK)

    assert changes == [("resolved", stored_gap("resolved", day(33), "engagement_started"))]


def test_a_stored_open_alert_no_longer_derived_is_resolved_as_late_information_now() -> None:
    changes = alert_changes(coordinated_journey(), [], {GAP_ID: stored_gap()}, CLOCK)

    assert changes == [("resolved", stored_gap("resolved", CLOCK, "late_information"))]


def test_an_alert_stored_open_and_still_open_is_not_raised_again() -> None:
    assert alert_changes(coordinated_journey(), [gap_alert()], {GAP_ID: stored_gap()}, CLOCK) == []


def test_a_stored_resolved_alert_is_left_alone_whatever_the_rules_now_say() -> None:
    acknowledged = stored_gap("resolved", day(26), "acknowledged")
    journey = coordinated_journey()

    assert alert_changes(journey, [gap_alert()], {GAP_ID: acknowledged}, CLOCK) == []
    late = gap_alert("resolved", day(30), "late_information")
    assert alert_changes(journey, [late], {GAP_ID: acknowledged}, CLOCK) == []
    assert alert_changes(journey, [], {GAP_ID: acknowledged}, CLOCK) == []


def test_an_open_alert_raised_after_the_clock_keeps_its_person_due_until_the_clock_gets_it() -> (
    None
):
    # The gap was raised live on day 24; then a backfill of older facts steps the clock
    # back to day 5, where the rules see nothing more to come for this journey.
    journey = Journey(PARTICIPANT, [referred("team-a", 0)])
    assert evaluate(journey, day(5), RuleSettings()) == ([], None)

    changes, due, finished = judge({PARTICIPANT: journey}, {GAP_ID: stored_gap()}, day(5), RULES)
    assert (changes, due, finished) == ([], {PARTICIPANT: day(24)}, [])

    # Once the clock gets there, what is known says the gap never opened.
    changes, due, finished = judge({PARTICIPANT: journey}, {GAP_ID: stored_gap()}, day(24), RULES)
    assert changes == [("resolved", stored_gap("resolved", day(24), "late_information"))]
    assert (due, finished) == ({}, [PARTICIPANT])


def test_a_resolved_alert_raised_after_the_clock_keeps_no_one_due() -> None:
    journey = Journey(PARTICIPANT, [referred("team-a", 0)])
    acknowledged = {GAP_ID: stored_gap("resolved", day(26), "acknowledged")}
    assert judge({PARTICIPANT: journey}, acknowledged, day(5), RULES) == ([], {}, [PARTICIPANT])


def test_the_alert_id_is_the_same_in_every_run() -> None:
    # Another process, with another hash seed, derives the same id from the same condition.
    program = (
        "from services.outcomes.engine import alert_id;"
        f"print(alert_id({PARTICIPANT!r}, {GAP_KEY!r}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )

    assert run.stdout.strip() == GAP_ID
    assert alert_id(PARTICIPANT, GAP_KEY) == GAP_ID


def test_the_alert_id_differs_by_person_and_by_condition() -> None:
    other_gap = "HANDOVER_GAP:m-2:2025-03-13T09:00:00+00:00"

    assert alert_id(OTHER_PARTICIPANT, GAP_KEY) != GAP_ID
    assert alert_id(PARTICIPANT, other_gap) != GAP_ID
    assert alert_id(PARTICIPANT, other_gap) != alert_id(OTHER_PARTICIPANT, other_gap)


# --- recipient_at ------------------------------------------------------------------------


def test_the_recipient_is_the_coordinator_assigned_when_the_alert_is_raised() -> None:
    journey = Journey(PARTICIPANT, [referred("team-a", 0), assigned("c-17", "team-b", 1)])

    assert recipient_at(journey, day(24)) == Recipient("c-17", "team-b")


def test_a_coordinator_who_replaced_another_before_the_raise_is_the_recipient() -> None:
    journey = Journey(
        PARTICIPANT,
        [referred("team-a", 0), assigned("c-17", "team-b", 1), assigned("c-18", "team-c", 5)],
    )

    assert recipient_at(journey, day(24)) == Recipient("c-18", "team-c")


def test_a_coordinator_assigned_after_the_raise_is_not_the_recipient() -> None:
    assert recipient_at(coordinated_journey(), day(24)) == Recipient("c-17", "team-b")


def test_with_the_coordinator_unassigned_the_team_of_the_latest_assignment_is_the_recipient() -> (
    None
):
    journey = Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            triaged("team-t", 1),
            assigned("c-17", "team-b", 2),
            unassigned("c-17", 3),
        ],
    )

    assert recipient_at(journey, day(24)) == Recipient(None, "team-b")


def test_with_the_coordinator_unassigned_a_later_triage_decides_the_team() -> None:
    journey = Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            assigned("c-17", "team-b", 1),
            triaged("team-t", 2),
            unassigned("c-17", 3),
        ],
    )

    assert recipient_at(journey, day(24)) == Recipient(None, "team-t")


def test_with_no_coordinator_ever_the_referring_team_is_the_recipient() -> None:
    journey = Journey(PARTICIPANT, [referred("team-a", 0)])

    assert recipient_at(journey, day(24)) == Recipient(None, "team-a")


def test_unassigning_someone_else_leaves_the_coordinator_in_place() -> None:
    journey = Journey(
        PARTICIPANT, [referred("team-a", 0), assigned("c-17", "team-b", 1), unassigned("c-9", 2)]
    )

    assert recipient_at(journey, day(24)) == Recipient("c-17", "team-b")


def test_an_assignment_recorded_after_the_raise_does_not_decide_the_recipient() -> None:
    # Assigned on day 1 in the world, but nobody knew until day 30.
    journey = Journey(PARTICIPANT, [referred("team-a", 0), assigned("c-17", "team-b", 1, 30)])

    assert recipient_at(journey, day(24)) == Recipient(None, "team-a")


def test_an_unassignment_recorded_after_the_raise_does_not_decide_the_recipient() -> None:
    journey = Journey(
        PARTICIPANT,
        [referred("team-a", 0), assigned("c-17", "team-b", 1), unassigned("c-17", 20, 30)],
    )

    assert recipient_at(journey, day(24)) == Recipient("c-17", "team-b")


def test_a_closing_ends_the_coordinators_responsibility() -> None:
    # c-17 was never unassigned; after the closing the person is back with team-c.
    journey = Journey(
        PARTICIPANT,
        [
            referred("team-a", 0),
            assigned("c-17", "team-b", 1),
            fact("journey.closed", 10, reason="GOAL_REACHED"),
            referred("team-c", 20),
        ],
    )

    assert recipient_at(journey, day(15)) == Recipient(None, "team-b")
    assert recipient_at(journey, day(24)) == Recipient(None, "team-c")


def test_a_hand_over_within_one_instant_leaves_the_new_coordinator_as_the_rules_take_it() -> None:
    # Reported assignment first, unassignment second, both on day 5: the rules take the
    # unassignment first (a hand-over), so c-17 is the coordinator.
    journey = Journey(
        PARTICIPANT,
        [referred("team-a", 0), assigned("c-17", "team-b", 5), unassigned("c-17", 5, 6)],
    )

    assert recipient_at(journey, day(24)) == Recipient("c-17", "team-b")


def test_the_latest_team_is_the_latest_in_the_world_not_the_latest_reported() -> None:
    # The referral to team-a happened first but was reported after the triage to team-t.
    journey = Journey(PARTICIPANT, [triaged("team-t", 3), referred("team-a", 1, 5)])

    assert recipient_at(journey, day(24)) == Recipient(None, "team-t")
