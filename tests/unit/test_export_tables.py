"""`los export`'s aggregate tables: who was in work after a measure ended, the Kaplan–Meier
median, small cells left empty in the measure table and small providers pooled in the
provider table. Every expected figure is worked out by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.outcomes.tables import (
    FIGURES,
    Participation,
    in_work_after,
    left_sight,
    measure_table,
    median_days_to_work,
    participations,
    provider_table,
    small_cells,
)
from tests.unit.replaying import day

UNTIL = day(1000)
COUNTS = ("people", "followed_182d", "in_work_182d")


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


def by_person(*rows: Any) -> list[Any]:
    return sorted(rows, key=lambda row: row["person"])


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
    found = [day(10), day(20), day(30), None, day(50)]
    people = [Participation("a", day(0), work) for work in found]
    assert median_days_to_work(people, day(40)) == 30.0
    # Fewer than half known to be in work: no median.
    never = [Participation("a", day(0), None)] * 3
    assert median_days_to_work([*people[:1], *never], day(40)) is None


def test_a_person_counts_once_per_measure_with_their_first_end() -> None:
    engagements = by_person(
        # Eleven people end AVKLARING on day 100; p0 again on day 700.
        *(measure(f"p{i}", 100) for i in range(11)),
        measure("p0", 700),
        measure("q", None),  # still in it: not counted
        measure("r", 100, code="JOBBKLUBB"),  # another measure
        # In work 50, 20, 30, 40 and 60 days after the end, p5 after 300: not within 182.
        # p0's job ends before their second end, which counts for nothing.
        placement("p0", 150, 300),
        *(placement(f"p{i}", 100 + days) for i, days in enumerate([20, 30, 40, 60, 300], 1)),
    )
    [row, _] = measure_table(participations(engagements, UNTIL), UNTIL)
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


def test_182_days_are_followed_and_in_time_on_the_day_itself() -> None:
    # Ten ended on day 100: five of them in work on day 282, 182 days later, and --until
    # is day 282 itself. Five more ended on day 101, one day short of being followed.
    engagements = by_person(
        *(measure(f"p{i}", 100) for i in range(10)),
        *(placement(f"p{i}", 282) for i in range(5)),
        *(measure(f"q{i}", 101) for i in range(5)),
    )
    [row] = measure_table(participations(engagements, day(282)), day(282))
    assert [row[name] for name in COUNTS] == [15, 10, 5]


def test_an_end_dated_after_until_is_not_an_end_yet() -> None:
    engagements = by_person(*(measure(f"p{i}", 100) for i in range(5)), measure("late", 1001))
    [row] = measure_table(participations(engagements, UNTIL), UNTIL)
    assert row["people"] == 5


def test_people_who_left_sight_are_censored_there_and_not_followed() -> None:
    # Ten ended on day 100: five in work 10, 20, 30, 40 and 50 days later, five gone
    # (moved, deceased) a day after the end. Censored then, the five gone leave five at
    # risk: S = 4/5, 3/5, 2/5 after 30 days. Left at risk until --until, they would hold
    # the median at 50 (S = 9/10 ... 5/10).
    people = [f"p{i}" for i in range(10)]
    engagements = by_person(
        *(measure(person, 100) for person in people),
        *(placement(person, 100 + 10 * (i + 1)) for i, person in enumerate(people[:5])),
    )
    closings = [
        {"person": person, "closed_at": day(101), "closing_reason": reason}
        for person, reason in zip(
            people[5:], ["MOVED", "DECEASED", "TRANSFERRED_OUT", "MOVED", "MOVED"], strict=True
        )
    ]
    [row] = measure_table(participations(engagements, UNTIL, left_sight(closings)), UNTIL)
    assert (row["people"], row["followed_182d"], row["median_days_to_work"]) == (10, 5, 30.0)


def test_only_closings_that_take_a_person_out_of_sight_count() -> None:
    closings: list[dict[str, Any]] = [
        {"person": "a", "closed_at": day(5), "closing_reason": "GOAL_REACHED"},
        {"person": "b", "closed_at": day(5), "closing_reason": "MOVED,OTHER"},
        {"person": "c", "closed_at": None, "closing_reason": None},
    ]
    assert left_sight(closings) == {"b": day(5)}


def test_someone_in_work_before_they_left_is_not_censored() -> None:
    engagements = [measure("p", 100), placement("p", 120)]
    [[person]] = participations(engagements, UNTIL, {"p": day(150)}).values()
    assert (person.in_work_at, person.left_at) == (day(120), None)


@pytest.mark.parametrize(("gone", "left_at"), [(50, None), (150, day(150)), (1001, None)])
def test_leaving_counts_between_the_end_and_until(gone: float, left_at: datetime | None) -> None:
    [[person]] = participations([measure("p", 100)], UNTIL, {"p": day(gone)}).values()
    assert person.left_at == left_at


def figures(people: int, followed: int, in_work: int) -> dict[str, Any]:
    return {"people": people, "followed_182d": followed, "in_work_182d": in_work}


MEDIAN = "median_days_to_work"
FOLLOWED = ["followed_182d", "in_work_182d", "in_work_share_182d"]
IN_WORK = ["in_work_182d", "in_work_share_182d"]


@pytest.mark.parametrize(
    ("row", "hidden"),
    [
        (figures(20, 10, 5), []),
        (figures(20, 20, 10), []),  # no one ended lately: 0 is no small cell here
        (figures(4, 4, 0), list(FIGURES)),
        (figures(20, 4, 2), FOLLOWED),
        (figures(20, 17, 10), FOLLOWED),  # 3 ended in the last 182 days
        (figures(20, 0, 0), []),  # none followed yet: nothing in work to count
        (figures(20, 10, 4), IN_WORK),
        (figures(20, 10, 0), IN_WORK),  # "no one" is small too
        (figures(20, 10, 6), IN_WORK),  # 4 not in work
        (figures(20, 10, 10), IN_WORK),  # "everyone"
        (figures(9, 9, 0), [*IN_WORK, MEDIAN]),  # fewer than 10: no median
    ],
)
def test_small_cells_and_their_complements_are_left_empty(
    row: dict[str, Any], hidden: list[str]
) -> None:
    assert small_cells(row) == hidden


def people_of(provider: str, count: int, in_work: int, ended: float = 100) -> list[Participation]:
    """`count` people who ended on day `ended`, the first `in_work` of them in work then."""
    return [
        Participation(provider, day(ended), day(ended) if i < in_work else None)
        for i in range(count)
    ]


def providers(*people: list[Participation]) -> list[tuple[Any, ...]]:
    measures = {("nav", "AVKLARING"): [p for group in people for p in group]}
    return [
        (row["provider"], *(row[name] for name in COUNTS))
        for row in provider_table(measures, UNTIL)
    ]


def test_providers_whose_rows_would_hide_a_count_are_pooled() -> None:
    # b, c, d and e each have 4 people, 2 in work: 16 pooled, 8 in and 8 out of work, and
    # 12, 6 and 6 without any one of them.
    small = [people_of(provider, 4, 2) for provider in "bcde"]
    rows = providers(people_of("a", 20, 10), *small)
    assert rows == [("a", 20, 20, 10), (None, 16, 16, 8)]


def test_a_pool_that_would_hide_a_count_takes_in_the_smallest_providers_shown() -> None:
    # b and c pooled are 8 people, 4 in work. With a (10, 5 in work) they are 18, but b
    # and c would be left without a: with d (20) too, 38, and every one left out still
    # leaves 5 or more in and out of work. e (30) stays.
    rows = providers(
        people_of("a", 10, 5),
        people_of("b", 4, 2),
        people_of("c", 4, 2),
        people_of("d", 20, 10),
        people_of("e", 30, 15),
    )
    assert rows == [("e", 30, 30, 15), (None, 38, 38, 19)]


def test_no_pool_that_one_of_its_providers_could_subtract_itself_from() -> None:
    # b (3 people, 1 in work) and c (8, 4 in work) pooled pass (11, 5 in work), but c
    # would find b by subtracting itself: a joins, and the pool is the whole measure.
    rows = providers(people_of("a", 20, 10), people_of("b", 3, 1), people_of("c", 8, 4))
    assert rows == [(None, 31, 31, 15)]


def test_a_measure_whose_providers_cannot_be_shown_has_no_provider_rows() -> None:
    assert providers(people_of("a", 3, 0), people_of("b", 3, 3)) == []


def safe(people: int, followed: int, in_work: int) -> bool:
    """Whether counts give away fewer than 5 people nowhere: the rule, written out again."""
    small = range(1, 5)
    if people < 5 or followed in small or people - followed in small:
        return False
    return followed == 0 or min(in_work, followed - in_work) >= 5


@settings(deadline=None)  # Kaplan–Meier fits, and lifelines' import in the first of them
@given(
    st.lists(
        st.tuples(st.sampled_from("abcdef"), st.integers(0, 400), st.integers(0, 300) | st.none()),
        max_size=150,
    )
)
def test_no_published_count_gives_away_fewer_than_5_people(
    drawn: list[tuple[str, int, int | None]],
) -> None:
    # People who ended between day 0 and 400 (--until 500: some not followed yet), each
    # in work some days later or never.
    until = day(500)
    people = [
        Participation(provider, day(end), None if work is None else day(min(end + work, 500)))
        for provider, end, work in drawn
    ]
    measures = {("nav", "AVKLARING"): people} if people else {}
    [*whole] = measure_table(measures, until)
    shown = provider_table(measures, until)
    for row in [*whole, *shown]:
        people, followed, in_work = (row[name] for name in COUNTS)
        if people is None:
            assert [row[name] for name in FIGURES] == [None] * len(FIGURES)
        else:
            assert people >= 5
            assert people >= 10 or row["median_days_to_work"] is None
        if followed is not None:
            assert followed not in range(1, 5)
            assert people - followed not in range(1, 5)
        if in_work is not None:
            assert followed is not None
            assert followed == 0 or min(in_work, followed - in_work) >= 5
    if not shown:
        return
    # No empty count in the provider rows; together they are the measure's row.
    assert all(row[name] is not None for row in shown for name in COUNTS)
    [row] = whole
    assert [sum(r[name] for r in shown) for name in COUNTS] == [row[n] for n in COUNTS]

    # And each provider in the pool, less its own people, finds no small count either.
    def counted(providers: set[str]) -> tuple[int, int, int]:
        mine = [(end, work) for provider, end, work in drawn if provider in providers]
        followed = [work for end, work in mine if end + 182 <= 500]
        in_work = [work for work in followed if work is not None and work <= 182]
        return len(mine), len(followed), len(in_work)

    pooled = {provider for provider, _, _ in drawn} - {row["provider"] for row in shown}
    for member in pooled:
        assert safe(*counted(pooled - {member}))
