"""The cases of NO_START_AFTER_TRIAGE (`services/outcomes/rules/gaps.py`)."""

from __future__ import annotations

from tests.unit.replaying import z
from tests.unit.rule_cases import ANA, J0, J2, J50, Case, measure, opened, reordered, resolved

# -- NO_START_AFTER_TRIAGE: first triage T, nothing active in [T, T+30d], raised T+30d ---


def triage(*lines: str) -> list[str]:
    """Ana referred on day 0, triaged on day 2 (needing no coordinator): due day 32."""
    return [ANA.referred(0), ANA.triaged(2), *lines]


NO_START_AFTER_TRIAGE: dict[str, Case] = {
    "raised 30 days after the first triage, about the journey": Case(
        lambda: triage(), [opened(J0, z(32))]
    ),
    "a triage with no referral opens the journey itself": Case(
        lambda: [ANA.triaged(2)], [opened(J2, z(32))]
    ),
    "a start inside the window": Case(lambda: triage(ANA.started("m1", 20)), []),
    "a start on day T+30d itself is in time (the window is closed)": Case(
        lambda: triage(ANA.started("m1", 32)), []
    ),
    "a measure started before the triage and still active": Case(
        lambda: [ANA.referred(0), ANA.started("m1", 1), ANA.triaged(2)], []
    ),
    "a measure that ended at T exactly was not active in the window": Case(
        lambda: [ANA.referred(0), *measure("m1", 1, 2), ANA.triaged(2)],
        [opened(J0, z(32))],
    ),
    "a placement is an engagement too": Case(lambda: triage(ANA.placed("p1", 20)), []),
    "a start after the window resolves it": Case(
        lambda: triage(ANA.started("m1", 40)),
        [resolved(J0, z(32), z(40), "engagement_started")],
    ),
    "a start after the window known later resolves it when known": Case(
        lambda: triage(ANA.started("m1", 40, recorded=45)),
        [resolved(J0, z(32), z(45), "engagement_started")],
    ),
    "a start after the window planned ahead resolves it when it happens": Case(
        lambda: triage(ANA.started("m1", 40, recorded=10)),
        [resolved(J0, z(32), z(40), "engagement_started")],
    ),
    "late information: a start in the window, known after the deadline": Case(
        lambda: triage(ANA.started("m1", 20, recorded=40)),
        [resolved(J0, z(32), z(40), "late_information")],
    ),
    "late information: a placement in the window, known after the deadline": Case(
        lambda: triage(ANA.placed("p1", 20, recorded=40)),
        [resolved(J0, z(32), z(40), "late_information")],
    ),
    "late information: a referral learnt late opens the journey earlier": Case(
        lambda: [ANA.triaged(2), ANA.referred(0, recorded=40)],
        [resolved(J2, z(32), z(40), "late_information"), opened(J0, z(40))],
    ),
    "raised late: a triage known only after its deadline": Case(
        lambda: [ANA.referred(0), ANA.triaged(2, recorded=40)], [opened(J0, z(40))]
    ),
    "raised late and resolved at once: the later start was already known": Case(
        lambda: [ANA.referred(0), ANA.triaged(2, recorded=50), ANA.started("m1", 40)],
        [resolved(J0, z(50), z(50), "engagement_started")],
    ),
    "only the journey's first triage counts": Case(
        lambda: triage(ANA.triaged(20)), [opened(J0, z(32))]
    ),
    "each journey has its own first triage": Case(
        lambda: triage(ANA.closed(10), ANA.referred(50), ANA.triaged(52)),
        [opened(J50, z(82))],
    ),
    "not yet due at --until": Case(lambda: triage(), [], until=31),
    "due exactly at --until": Case(lambda: triage(), [opened(J0, z(32))], until=32),
    "closure: the journey closes before the deadline": Case(lambda: triage(ANA.closed(20)), []),
    "closure: the journey closes after the deadline": Case(
        lambda: triage(ANA.closed(40)), [resolved(J0, z(32), z(40), "journey_closed")]
    ),
    "closure: GOAL_REACHED closes it too": Case(
        lambda: triage(ANA.closed(40, "GOAL_REACHED")),
        [resolved(J0, z(32), z(40), "journey_closed")],
    ),
    "a start and a closing at one instant: the rule's own resolution wins": Case(
        lambda: triage(ANA.started("m1", 40), ANA.closed(40)),
        [resolved(J0, z(32), z(40), "engagement_started")],
    ),
    "duplicates: the same line twice is one event": Case(
        lambda: [*triage(line := ANA.started("m1", 40)), line],
        [resolved(J0, z(32), z(40), "engagement_started")],
    ),
    "file order shuffled: recorded_at decides, not the file": Case(
        lambda: reordered(triage(ANA.started("m1", 20, recorded=40), ANA.closed(60))),
        [resolved(J0, z(32), z(40), "late_information")],
    ),
}
