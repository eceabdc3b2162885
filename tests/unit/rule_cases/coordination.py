"""The cases of NO_COORDINATOR (`services/outcomes/rules/coordination.py`)."""

from __future__ import annotations

from tests.unit.replaying import z
from tests.unit.rule_cases import ANA, J0, Case, opened, reordered, resolved

# -- NO_COORDINATOR: a need unmet at T, no assignment in [T, T+7d], raised T+7d ----------


def need(*lines: str) -> list[str]:
    """Ana referred on day 0, triaged on day 2 as needing a coordinator: due day 9."""
    return [ANA.referred(0), ANA.triaged(2, needs=True), *lines]


NO_COORDINATOR: dict[str, Case] = {
    "raised 7 days after a triage that needs a coordinator": Case(
        lambda: need(), [opened(J0, z(9))]
    ),
    "a triage that needs none raises nothing": Case(lambda: [ANA.referred(0), ANA.triaged(2)], []),
    "assigned within the window": Case(lambda: need(ANA.assigned("c-1", 5)), []),
    "assigned on day T+7d itself is in time (the window is closed)": Case(
        lambda: need(ANA.assigned("c-1", 9)), []
    ),
    "a coordinator already assigned before the triage": Case(
        lambda: [ANA.referred(0), ANA.assigned("c-1", 1), ANA.triaged(2, needs=True)], []
    ),
    "assigned after the window: coordinator_assigned": Case(
        lambda: need(ANA.assigned("c-1", 15)),
        [resolved(J0, z(9), z(15), "coordinator_assigned")],
    ),
    "assigned after the window, known later: resolved when known": Case(
        lambda: need(ANA.assigned("c-1", 15, recorded=20)),
        [resolved(J0, z(9), z(20), "coordinator_assigned")],
    ),
    "late information: assigned in time, known after the deadline": Case(
        lambda: need(ANA.assigned("c-1", 5, recorded=12)),
        [resolved(J0, z(9), z(12), "late_information")],
    ),
    "raised late: the triage known only after its deadline": Case(
        lambda: [ANA.referred(0), ANA.triaged(2, needs=True, recorded=20)],
        [opened(J0, z(20))],
    ),
    "raised late and resolved at once: the later assignment was already known": Case(
        lambda: [
            ANA.referred(0),
            ANA.triaged(2, needs=True, recorded=20),
            ANA.assigned("c-1", 15),
        ],
        [resolved(J0, z(20), z(20), "coordinator_assigned")],
    ),
    "an unassignment while the latest triage needs a coordinator": Case(
        lambda: need(ANA.assigned("c-1", 3), ANA.unassigned("c-1", 20)),
        [opened(J0, z(27))],
    ),
    "recipient change: a coordinator reassigned before the deadline": Case(
        lambda: need(ANA.assigned("c-1", 3), ANA.unassigned("c-1", 20), ANA.assigned("c-2", 25)),
        [],
    ),
    "unassigning a coordinator already replaced changes nothing": Case(
        lambda: need(ANA.assigned("c-1", 3), ANA.assigned("c-2", 10), ANA.unassigned("c-1", 20)),
        [],
    ),
    "an unassignment when the latest triage needs none": Case(
        lambda: [
            ANA.referred(0),
            ANA.triaged(2),
            ANA.assigned("c-1", 3),
            ANA.unassigned("c-1", 20),
        ],
        [],
    ),
    "a hand-over within one instant raises nothing, whatever the file order": Case(
        lambda: need(ANA.assigned("c-1", 3), ANA.assigned("c-2", 20), ANA.unassigned("c-1", 20)),
        [],
    ),
    "a triage inside the need begins nothing new, even saying no need": Case(
        lambda: need(ANA.triaged(5, needs=False)), [opened(J0, z(9))]
    ),
    "a second triage needing one is still one unmet need": Case(
        lambda: need(ANA.triaged(5, needs=True)), [opened(J0, z(9))]
    ),
    "not yet due at --until": Case(lambda: need(), [], until=8),
    "closure: the journey closes before the deadline": Case(lambda: need(ANA.closed(5)), []),
    "closure: the journey closes after the deadline": Case(
        lambda: need(ANA.closed(15)), [resolved(J0, z(9), z(15), "journey_closed")]
    ),
    # At one instant a closing is taken first (readings, NO_COORDINATOR): the assignment
    # then belongs after the closing and meets no need of the closed journey.
    "an assignment at the closing's instant comes after it: journey_closed": Case(
        lambda: need(ANA.assigned("c-1", 15), ANA.closed(15)),
        [resolved(J0, z(9), z(15), "journey_closed")],
    ),
    "an assignment and a closing known at one time: coordinator_assigned wins": Case(
        lambda: need(ANA.assigned("c-1", 15, recorded=20), ANA.closed(18, recorded=20)),
        [resolved(J0, z(9), z(20), "coordinator_assigned")],
    ),
    "late information and a closing at one instant: late_information wins": Case(
        lambda: need(ANA.assigned("c-1", 5, recorded=15), ANA.closed(15)),
        [resolved(J0, z(9), z(15), "late_information")],
    ),
    "a new journey decides anew: its first unassignment needs no coordinator": Case(
        lambda: need(
            ANA.assigned("c-1", 4), ANA.closed(10), ANA.referred(20), ANA.unassigned("c-1", 25)
        ),
        [],
    ),
    "duplicates: the same line twice is one event": Case(
        lambda: [*need(line := ANA.assigned("c-1", 15)), line],
        [resolved(J0, z(9), z(15), "coordinator_assigned")],
    ),
    "file order shuffled: recorded_at decides, not the file": Case(
        lambda: reordered(need(ANA.assigned("c-1", 5, recorded=12), ANA.closed(30))),
        [resolved(J0, z(9), z(12), "late_information")],
    ),
}
