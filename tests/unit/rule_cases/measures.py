"""The cases of MEASURE_CHURN and STALE_MEASURE (`services/outcomes/rules/measures.py`)."""

from __future__ import annotations

from tests.unit.replaying import z
from tests.unit.rule_cases import ANA, Case, measure, opened, reordered, resolved

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
