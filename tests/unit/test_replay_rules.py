"""`los replay` (CONTRACT §5) for the six rules other than HANDOVER_GAP (CONTRACT §4).

Each rule's table of cases (`tests/unit/rule_cases/`) goes through
`services.outcomes.replay.replay`, the entry point of `los replay`, and the alert lines of
the rule under test are compared with the outlines worked out by hand. Other rules may
raise alerts about the same history; each table only looks at its own rule. Then who
receives each rule's alerts, and what holds across rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

import pytest

from services.kernel.settings import RuleSettings
from services.outcomes.replay import replay
from tests.unit.replaying import KEY, TEAM, day, outline, run, z
from tests.unit.rule_cases import (
    ANA,
    TEAM_B,
    TRIAGE_TEAM,
    UNTIL,
    Case,
    measure,
    opened,
    reordered,
    resolved,
)
from tests.unit.rule_cases.coordination import NO_COORDINATOR, need
from tests.unit.rule_cases.employment import EARLY_JOB_EXIT, SIX_MONTH_CHECK_OVERDUE, job, placement
from tests.unit.rule_cases.gaps import NO_START_AFTER_TRIAGE
from tests.unit.rule_cases.measures import DEADLINE, MEASURE_CHURN, STALE_MEASURE, churn, planned

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
