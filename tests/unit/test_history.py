"""`los replay --store` judges a person's stored facts as `los replay` judges the file they
came from (persons aside: here both under the same pseudonyms). Where the two inputs
differ: an end still held at `--until` in the file, whose start came later, is a fact in
the store (dated by its own `recorded_at`), and must change no alert; and the store
keeps a person's facts in the order they were stored, not recorded.
(tests/integration/test_differential.py compares the two on a store the live services
filled.)"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from services.cohort import generate_cohort
from services.kernel.ids import pseudonym
from services.kernel.settings import RuleSettings
from services.outcomes.history import RANGE_ROWS, id_ranges, judge
from services.outcomes.replay import Replay, replay, replayed
from tests.unit.source_events import ANNE, KEY, placement_ended

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = RuleSettings()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def stored(lines: list[str]) -> list[dict[str, object]]:
    """The facts the journey store keeps of accepted edge events, in the order accepted:
    each event as JSON, its person's pseudonym in place of the national id."""
    facts = []
    for line in lines:
        event = json.loads(line)
        facts.append(event | {"participant": pseudonym(event.pop("person"), KEY)})
    return facts


def test_an_end_whose_start_came_after_until_changes_nothing() -> None:
    triaged = {
        "need_group": "TRENGER_VEILEDNING",
        "main_goal": "SKAFFE_ARBEID",
        "needs_coordinator": True,
        "org_unit": "nav-grunerlokka",
    }
    triage = ANNE.event("participant.triaged", triaged, day(0))  # NO_COORDINATOR on day 7
    # Each end is recorded before its start, and the start within the hold (P7D) of it,
    # but after `until`: in the file, held at `until`; in the store, both.
    start = ANNE.measure_started("m-1", day(1), recorded_at=day(19))
    end = ANNE.event(
        "measure.ended",
        {"measure_id": "m-1", "status": "AVBRUTT", "reason": "IKKE_MOTT"},
        day(10),
        recorded_at=day(12),
    )
    hired = ANNE.event(
        "placement.started",
        {"placement_id": "p-1", "employer": ANNE.org, "kind": "TEMPORARY", "hours_pct": 60},
        day(14),
        recorded_at=day(19),
        system="employer",
    )
    # With its start known (on day 19), EARLY_JOB_EXIT: quit a day after it started.
    quit_ = placement_ended(ANNE, "p-1", day(15))
    until = day(18)
    # Recorded at `until` exactly: known then.
    assigned = ANNE.event(
        "coordinator.assigned", {"coordinator_id": "c-1", "org_unit": "nav-grunerlokka"}, day(18)
    )

    lines = [triage, start, end, hired, quit_, assigned]
    from_file = replay(lines, until, KEY, RULES)
    from_store = Replay()
    judge(stored(lines), until, RULES, from_store, str)

    assert [problem.kind for problem in from_file.skipped] == ["held", "held"]
    assert [json.loads(line)["rule"] for line in from_file.alerts] == ["NO_COORDINATOR"]
    assert from_store.alerts == from_file.alerts
    assert (from_store.events, from_store.after_until) == (6, 2)  # the two starts
    [alert] = map(json.loads, from_store.alerts)
    assert (alert["status"], alert["resolution"]) == ("resolved", "coordinator_assigned")


def _engagement(event: dict[str, Any]) -> tuple[str, str]:
    data = event["data"]
    return event["person"], data.get("measure_id") or data.get("placement_id")


def _harder(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The events with most recorded_ats moved on to a midnight (ties), some starts
    recorded after their ends (within the hold and past it), repeats and second starts;
    sorted by recorded_at, as `los import` sends a file."""
    for event in events:
        recorded = datetime.fromisoformat(event["recorded_at"]).astimezone(UTC)
        midnight = recorded.replace(hour=0, minute=0, second=0, microsecond=0)
        if rng.random() < 0.6 and midnight != recorded:
            event["recorded_at"] = (midnight + timedelta(days=1)).isoformat()
    ends = {_engagement(e): e for e in events if e["type"] in ("measure.ended", "placement.ended")}
    for event in events:
        end = ends.get(_engagement(event))
        if event["type"].endswith(".started") and end and rng.random() < 0.3:
            late = timedelta(days=rng.choice([0, 0.5, 3, 7, 9]))
            event["recorded_at"] = (datetime.fromisoformat(end["recorded_at"]) + late).isoformat()
    repeats = [dict(e) for e in events if rng.random() < 0.02]
    second_starts = [
        dict(e, event_id=str(uuid.UUID(int=rng.getrandbits(128))))
        for e in events
        if e["type"] == "measure.started" and rng.random() < 0.05
    ]
    return sorted(events + repeats + second_starts, key=lambda e: e["recorded_at"])


def _store_of(lines: list[str], rng: random.Random) -> tuple[list[list[dict[str, Any]]], Replay]:
    """What a store would hold of `lines`: the facts a replay accepts by the end of time,
    each journey's in a shuffled order; and what that replay found. (That the services
    store what a replay accepts is test_differential's to check, on a real store.)"""
    found = Replay()
    everything = datetime(2100, 1, 1, tzinfo=UTC)
    store = []
    for journey, _ in replayed(enumerate(lines, 1), everything, KEY, RULES, found):
        facts = [
            {
                "event_id": fact.event_id,
                "type": fact.type,
                "occurred_at": fact.occurred_at.isoformat(),
                "recorded_at": fact.recorded_at.isoformat(),
                "data": dict(fact.data),
                "source": {"system": fact.system},
                "participant": journey.participant,
            }
            for fact in journey.facts
        ]
        rng.shuffle(facts)
        store.append(facts)
    return store, found


def test_a_cohort_with_ties_late_starts_and_repeats_is_judged_as_its_file() -> None:
    # After a property check written in review: the two agree at instants on and between
    # the recorded_ats, in three offsets, though the store holds no refused event or
    # repeat, and keeps each journey's facts in another order.
    rng = random.Random(7)
    cohort = generate_cohort(150, 3, start=date(2023, 1, 1), end=date(2024, 12, 31))
    events = _harder([dict(event) for event in cohort.events], rng)
    lines = [json.dumps(event) for event in events]
    store, everything = _store_of(lines, rng)
    recorded = sorted({datetime.fromisoformat(e["recorded_at"]) for e in events})
    untils = [rng.choice(recorded) for _ in range(6)]
    untils += [rng.choice(recorded) + timedelta(hours=rng.uniform(-48, 48)) for _ in range(6)]

    assert everything.refused
    assert everything.duplicates
    for until in untils:
        offset = timezone(timedelta(hours=rng.choice([0, 1, -5])))
        from_file, from_store = replay(lines, until.astimezone(offset), KEY, RULES), Replay()
        for facts in store:
            judge(facts, until.astimezone(offset), RULES, from_store, str)
        assert from_store.alerts == from_file.alerts, until


@pytest.mark.parametrize(
    ("stored", "workers", "ranges"), [(0, 1, 1), (10, 3, 3), (4 * RANGE_ROWS + 1, 2, 5)]
)
def test_the_ranges_of_ids_hold_every_id_once(stored: int, workers: int, ranges: int) -> None:
    found = id_ranges(stored, workers)

    assert len(found) == ranges  # RANGE_ROWS stored events each at most, one a process at least
    assert found[0][0] == UUID(int=0)
    assert found[-1][1] == UUID(int=(1 << 128) - 1)
    assert all(high.int + 1 == low.int for (_, high), (low, _) in itertools.pairwise(found))
