"""`los replay` (CONTRACT §5) for the six rules other than HANDOVER_GAP (CONTRACT §4).

One table of cases per rule, in the manner of `test_replay.py` and with its synthetic
people and helpers: edge events with synthetic national ids go through
`services.outcomes.replay.replay`, the entry point of `los replay`, and the alert lines of
the rule under test are compared with outlines (subject, raised_at, status, resolved_at,
resolution) worked out by hand from CONTRACT §3-§5 and docs/contract-readings.md. Other
rules may raise alerts about the same history; each table only looks at its own rule.

Day 0 is 2025-01-06 09:00 +01:00 (08:00Z), the day numbers of `test_replay.py`. A journey
opened by a referral on day 0 is the subject `journey:2025-01-06T08:00:00+00:00`. Unless
a case says otherwise, `--until` is day 450.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

import pytest

from services.kernel.settings import RuleSettings
from services.outcomes.replay import replay
from tests.unit.test_replay import ANA as REPLAY_ANA
from tests.unit.test_replay import KEY, TEAM, Person, day, outline, run, z

TRIAGE_TEAM = "nav-0301-team-t"
TEAM_B = "nav-0301-team-b"
UNTIL = 450.0


class Participant(Person):
    """`test_replay.Person`, with the events the other rules read."""

    def referred(self, at: float, org_unit: str = TEAM, recorded: float | None = None) -> str:
        data = {"channel": "nav", "org_unit": org_unit}
        return self.event("participant.referred", data, at, recorded)

    def triaged(
        self,
        at: float,
        needs: bool = False,
        org_unit: str = TEAM,
        recorded: float | None = None,
    ) -> str:
        data = {
            "need_group": "TRENGER_VEILEDNING",
            "main_goal": "SKAFFE_ARBEID",
            "needs_coordinator": needs,
            "org_unit": org_unit,
        }
        return self.event("participant.triaged", data, at, recorded)

    def started_until(
        self, m: str, at: float, planned_end: str, recorded: float | None = None
    ) -> str:
        data = {
            "measure_id": m,
            "measure_code": "ARBEIDSTRENING",
            "provider": self.org,
            "planned_end": planned_end,
        }
        return self.event("measure.started", data, at, recorded)

    def extended(self, m: str, at: float, planned_end: str, recorded: float | None = None) -> str:
        data = {"measure_id": m, "planned_end": planned_end}
        return self.event("measure.extended", data, at, recorded)

    def placed(self, p: str, at: float, recorded: float | None = None) -> str:
        data = {"placement_id": p, "employer": self.org, "kind": "PERMANENT", "hours_pct": 80}
        return self.event("placement.started", data, at, recorded)

    def left(self, p: str, at: float, reason: str = "QUIT", recorded: float | None = None) -> str:
        data = {"placement_id": p, "reason": reason}
        return self.event("placement.ended", data, at, recorded)

    def checked(self, p: str, at: float, recorded: float | None = None) -> str:
        data = {
            "placement_id": p,
            "status": "EMPLOYED_SAME",
            "evidence": {"source": "register", "obtained_at": day(at).date().isoformat()},
        }
        return self.event("followup.six_month_checked", data, at, recorded)

    def dropped_out(self, at: float, recorded: float | None = None) -> str:
        return self.event("participant.dropped_out", {"reason": "LOST_CONTACT"}, at, recorded)

    def closed(self, at: float, reason: str = "MOVED", recorded: float | None = None) -> str:
        return self.event("journey.closed", {"reason": reason}, at, recorded)


# The same person as test_replay's Ana: same national id, same pseudonym.
ANA = Participant(REPLAY_ANA.national_id, REPLAY_ANA.org)

Outline = tuple[str, str, str, str | None, str | None]


def opened(subject: str, raised_at: str) -> Outline:
    return (subject, raised_at, "open", None, None)


def resolved(subject: str, raised_at: str, resolved_at: str, resolution: str) -> Outline:
    return (subject, raised_at, "resolved", resolved_at, resolution)


class Case(NamedTuple):
    lines: Callable[[], list[str]]
    expected: list[Outline]
    until: float = UNTIL


def reordered(lines: list[str], seed: int = 5) -> list[str]:
    """The same lines in another file order (every case gives its lines distinct
    recorded_at where order could matter, so only file order changes)."""
    shuffled = list(lines)
    random.Random(seed).shuffle(shuffled)
    return shuffled


def measure(m: str, start: float, end: float) -> list[str]:
    return [ANA.started(m, start), ANA.ended(m, end)]


J0 = "journey:2025-01-06T08:00:00+00:00"  # opened by the referral on day 0
J2 = "journey:2025-01-08T08:00:00+00:00"  # opened by a triage on day 2
J50 = "journey:2025-02-25T08:00:00+00:00"  # opened by a referral on day 50


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


# -- MEASURE_CHURN: 3 measures under 90 days ended in (E-365d, E], no placement ---------


def churn(*lines: str) -> list[str]:
    """Ana referred on day 0, in m1 on days [10, 40) and m2 on [50, 80): two short
    measures; a third ending by day 404 makes churn."""
    return [ANA.referred(0), *measure("m1", 10, 40), *measure("m2", 50, 80), *lines]


MEASURE_CHURN: dict[str, Case] = {
    "three short measures: raised when the third end is known": Case(
        lambda: churn(*measure("m3", 90, 120)), [opened("m3", z(120))]
    ),
    "two are not enough": Case(lambda: churn(), []),
    "a measure of exactly 90 days is not short": Case(lambda: churn(*measure("m3", 30, 120)), []),
    "89 days is short": Case(lambda: churn(*measure("m3", 31, 120)), [opened("m3", z(120))]),
    "the window is (E-365d, E]: an end 365 days before is out": Case(
        lambda: churn(*measure("m3", 380, 405)), []
    ),
    "an end 364 days before is in": Case(
        lambda: churn(*measure("m3", 380, 404)), [opened("m3", z(404))]
    ),
    "a placement started in the window stops it": Case(
        lambda: churn(ANA.placed("p1", 100), *measure("m3", 90, 120)), []
    ),
    "a placement started at E itself stops it": Case(
        lambda: churn(*measure("m3", 90, 120), ANA.placed("p1", 120)), []
    ),
    "a placement started before the window does not": Case(
        lambda: [
            ANA.referred(0),
            ANA.placed("p1", 30),
            *measure("m1", 370, 380),
            *measure("m2", 381, 390),
            *measure("m3", 391, 400),
        ],
        [opened("m3", z(400))],
    ),
    "late information: a placement in the window learnt late": Case(
        lambda: churn(*measure("m3", 90, 120), ANA.placed("p1", 100, recorded=150)),
        [resolved("m3", z(120), z(150), "late_information")],
    ),
    "late information: an earlier end learnt late is a new condition": Case(
        lambda: churn(*measure("m3", 90, 120), ANA.dropped_out(110, recorded=150)),
        [resolved("m3", z(120), z(150), "late_information"), opened("m3", z(150))],
    ),
    "raised late: the third end known late": Case(
        lambda: churn(ANA.started("m3", 90), ANA.ended("m3", 120, recorded=150)),
        [opened("m3", z(150))],
    ),
    "an end recorded ahead is raised when it happens": Case(
        lambda: churn(ANA.started("m3", 90), ANA.ended("m3", 120, recorded=110)),
        [opened("m3", z(120))],
    ),
    "a dropout ends a measure": Case(
        lambda: churn(ANA.started("m3", 90), ANA.dropped_out(120)), [opened("m3", z(120))]
    ),
    "IKKE_AKTUELL is an end like any other": Case(
        lambda: churn(
            ANA.started("m3", 90),
            ANA.ended("m3", 120, status="IKKE_AKTUELL", reason="FIKK_IKKE_PLASS"),
        ),
        [opened("m3", z(120))],
    ),
    "several ends at E: about the measure that started last": Case(
        lambda: churn(*measure("m3", 90, 120), *measure("m4", 95, 120)),
        [opened("m4", z(120))],
    ),
    "several ends at E, started together: about the smallest id": Case(
        lambda: churn(*measure("m4", 90, 120), *measure("m3", 90, 120)),
        [opened("m3", z(120))],
    ),
    "at most one open: a fourth short measure raises nothing more": Case(
        lambda: churn(*measure("m3", 90, 120), *measure("m4", 130, 160)),
        [opened("m3", z(120))],
    ),
    "a passed-over condition is raised when the open one resolves": Case(
        lambda: churn(
            *measure("m3", 90, 120),
            *measure("m4", 130, 160),
            ANA.closed(125, recorded=200),
            ANA.referred(126, recorded=200),
        ),
        [resolved("m3", z(120), z(200), "journey_closed"), opened("m4", z(200))],
    ),
    "closure: a new journey gets its own": Case(
        lambda: churn(
            *measure("m3", 90, 120), ANA.closed(125), ANA.referred(126), *measure("m4", 130, 160)
        ),
        [resolved("m3", z(120), z(125), "journey_closed"), opened("m4", z(160))],
    ),
    "closure: the journey closed before the third end": Case(
        lambda: churn(ANA.started("m3", 90), ANA.closed(100), ANA.ended("m3", 120)), []
    ),
    "closure: GOAL_REACHED closes it": Case(
        lambda: churn(*measure("m3", 90, 120), ANA.closed(150, "GOAL_REACHED")),
        [resolved("m3", z(120), z(150), "journey_closed")],
    ),
    "not yet raised at --until": Case(lambda: churn(*measure("m3", 90, 120)), [], until=119),
    "duplicates: the same line twice is one event": Case(
        lambda: [*churn(ANA.started("m3", 90), line := ANA.ended("m3", 120)), line],
        [opened("m3", z(120))],
    ),
    "file order shuffled: recorded_at decides, not the file": Case(
        lambda: reordered(
            churn(*measure("m3", 90, 120), ANA.placed("p1", 100, recorded=150)), seed=6
        ),
        [resolved("m3", z(120), z(150), "late_information")],
    ),
}


# -- STALE_MEASURE: planned end P, no end or extension known by P+30d -------------------

# 2025-02-01 begins at 2025-01-31T23:00Z in Oslo; 30 days of 24 hours later:
DUE = "2025-03-02T23:00:00Z"
DEADLINE = 55.625  # that instant as a day number: 2025-03-02 is day 55, 23:00Z is 08:00Z + 15 h
APRIL_DUE = "2025-04-30T22:00:00Z"  # 2025-04-01 (summer time) is 2025-03-31T22:00Z, + 30 d


def planned(*lines: str) -> list[str]:
    """Ana referred on day 0, in m1 from day 1 with planned_end 2025-02-01."""
    return [ANA.referred(0), ANA.started_until("m1", 1, "2025-02-01"), *lines]


STALE_MEASURE: dict[str, Case] = {
    "raised 30 days after the planned end": Case(lambda: planned(), [opened("m1", DUE)]),
    "no planned end, no alert": Case(lambda: [ANA.referred(0), ANA.started("m1", 1)], []),
    "ended in time": Case(lambda: planned(ANA.ended("m1", 40)), []),
    "an end recorded on the deadline itself is in time": Case(
        lambda: planned(ANA.ended("m1", 40, recorded=DEADLINE)), []
    ),
    "an end after the deadline: updated": Case(
        lambda: planned(ANA.ended("m1", 60)), [resolved("m1", DUE, z(60), "updated")]
    ),
    "an end in time but recorded late: updated, not late_information": Case(
        lambda: planned(ANA.ended("m1", 40, recorded=60)),
        [resolved("m1", DUE, z(60), "updated")],
    ),
    "a dropout after the deadline: updated": Case(
        lambda: planned(ANA.dropped_out(60)), [resolved("m1", DUE, z(60), "updated")]
    ),
    "a dropout in time": Case(lambda: planned(ANA.dropped_out(40)), []),
    "extended in time: the new date is judged on its own": Case(
        lambda: planned(ANA.extended("m1", 40, "2025-04-01")), [opened("m1", APRIL_DUE)]
    ),
    "extended after the deadline: the old date updated, the new one judged": Case(
        lambda: planned(ANA.extended("m1", 60, "2025-04-01")),
        [resolved("m1", DUE, z(60), "updated"), opened("m1", APRIL_DUE)],
    ),
    "extended to a date itself overdue: raised at once": Case(
        lambda: planned(ANA.extended("m1", 60, "2025-02-03")),
        [resolved("m1", DUE, z(60), "updated"), opened("m1", z(60))],
    ),
    "an extension naming the current date again changes nothing": Case(
        lambda: planned(ANA.extended("m1", 40, "2025-02-01")), [opened("m1", DUE)]
    ),
    "an older extension learnt late changes nothing; 24-hour days across summer time": Case(
        lambda: planned(
            ANA.extended("m1", 20, "2025-03-01"), ANA.extended("m1", 10, "2025-02-20", recorded=30)
        ),
        # 2025-03-01 begins at 2025-02-28T23:00Z; 30 x 24 h later, after the clocks change
        [opened("m1", "2025-03-30T23:00:00Z")],
    ),
    "raised late: the start known only after the deadline": Case(
        lambda: [ANA.referred(0), ANA.started_until("m1", 1, "2025-02-01", recorded=70)],
        [opened("m1", z(70))],
    ),
    "not yet due at --until": Case(lambda: planned(), [], until=55),
    "due exactly at --until": Case(lambda: planned(), [opened("m1", DUE)], until=DEADLINE),
    "closure: the journey closes before the deadline": Case(lambda: planned(ANA.closed(40)), []),
    "closure: the journey closes after the deadline": Case(
        lambda: planned(ANA.closed(60)), [resolved("m1", DUE, z(60), "journey_closed")]
    ),
    "an end and a closing at one instant: updated wins": Case(
        lambda: planned(ANA.ended("m1", 60), ANA.closed(60)),
        [resolved("m1", DUE, z(60), "updated")],
    ),
    "duplicates: the same line twice is one event": Case(
        lambda: [*planned(line := ANA.ended("m1", 60)), line],
        [resolved("m1", DUE, z(60), "updated")],
    ),
    "file order shuffled: recorded_at decides, not the file": Case(
        lambda: reordered(planned(ANA.extended("m1", 60, "2025-04-01"), ANA.closed(300))),
        [
            resolved("m1", DUE, z(60), "updated"),
            resolved("m1", APRIL_DUE, z(300), "journey_closed"),
        ],
    ),
}


TABLES: dict[str, dict[str, Case]] = {
    "NO_START_AFTER_TRIAGE": NO_START_AFTER_TRIAGE,
    "NO_COORDINATOR": NO_COORDINATOR,
    "SIX_MONTH_CHECK_OVERDUE": SIX_MONTH_CHECK_OVERDUE,
    "EARLY_JOB_EXIT": EARLY_JOB_EXIT,
    "MEASURE_CHURN": MEASURE_CHURN,
    "STALE_MEASURE": STALE_MEASURE,
}
ALL_CASES = [
    pytest.param(rule, case, id=f"{rule}: {case}") for rule in TABLES for case in TABLES[rule]
]


def of_rule(lines: list[str], rule: str, until: float) -> list[dict[str, Any]]:
    found = run(lines, day(until))
    assert found.problems == []
    return [alert for alert in map(json.loads, found.alerts) if alert["rule"] == rule]


@pytest.mark.parametrize(("rule", "case"), ALL_CASES)
def test_each_rule_as_the_contract_reads_it(rule: str, case: str) -> None:
    lines, expected, until = TABLES[rule][case]
    assert [outline(alert) for alert in of_rule(lines(), rule, until)] == expected


@pytest.mark.parametrize(("rule", "case"), ALL_CASES)
def test_every_case_in_another_file_order_and_with_copies(rule: str, case: str) -> None:
    lines, expected, until = TABLES[rule][case]
    given = lines()
    with_copies = reordered([*given, *given[::2]], seed=len(case))
    assert [outline(alert) for alert in of_rule(with_copies, rule, until)] == expected
    # and byte for byte the same output as the file in its own order
    assert run(with_copies, day(until)).alerts == run(given, day(until)).alerts


# -- recipients -----------------------------------------------------------------------


class Raised(NamedTuple):
    """A history raising one alert of the rule, on day `at`; with no coordinator, it
    goes to `team` (of the latest referral or triage)."""

    lines: Callable[[], list[str]]
    at: float
    team: str


RAISED: dict[str, Raised] = {
    "NO_START_AFTER_TRIAGE": Raised(
        lambda: [ANA.referred(0), ANA.triaged(2, org_unit=TRIAGE_TEAM)], 32, TRIAGE_TEAM
    ),
    "SIX_MONTH_CHECK_OVERDUE": Raised(lambda: placement(), 206, TEAM),
    "EARLY_JOB_EXIT": Raised(lambda: job(ANA.left("p1", 100)), 100, TEAM),
    "MEASURE_CHURN": Raised(lambda: churn(*measure("m3", 90, 120)), 120, TEAM),
    "STALE_MEASURE": Raised(lambda: planned(), DEADLINE, TEAM),
}

# What is added to such a history (given the day it is raised), and who receives it;
# None stands for the history's own team.
RECIPIENTS: dict[str, tuple[Callable[[float], list[str]], dict[str, str] | None]] = {
    "no coordinator: the team of the latest referral or triage": (lambda r: [], None),
    "the coordinator": (lambda r: [ANA.assigned("c-1", 3)], {"coordinator": "c-1"}),
    "reassigned before the deadline: the new coordinator": (
        lambda r: [ANA.assigned("c-1", 3), ANA.assigned("c-2", r - 0.5)],
        {"coordinator": "c-2"},
    ),
    "reassigned after it was raised: the one responsible then": (
        lambda r: [ANA.assigned("c-1", 3), ANA.assigned("c-2", r + 0.5)],
        {"coordinator": "c-1"},
    ),
    "reassigned before, known only after: as known when raised": (
        lambda r: [ANA.assigned("c-1", 3), ANA.assigned("c-2", r - 0.5, recorded=r + 0.5)],
        {"coordinator": "c-1"},
    ),
    "unassigned: the team of the latest assignment": (
        lambda r: [ANA.assigned("c-1", 3, org_unit=TEAM_B), ANA.unassigned("c-1", r - 0.5)],
        {"team": TEAM_B},
    ),
}


@pytest.mark.parametrize("rule", RAISED)
@pytest.mark.parametrize("case", RECIPIENTS)
def test_the_recipient_is_who_was_responsible_when_it_was_raised(rule: str, case: str) -> None:
    history, raised_day, team = RAISED[rule]
    extra, expected = RECIPIENTS[case]
    [alert] = of_rule([*history(), *extra(raised_day)], rule, UNTIL)
    assert alert["raised_at"] == z(raised_day)
    assert alert["recipient"] == (expected or {"team": team})


@pytest.mark.parametrize(
    "rule", ["SIX_MONTH_CHECK_OVERDUE", "EARLY_JOB_EXIT", "MEASURE_CHURN", "STALE_MEASURE"]
)
def test_with_no_referral_triage_or_coordinator_the_team_is_null(rule: str) -> None:
    history, raised_day, _ = RAISED[rule]
    lines = history()
    assert json.loads(lines[0])["type"] == "participant.referred"
    [alert] = of_rule(lines[1:], rule, UNTIL)
    assert (alert["raised_at"], alert["recipient"]) == (z(raised_day), {"team": None})


NO_COORDINATOR_RECIPIENTS: dict[str, tuple[Callable[[], list[str]], float, dict[str, str]]] = {
    "the team of the triage": (
        lambda: [ANA.referred(0), ANA.triaged(2, needs=True, org_unit=TRIAGE_TEAM)],
        9,
        {"team": TRIAGE_TEAM},
    ),
    "the team of a later referral": (
        lambda: need(ANA.referred(5, org_unit=TEAM_B)),
        9,
        {"team": TEAM_B},
    ),
    "after an unassignment: the team of the latest assignment": (
        lambda: need(ANA.assigned("c-1", 3, org_unit=TEAM_B), ANA.unassigned("c-1", 20)),
        27,
        {"team": TEAM_B},
    ),
    "raised late, with the later assignment known: that coordinator": (
        lambda: [
            ANA.referred(0),
            ANA.triaged(2, needs=True, recorded=20),
            ANA.assigned("c-1", 15),
        ],
        20,
        {"coordinator": "c-1"},
    ),
}


@pytest.mark.parametrize("case", NO_COORDINATOR_RECIPIENTS)
def test_no_coordinator_goes_to_the_team(case: str) -> None:
    lines, raised_day, expected = NO_COORDINATOR_RECIPIENTS[case]
    [alert] = of_rule(lines(), "NO_COORDINATOR", UNTIL)
    assert (alert["raised_at"], alert["recipient"]) == (z(raised_day), expected)


# -- across rules ---------------------------------------------------------------------


def test_goal_reached_closes_the_early_exit_but_not_the_six_month_check() -> None:
    lines = job(ANA.left("p1", 100), ANA.closed(150, "GOAL_REACHED"))
    found = [(a["rule"], *outline(a)) for a in map(json.loads, run(lines, day(UNTIL)).alerts)]
    # No triage, no measure: only the placement rules (and HANDOVER_GAP for its end).
    assert [f for f in found if f[0] != "HANDOVER_GAP"] == [
        ("EARLY_JOB_EXIT", *resolved("p1", z(100), z(150), "journey_closed")),
        ("SIX_MONTH_CHECK_OVERDUE", *opened("p1", z(206))),
    ]


def test_an_early_exit_has_no_late_information_in_replay() -> None:
    # The contract's late information for EARLY_JOB_EXIT is an earlier start (or an end
    # with another reason) learnt late; employer refuses a second start or end of a
    # placement, so in replay the alert stays open and the line is reported.
    lines = job(ANA.left("p1", 100), ANA.placed("p1", -90, recorded=130))
    found = run(lines, day(UNTIL))
    assert [(p.kind, p.service, p.field) for p in found.skipped] == [
        ("refused", "employer", "data.placement_id")
    ]
    [alert] = [a for a in map(json.loads, found.alerts) if a["rule"] == "EARLY_JOB_EXIT"]
    assert outline(alert) == opened("p1", z(100))


def test_rule_settings_apply_to_replay_as_to_the_live_service() -> None:
    shorter = RuleSettings(
        no_start_after_triage=timedelta(days=10),
        no_coordinator=timedelta(days=3),
        stale_measure=timedelta(days=10),
    )
    lines = [*need(), ANA.started_until("m1", 40, "2025-02-01")]
    found = replay(lines, day(UNTIL), KEY, shorter)
    raised = [(a["rule"], a["raised_at"]) for a in map(json.loads, found.alerts)]
    # triage on day 2; 2025-02-01 begins at 2025-01-31T23:00Z, the start is known on day 40
    assert raised == [
        ("NO_COORDINATOR", z(5)),
        ("NO_START_AFTER_TRIAGE", z(12)),
        ("STALE_MEASURE", z(40)),
    ]
