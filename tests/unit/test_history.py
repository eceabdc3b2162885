"""`los replay --store` judges a person's stored facts as `los replay` judges the file they
came from. Where the two inputs differ: an end still held at `--until` in the file, whose
start came later, is a fact in the store (dated by its own `recorded_at`), and must
change no alert. (tests/integration/test_differential.py compares the two on a store the
live services filled.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.kernel.ids import pseudonym
from services.kernel.settings import RuleSettings
from services.outcomes.history import judge
from services.outcomes.replay import Replay, replay
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

    from_file = replay([triage, start, end, hired, quit_], until, KEY, RULES)
    from_store = Replay()
    judge(stored([triage, start, end, hired, quit_]), until, RULES, from_store)

    assert [problem.kind for problem in from_file.skipped] == ["held", "held"]
    assert [json.loads(line)["rule"] for line in from_file.alerts] == ["NO_COORDINATOR"]
    assert from_store.alerts == from_file.alerts
    assert (from_store.events, from_store.after_until) == (5, 2)  # the two starts
