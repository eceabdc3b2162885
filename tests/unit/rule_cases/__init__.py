"""The cases of `test_replay_rules.py`: one table per rule of CONTRACT §4 other than
HANDOVER_GAP, in the manner of `test_replay.py` and with the people of `replaying.py`,
grouped as the rules are in `services/outcomes/rules/`. Each case is a history of edge events with
synthetic national ids and the alerts of its rule as outlines (subject, raised_at,
status, resolved_at, resolution), worked out by hand from CONTRACT §3-§5 and
docs/contract-readings.md.

Day 0 is 2025-01-06 09:00 +01:00 (08:00Z), the day numbers of `replaying.py`. A journey
opened by a referral on day 0 is the subject `journey:2025-01-06T08:00:00+00:00`. Unless
a case says otherwise, `--until` is day 450.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NamedTuple

from tests.unit.replaying import ANA as REPLAY_ANA
from tests.unit.replaying import TEAM, Person, day

TRIAGE_TEAM = "nav-0301-team-t"
TEAM_B = "nav-0301-team-b"
UNTIL = 450.0


class Participant(Person):
    """`replaying.Person`, with the events the other rules read."""

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


# The same person as replaying's Ana: same national id, same pseudonym.
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
