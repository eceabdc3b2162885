"""What the walk leaves out to be fast changes no alert.

A rule is not judged before a fact it `requires` is known, and facts keep their times in
UTC. Random journeys of every event type, with late and redelivered facts, give the same
alerts and next change with and without those shortcuts.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.kernel.settings import RuleSettings
from services.outcomes import domain
from services.outcomes.domain import Fact
from services.outcomes.journey import Journey
from services.outcomes.rules import RULES, Rule
from services.outcomes.rules.walk import walk

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)
OSLO_WINTER = timezone(timedelta(hours=1))
SETTINGS = RuleSettings()


def _data(rnd: random.Random, type_: str) -> dict[str, Any]:
    measure, placement = rnd.choice(["m1", "m2", "m3"]), rnd.choice(["p1", "p2"])
    planned_end = (T0 + timedelta(days=rnd.randrange(0, 400))).date().isoformat()
    by_type: dict[str, dict[str, Any]] = {
        domain.MEASURE_STARTED: {"measure_id": measure, "planned_end": planned_end},
        domain.MEASURE_EXTENDED: {"measure_id": measure, "planned_end": planned_end},
        domain.MEASURE_ENDED: {
            "measure_id": measure,
            "status": rnd.choice(["FULLFORT", "AVBRUTT"]),
            "reason": rnd.choice(["FERDIG", "IKKE_MOTT"]),
        },
        domain.PLACEMENT_STARTED: {"placement_id": placement},
        domain.PLACEMENT_ENDED: {"placement_id": placement, "reason": rnd.choice(["QUIT", "END"])},
        domain.SIX_MONTH_CHECKED: {"placement_id": placement},
        domain.TRIAGED: {"needs_coordinator": rnd.random() < 0.7},
        domain.COORDINATOR_ASSIGNED: {"coordinator_id": rnd.choice(["c1", "c2"])},
        domain.COORDINATOR_UNASSIGNED: {"coordinator_id": rnd.choice(["c1", "c2"])},
        domain.JOURNEY_CLOSED: {"reason": rnd.choice(["GOAL_REACHED", "MOVED"])},
    }
    return by_type.get(type_, {})


def _journey(rnd: random.Random) -> list[Fact]:
    types = [
        domain.REFERRED,
        domain.TRIAGED,
        domain.COORDINATOR_ASSIGNED,
        domain.COORDINATOR_UNASSIGNED,
        domain.MEASURE_STARTED,
        domain.MEASURE_STARTED,
        domain.MEASURE_EXTENDED,
        domain.MEASURE_ENDED,
        domain.MEASURE_ENDED,
        domain.PLACEMENT_STARTED,
        domain.PLACEMENT_ENDED,
        domain.SIX_MONTH_CHECKED,
        domain.DROPPED_OUT,
        domain.JOURNEY_CLOSED,
    ]
    facts = []
    for i in range(rnd.randrange(1, 16)):
        type_ = rnd.choice(types)
        occurred = T0 + timedelta(days=rnd.randrange(0, 500))
        recorded = occurred + timedelta(days=rnd.choice([0, 0, 0, 1, 20, 90, 300]))
        facts.append(
            Fact(f"e{i}", type_, occurred.astimezone(OSLO_WINTER), recorded, _data(rnd, type_), i)
        )
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=2)) for f in facts]
    return facts + rnd.sample(redelivered, k=len(redelivered) // 3)


def test_a_rule_must_read_what_it_requires() -> None:
    with pytest.raises(ValueError, match="requires"):
        Rule("R", frozenset({domain.TRIAGED}), lambda known, rules: [], frozenset({"other"}))


def test_a_fact_keeps_its_instants_in_utc() -> None:
    at = datetime(2025, 3, 3, 9, tzinfo=OSLO_WINTER)
    fact = Fact("e", domain.REFERRED, at, at + timedelta(hours=1), {})

    assert (fact.occurred_at, fact.recorded_at) == (at, at + timedelta(hours=1))
    assert fact.occurred_at.tzinfo is UTC
    assert fact.recorded_at.tzinfo is UTC


@pytest.mark.parametrize("seed", range(4))
def test_leaving_a_rule_out_until_it_can_find_something_changes_nothing(seed: int) -> None:
    rnd = random.Random(seed)
    every_time = [replace(rule, requires=frozenset()) for rule in RULES]
    for _ in range(150):
        journey = Journey("p", _journey(rnd))
        for clock in (T0 + timedelta(days=d) for d in (30, 200, 450, 1200)):
            assert walk(RULES, journey, clock, SETTINGS) == walk(
                every_time, journey, clock, SETTINGS
            )
