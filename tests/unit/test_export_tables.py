"""`los export`'s aggregate tables: who was in work after a measure ended, the Kaplan–Meier
median, and small cells suppressed against their rows and their margins. Every expected
figure is worked out by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.outcomes.tables import (
    Cells,
    Participation,
    in_work_after,
    median_days_to_work,
    outcome_table,
    protect_margin,
    small_cells,
)
from tests.unit.replaying import day

UNTIL = day(1000)


def measure(person: str, ended: float | None, code: str = "AVKLARING", provider: str = "a") -> Any:
    return {
        "person": person,
        "kind": "measure",
        "system": "nav",
        "code": code,
        "provider": provider,
        "started_at": day(0),
        "ended_at": None if ended is None else day(ended),
    }


def placement(person: str, start: float, end: float | None = None) -> Any:
    ended = None if end is None else day(end)
    return {"person": person, "kind": "placement", "started_at": day(start), "ended_at": ended}


@pytest.mark.parametrize(
    ("placements", "expected"),
    [
        ([], None),
        ([(100, None)], day(100)),  # a job that starts after the end
        ([(20, 300)], day(50)),  # already in one at the end: in work at once
        ([(20, 50)], None),  # one that ended at the end ([start, end))
        ([(60, 60)], None),  # never active
        ([(1001, None)], None),  # starts after --until
        ([(300, None), (90, 120)], day(90)),  # the first of several
    ],
)
def test_in_work_after_an_end(
    placements: list[tuple[float, float | None]], expected: datetime | None
) -> None:
    rows = [placement("p", start, end) for start, end in placements]
    assert in_work_after(day(50), rows, UNTIL) == expected


def test_the_median_is_kaplan_meiers_with_the_censored_left_at_risk() -> None:
    # Days to work 10, 20, 30, 50 and one censored at 40: S = 4/5 after 10, 3/5 after 20,
    # 2/5 after 30 (the censored one still at risk then): below one half first at 30.
    ends = [day(0)] * 5
    found = [day(10), day(20), day(30), None, day(50)]
    people = [Participation(end, work) for end, work in zip(ends, found, strict=True)]
    assert median_days_to_work(people, day(40)) == 30.0
    # Fewer than half known to be in work: no median.
    assert median_days_to_work(people[:1] + [Participation(day(0), None)] * 3, day(40)) is None


def test_a_person_counts_once_per_measure_with_their_first_end() -> None:
    engagements = [
        # Eleven people end AVKLARING on day 100; p0 again on day 700.
        *(measure(f"p{i}", 100) for i in range(11)),
        measure("p0", 700),
        measure("q", None),  # still in it: not counted
        measure("r", 100, code="JOBBKLUBB"),  # another measure
        # In work 50, 20, 30, 40 and 60 days after the end, p5 after 300: not within 182.
        # p0's job ends before their second end, which counts for nothing.
        placement("p0", 150, 300),
        *(placement(f"p{i}", 100 + days) for i, days in enumerate([20, 30, 40, 60, 300], 1)),
    ]
    engagements.sort(key=lambda row: row["person"])
    [row, _] = outcome_table(engagements, ("system", "code"), UNTIL)
    assert row == {
        "system": "nav",
        "code": "AVKLARING",
        "people": 11,
        "followed_182d": 11,
        "in_work_182d": 5,
        "in_work_share_182d": 0.455,
        # S = 10/11, 9/11, ... 6/11 after 20 ... 60 days, then 6/11 * 5/6 = 5/11 after 300.
        "median_days_to_work": 300.0,
        "suppressed": "",
    }


def test_only_ends_followed_for_182_days_count_towards_the_share() -> None:
    engagements = sorted(
        [measure(f"p{i}", 100) for i in range(10)]
        + [measure(f"q{i}", 900) for i in range(5)]  # 100 days before --until
        + [placement(f"p{i}", 200) for i in range(5)]
        + [placement(f"q{i}", 950) for i in range(5)],
        key=lambda row: row["person"],
    )
    [row] = outcome_table(engagements, ("system", "code"), UNTIL)
    figures = [row[name] for name in ("people", "followed_182d", "in_work_182d")]
    assert (figures, row["in_work_share_182d"], row["suppressed"]) == ([15, 10, 5], 0.5, "")


def figures(people: int, followed: int, in_work: int) -> dict[str, Any]:
    return {"people": people, "followed_182d": followed, "in_work_182d": in_work}


@pytest.mark.parametrize(
    ("row", "hidden"),
    [
        (figures(20, 10, 5), set()),
        (figures(4, 4, 0), {"people", "followed_182d", "in_work_182d", "in_work_share_182d"}),
        (figures(20, 4, 2), {"followed_182d", "in_work_182d", "in_work_share_182d"}),
        (figures(20, 10, 4), {"in_work_182d", "in_work_share_182d"}),
        (figures(20, 10, 0), {"in_work_182d", "in_work_share_182d"}),  # "no one" is small too
        (figures(20, 10, 6), {"in_work_182d", "in_work_share_182d"}),  # 4 not in work
        (figures(20, 10, 10), {"in_work_182d", "in_work_share_182d"}),  # "everyone"
    ],
)
def test_small_cells_and_their_complements_are_suppressed(
    row: dict[str, Any], hidden: set[str]
) -> None:
    expected = hidden | ({"median_days_to_work"} if "people" in hidden else set())
    assert small_cells(row) == expected


def margin(*rows: dict[str, Any]) -> list[Cells]:
    cells = [Cells(row, small_cells(row)) for row in rows]
    protect_margin(cells)
    return cells


def test_a_lone_hidden_count_is_hidden_again_in_the_smallest_shown_row() -> None:
    # People 3 + 40 + 7 + 9 = 59 in the margin: the 3 would be 59 - 56.
    cells = margin(figures(3, 0, 0), figures(40, 20, 10), figures(7, 5, 0), figures(9, 6, 0))
    assert ["people" in c.hidden for c in cells] == [True, False, True, False]


def test_hidden_counts_that_add_up_to_under_5_are_hidden_with_more() -> None:
    # Two groups of 2 hidden: 4 together, so the smallest shown (6) goes too.
    cells = margin(figures(2, 0, 0), figures(2, 0, 0), figures(6, 0, 0), figures(30, 0, 0))
    assert ["people" in c.hidden for c in cells] == [True, True, True, False]


def test_the_people_not_in_work_are_protected_as_well() -> None:
    # In work hidden in two rows for their complements (1 and 2 not in work, 3 together):
    # the row with the fewest in or out of work (here 5 out) is hidden too.
    cells = margin(
        figures(30, 20, 19), figures(30, 20, 18), figures(30, 20, 15), figures(30, 20, 10)
    )
    hidden = ["in_work_182d" in c.hidden for c in cells]
    assert hidden == [True, True, True, False]
    assert ["in_work_share_182d" in c.hidden for c in cells] == hidden


def test_nothing_more_is_hidden_when_the_hidden_are_safe_together() -> None:
    cells = margin(figures(3, 0, 0), figures(4, 0, 0), figures(40, 0, 0))
    assert ["people" in c.hidden for c in cells] == [True, True, False]
