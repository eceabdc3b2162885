"""The properties every rule's unit tests check, whatever the rule.

Each rule's test file keeps its own `@given` tests, with its own strategies, and calls
these checks from them. `evaluation` is what is checked: by default `evaluate`, every rule
at once; a test of one rule may pass its own, giving that rule's alerts and `next_change`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import count
from typing import Any

from services.kernel.settings import RuleSettings
from services.outcomes.domain import Fact
from services.outcomes.journey import Journey
from services.outcomes.rules import Alert, evaluate

Evaluation = Callable[[Journey, datetime, RuleSettings], tuple[list[Alert], datetime | None]]


class DrawnFacts:
    """The facts a strategy draws for a journey, `facts`, each added by `make`: recorded
    `delay` whole days after it occurred, plus its own minute (one more than the fact
    before), so that no two are recorded at the same instant."""

    def __init__(self, day: Callable[[float], datetime]) -> None:
        self.facts: list[Fact] = []
        self._day = day
        self._minutes = count()

    def make(self, type_: str, occurred: int, delay: int, **data: Any) -> None:
        recorded = self._day(occurred + delay) + timedelta(minutes=next(self._minutes))
        self.facts.append(Fact(f"h{len(self.facts)}", type_, self._day(occurred), recorded, data))


def check_arrival_order_and_redelivery_change_nothing(
    facts: list[Fact],
    clock: datetime,
    rnd: random.Random,
    rules: RuleSettings,
    evaluation: Evaluation = evaluate,
) -> None:
    """Half the facts delivered again a day later, and all in a random order, give the same
    alerts and the same next change."""
    redelivered = [replace(f, recorded_at=f.recorded_at + timedelta(days=1)) for f in facts]
    shuffled = facts + rnd.sample(redelivered, k=len(redelivered) // 2)
    rnd.shuffle(shuffled)
    arrived = [replace(f, seq=i) for i, f in enumerate(shuffled)]

    assert evaluation(Journey("p", arrived), clock, rules) == evaluation(
        Journey("p", facts), clock, rules
    )


def check_following_next_change_agrees_with_one_evaluation(
    facts: list[Fact],
    until: datetime,
    start: datetime,
    rules: RuleSettings,
    evaluation: Evaluation = evaluate,
    unchanged_just_before: bool = True,
) -> None:
    """Waking at each next change from `start` sees every alert one evaluation at `until`
    gives (the live service does the one, `los replay` the other). With
    `unchanged_just_before`, the alerts a microsecond before each next change are also the
    ones at the clock it was asked at."""
    journey = Journey("p", facts)
    clock = start
    seen: dict[str, Alert] = {}
    while True:
        current, upcoming = evaluation(journey, clock, rules)
        seen.update((a.condition_key, a) for a in current)
        if upcoming is None or upcoming > until:
            break
        if unchanged_just_before:
            assert evaluation(journey, upcoming - timedelta(microseconds=1), rules)[0] == current
        clock = upcoming

    assert sorted(seen.values(), key=lambda a: (a.raised_at, a.condition_key)) == sorted(
        evaluation(journey, until, rules)[0], key=lambda a: (a.raised_at, a.condition_key)
    )
