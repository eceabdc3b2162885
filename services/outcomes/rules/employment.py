"""The rules about work: SIX_MONTH_CHECK_OVERDUE and EARLY_JOB_EXIT (CONTRACT §4).

An employment placement is any `placement.started`; a placement is the subject of its
alerts, and since a placement starts once and ends once (its earliest start and earliest
own end count), the placement alone identifies the condition: a start or end corrected by
later facts moves the deadline, not the alert.
"""

from __future__ import annotations

from services.kernel.settings import RuleSettings
from services.outcomes.domain import (
    JOURNEY_CLOSED,
    PLACEMENT_ENDED,
    PLACEMENT_STARTED,
    REFERRED,
    SIX_MONTH_CHECKED,
    TRIAGED,
)
from services.outcomes.journey import KnownJourney
from services.outcomes.rules.walk import Condition, Rule, closed_at

_JOURNEYS = frozenset({REFERRED, TRIAGED, JOURNEY_CLOSED})
# The one closing after which the six-month check is still owed (CONTRACT §3, §4).
_CHECK_OWED_AFTER = frozenset({"GOAL_REACHED"})


def _six_month_check_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """SIX_MONTH_CHECK_OVERDUE: a placement started at S and no six-month check of it is
    known by S+182d+14d.

    The condition is about knowledge, so a check recorded after the deadline resolves the
    alert as `check_recorded` at its recorded_at, even if the check itself was done in
    time. A journey closed with GOAL_REACHED neither stops the alert nor resolves it;
    any other closing does (`journey_closed`).
    """
    conditions: list[Condition] = []
    due_after = rules.six_month_check_due + rules.six_month_check_grace
    for placement in known.engagements():
        if placement.kind != "placement":
            continue
        due = placement.start + due_after
        checked = known.six_month_check_known_at(placement.id)
        if checked is not None and checked <= due:
            continue
        span = known.journey_at(placement.start)
        closing = span.closed_at if span else None
        if span is not None and known.closing_reasons(span) <= _CHECK_OWED_AFTER:
            closing = None
        conditions.append(
            Condition(
                key=f"SIX_MONTH_CHECK_OVERDUE:{placement.id}",
                subject=placement.id,
                due=due,
                settled_at=checked,
                settled_by="check_recorded",
                closed_at=closing,
            )
        )
    return conditions


def _early_exit_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """EARLY_JOB_EXIT: a placement ends with QUIT or DISMISSED less than 182 days after its
    start.

    It reads the placement's own `placement.ended`: a dropout says nothing about why the
    job ended. Raised when the end became known, i.e. at the first knowledge time at or
    after the end at which it (and the start) are known. Only a person resolves it
    (`acknowledged`, applied by the alert store), or its journey closing.
    """
    return [
        Condition(
            key=f"EARLY_JOB_EXIT:{end.placement_id}",
            subject=end.placement_id,
            due=end.ended,
            settled_at=None,
            settled_by="acknowledged",
            closed_at=closed_at(known, end.ended),
        )
        for end in known.placement_ends()
        if end.quit_or_dismissed and end.ended - end.started < rules.early_job_exit
    ]


SIX_MONTH_CHECK_OVERDUE = Rule(
    "SIX_MONTH_CHECK_OVERDUE",
    _JOURNEYS | {PLACEMENT_STARTED, SIX_MONTH_CHECKED},
    _six_month_check_conditions,
    requires=frozenset({PLACEMENT_STARTED}),
)
EARLY_JOB_EXIT = Rule(
    "EARLY_JOB_EXIT",
    _JOURNEYS | {PLACEMENT_STARTED, PLACEMENT_ENDED},
    _early_exit_conditions,
    requires=frozenset({PLACEMENT_ENDED}),
)
