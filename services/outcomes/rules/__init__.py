"""The rules of CONTRACT §4 as pure functions of a journey's facts and the clock.

Every rule is judged the same way (CONTRACT §3, `walk.py`): at a knowledge time t, on the
facts recorded at or before t and nothing recorded after. Each rule is a `Rule` in
`RULES`: HANDOVER_GAP and NO_START_AFTER_TRIAGE (`gaps.py`), NO_COORDINATOR
(`coordination.py`), SIX_MONTH_CHECK_OVERDUE and EARLY_JOB_EXIT (`employment.py`),
MEASURE_CHURN and STALE_MEASURE (`measures.py`).
"""

from __future__ import annotations

from datetime import datetime

from services.kernel.settings import RuleSettings
from services.outcomes.journey import Journey
from services.outcomes.rules.coordination import NO_COORDINATOR
from services.outcomes.rules.employment import EARLY_JOB_EXIT, SIX_MONTH_CHECK_OVERDUE
from services.outcomes.rules.gaps import HANDOVER_GAP, NO_START_AFTER_TRIAGE
from services.outcomes.rules.measures import MEASURE_CHURN, STALE_MEASURE
from services.outcomes.rules.walk import Alert, Condition, Resolution, Rule, Status, walk

__all__ = [
    "RULES",
    "Alert",
    "Condition",
    "Resolution",
    "Rule",
    "Status",
    "evaluate",
    "handover_gaps",
    "next_change",
]

RULES: tuple[Rule, ...] = (
    NO_START_AFTER_TRIAGE,
    HANDOVER_GAP,
    NO_COORDINATOR,
    SIX_MONTH_CHECK_OVERDUE,
    EARLY_JOB_EXIT,
    MEASURE_CHURN,
    STALE_MEASURE,
)


def evaluate(
    journey: Journey, clock: datetime, rules: RuleSettings
) -> tuple[list[Alert], datetime | None]:
    """Every rule at once: the alerts raised up to `clock` with their state as of `clock`
    (ordered by raised_at, rule, subject), and `next_change`."""
    return walk(RULES, journey, clock, rules)


def next_change(journey: Journey, clock: datetime, rules: RuleSettings) -> datetime | None:
    """The earliest instant after `clock` at which any rule's alerts can change without a
    new fact: a deadline not yet due, a planned start or closing that has not happened
    yet, or a fact already in the journey but recorded after `clock`. None if nothing
    is pending."""
    return evaluate(journey, clock, rules)[1]


def handover_gaps(journey: Journey, clock: datetime, rules: RuleSettings) -> list[Alert]:
    """Every HANDOVER_GAP alert the journey has raised up to `clock`, as of `clock`."""
    return walk((HANDOVER_GAP,), journey, clock, rules)[0]
