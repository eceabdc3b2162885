"""An independent reading of a generated cohort file, for the e2e tests: who should get
which HANDOVER_GAP, and each coordinator's caseload once the whole file is known."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tests.e2e.operator import UNTIL, parse_time


@dataclass
class Recipients:
    """Who could get which HANDOVER_GAP, read from the JSONL alone."""

    # coordinator -> the measure and placement ids of everyone ever assigned to them
    subjects: dict[str, set[str]]
    # coordinator -> subjects of the handover gaps a rough reading of CONTRACT §4 expects
    expected: dict[str, list[str]]
    # coordinator -> how many people are in their caseload once the file is all known
    caseloads: dict[str, int]


def read_recipients(lines: list[str]) -> Recipients:
    """A rough, independent reading of the file: per person, in business time, the
    moments the active engagements drop to zero and nothing starts within 14 days (7
    after an unplanned end) nor does the journey close; the coordinator at the deadline
    is whom the alert should go to. Only used to pick a coordinator likely to have gaps;
    what is asserted is that the subjects of their alerts are their people's."""
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        event = json.loads(line)
        by_person[event["person"]].append(event)
    until = parse_time(UNTIL)
    subjects: dict[str, set[str]] = defaultdict(set)
    expected: dict[str, list[str]] = defaultdict(list)
    for events in by_person.values():
        events.sort(key=lambda e: parse_time(e["occurred_at"]))
        ids = {
            e["data"].get("measure_id") or e["data"].get("placement_id")
            for e in events
            if e["type"] in ("measure.started", "placement.started")
        }
        assigned = {
            e["data"]["coordinator_id"] for e in events if e["type"] == "coordinator.assigned"
        }
        for coordinator in assigned:
            subjects[coordinator] |= ids
        active: set[str] = set()
        gaps: list[tuple[str, datetime, datetime]] = []
        for event in events:
            data, kind = event["data"], event["type"]
            at = parse_time(event["occurred_at"])
            before = set(active)
            unplanned = False
            if kind == "measure.started":
                active.add(data["measure_id"])
            elif kind == "placement.started":
                active.add(data["placement_id"])
            elif kind == "measure.ended":
                active.discard(data["measure_id"])
                unplanned = data["status"] == "AVBRUTT" or data["reason"] == "IKKE_MOTT"
            elif kind == "placement.ended":
                active.discard(data["placement_id"])
                unplanned = data["reason"] in ("QUIT", "DISMISSED")
            elif kind == "participant.dropped_out":
                active.clear()
                unplanned = True
            if before and not active:
                last = data.get("measure_id") or data.get("placement_id") or sorted(before)[0]
                gaps.append((last, at, at + timedelta(days=7 if unplanned else 14)))
        for subject, ended_at, deadline in gaps:
            if deadline > until:
                continue
            followed = any(
                e["type"] in ("measure.started", "placement.started", "journey.closed")
                and ended_at < parse_time(e["occurred_at"]) <= deadline
                for e in events
            )
            if followed:
                continue
            coordinator = None
            for e in events:
                if parse_time(e["occurred_at"]) > deadline:
                    break
                if e["type"] == "coordinator.assigned":
                    coordinator = e["data"]["coordinator_id"]
                elif e["type"] in ("coordinator.unassigned", "journey.closed"):
                    coordinator = None  # a closing ends the coordinator's assignment too
            if coordinator:
                expected[coordinator].append(subject)
    caseloads = Counter(c for events in by_person.values() if (c := _coordinator_now(events)))
    return Recipients(dict(subjects), dict(expected), dict(caseloads))


# At one instant: a closing first, then what opens a journey, then hand-overs.
_AT_ONE_INSTANT = {
    "journey.closed": 0,
    "participant.referred": 1,
    "participant.triaged": 1,
    "coordinator.unassigned": 2,
    "coordinator.assigned": 3,
}


def _coordinator_now(events: list[dict[str, Any]]) -> str | None:
    """Whose caseload the person is in once all of `events` are known: the coordinator
    assigned last in business time (ties by event id), unless unassigned since, while
    the journey is open (a closing closes it, a referral or triage opens one; with
    neither known, the person is in one open journey)."""
    coordinator, open_journey = None, True
    coordinating = [e for e in events if e["type"] in _AT_ONE_INSTANT]
    for event in sorted(
        coordinating,
        key=lambda e: (parse_time(e["occurred_at"]), _AT_ONE_INSTANT[e["type"]], e["event_id"]),
    ):
        kind, data = event["type"], event["data"]
        if kind == "journey.closed":
            coordinator, open_journey = None, False
        elif kind in ("participant.referred", "participant.triaged"):
            open_journey = True
        elif kind == "coordinator.assigned":
            coordinator = data["coordinator_id"]
        elif data["coordinator_id"] == coordinator:
            coordinator = None
    return coordinator if open_journey else None
