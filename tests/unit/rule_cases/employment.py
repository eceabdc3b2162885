"""The cases of SIX_MONTH_CHECK_OVERDUE and EARLY_JOB_EXIT
(`services/outcomes/rules/employment.py`)."""

from __future__ import annotations

from tests.unit.replaying import z
from tests.unit.rule_cases import ANA, Case, opened, reordered, resolved

# -- SIX_MONTH_CHECK_OVERDUE: placement at S, no check known by S+182d+14d ---------------


def placement(*lines: str) -> list[str]:
    """Ana referred on day 0, placed in p1 on day 10: the check is overdue on day 206."""
    return [ANA.referred(0), ANA.placed("p1", 10), *lines]


SIX_MONTH_CHECK_OVERDUE: dict[str, Case] = {
    "raised 196 days after the placement started": Case(
        lambda: placement(), [opened("p1", z(206))]
    ),
    "a check known in time": Case(lambda: placement(ANA.checked("p1", 190)), []),
    "a check known on the deadline itself is in time": Case(
        lambda: placement(ANA.checked("p1", 206)), []
    ),
    "a check recorded after the deadline: check_recorded": Case(
        lambda: placement(ANA.checked("p1", 220)),
        [resolved("p1", z(206), z(220), "check_recorded")],
    ),
    "a check done in time but recorded late: check_recorded, not late_information": Case(
        lambda: placement(ANA.checked("p1", 190, recorded=220)),
        [resolved("p1", z(206), z(220), "check_recorded")],
    ),
    "a check of another placement does not count": Case(
        lambda: placement(ANA.placed("p2", 20), ANA.checked("p2", 190)),
        [opened("p1", z(206))],
    ),
    "a placement that ended early still owes its check": Case(
        lambda: placement(ANA.left("p1", 50)), [opened("p1", z(206))]
    ),
    "raised late: the placement known only after the deadline": Case(
        lambda: [ANA.referred(0), ANA.placed("p1", 10, recorded=250)], [opened("p1", z(250))]
    ),
    "a check known before its placement was known counts": Case(
        lambda: [ANA.referred(0), ANA.placed("p1", 10, recorded=250), ANA.checked("p1", 100)],
        [],
    ),
    "not yet due at --until": Case(lambda: placement(), [], until=205),
    "closure: the journey closes before the deadline": Case(lambda: placement(ANA.closed(100)), []),
    "closure: the journey closes after the deadline": Case(
        lambda: placement(ANA.closed(250)), [resolved("p1", z(206), z(250), "journey_closed")]
    ),
    "closure: GOAL_REACHED before the deadline does not stop it": Case(
        lambda: placement(ANA.closed(100, "GOAL_REACHED")), [opened("p1", z(206))]
    ),
    "closure: GOAL_REACHED after the deadline does not resolve it": Case(
        lambda: placement(ANA.closed(250, "GOAL_REACHED")), [opened("p1", z(206))]
    ),
    "closure: after GOAL_REACHED the check still resolves it": Case(
        lambda: placement(ANA.closed(100, "GOAL_REACHED"), ANA.checked("p1", 220)),
        [resolved("p1", z(206), z(220), "check_recorded")],
    ),
    "closure: GOAL_REACHED and another reason at one instant do stop it": Case(
        lambda: placement(ANA.closed(100, "GOAL_REACHED"), ANA.closed(100, "MOVED")), []
    ),
    "closure: the other reason at that instant known late resolves it": Case(
        lambda: placement(ANA.closed(100, "GOAL_REACHED"), ANA.closed(100, "MOVED", recorded=250)),
        [resolved("p1", z(206), z(250), "journey_closed")],
    ),
    "closure: closing a later journey does not stop it": Case(
        lambda: placement(
            ANA.closed(100, "GOAL_REACHED"), ANA.referred(150), ANA.closed(180, "MOVED")
        ),
        [opened("p1", z(206))],
    ),
    "duplicates: the same line twice is one event": Case(
        lambda: [*placement(line := ANA.checked("p1", 220)), line],
        [resolved("p1", z(206), z(220), "check_recorded")],
    ),
    "file order shuffled: recorded_at decides, not the file": Case(
        lambda: reordered(
            placement(ANA.checked("p1", 190, recorded=220), ANA.closed(300, "GOAL_REACHED"))
        ),
        [resolved("p1", z(206), z(220), "check_recorded")],
    ),
}


# -- EARLY_JOB_EXIT: a placement ends QUIT/DISMISSED under 182 days after its start ------


def job(*lines: str) -> list[str]:
    """Ana referred on day 0, placed in p1 on day 10."""
    return [ANA.referred(0), ANA.placed("p1", 10), *lines]


EARLY_JOB_EXIT: dict[str, Case] = {
    "QUIT: raised when the end is known, and left open": Case(
        lambda: job(ANA.left("p1", 100)), [opened("p1", z(100))]
    ),
    "DISMISSED": Case(lambda: job(ANA.left("p1", 100, "DISMISSED")), [opened("p1", z(100))]),
    "CONTRACT_ENDED is no early exit": Case(lambda: job(ANA.left("p1", 100, "CONTRACT_ENDED")), []),
    "CONVERTED is no early exit": Case(lambda: job(ANA.left("p1", 100, "CONVERTED")), []),
    "181 days is early": Case(lambda: job(ANA.left("p1", 191)), [opened("p1", z(191))]),
    "182 days is not early": Case(lambda: job(ANA.left("p1", 192)), []),
    "a dropout says nothing about why the job ended": Case(lambda: job(ANA.dropped_out(100)), []),
    "raised late: an end known late is raised when known": Case(
        lambda: job(ANA.left("p1", 100, recorded=130)), [opened("p1", z(130))]
    ),
    "an end recorded ahead is raised when it happens": Case(
        lambda: job(ANA.left("p1", 100, recorded=90)), [opened("p1", z(100))]
    ),
    "an end in a new journey is alerted in that journey": Case(
        lambda: job(ANA.closed(90), ANA.referred(95), ANA.left("p1", 100)),
        [opened("p1", z(100))],
    ),
    "closure: the journey closes after the end": Case(
        lambda: job(ANA.left("p1", 100), ANA.closed(150)),
        [resolved("p1", z(100), z(150), "journey_closed")],
    ),
    "closure: GOAL_REACHED closes it too": Case(
        lambda: job(ANA.left("p1", 100), ANA.closed(150, "GOAL_REACHED")),
        [resolved("p1", z(100), z(150), "journey_closed")],
    ),
    "closure: the journey closed before the job ended": Case(
        lambda: job(ANA.closed(90), ANA.left("p1", 100)), []
    ),
    "closure: an end known only after the journey closed": Case(
        lambda: job(ANA.left("p1", 100, recorded=130), ANA.closed(120)), []
    ),
    "duplicates: the same line twice is one event": Case(
        lambda: [*job(line := ANA.left("p1", 100)), line], [opened("p1", z(100))]
    ),
    "file order shuffled: recorded_at decides, not the file": Case(
        lambda: reordered(job(ANA.left("p1", 100, recorded=130), ANA.closed(150))),
        [resolved("p1", z(130), z(150), "journey_closed")],
    ),
}
