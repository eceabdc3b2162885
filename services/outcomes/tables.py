"""The aggregate tables of `los export`, fit to publish: for each group of measures (a
source system and measure code, and a provider), what became of the people whose
participation ended.

Per group, each person counts once, with the first of their participations in it to
end (in business time):

- `people`: how many people's participation ended up to `until`;
- `followed_182d`: of those, the ones whose end lies at least 182 days before `until`;
- `in_work_182d` and `in_work_share_182d`: of those followed, the ones in work within
  182 days of the end; "in work" is being in any placement, from the first instant at or
  after the end at which one is active (at once if one already was);
- `median_days_to_work`: the median days from the end until in work, Kaplan–Meier over
  all the group's people (lifelines), censored at `until`; empty while fewer than half
  are known to have been in work.

Small cells are suppressed (DESIGN, security and privacy): in a group of fewer than 5
people every figure; otherwise a count under 5, and a count whose complement in its
base is under 5 (it would give the smaller one away by subtraction), with the share
drawn from it. Where a table's rows add up to another table's (providers to measures),
the cells hidden in the rows of one margin are also protected against it
(`protect_margin`). `suppressed` names the columns left empty for these reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

FOLLOW_UP = timedelta(days=182)
SMALLEST_CELL = 5
DAY = timedelta(days=1)

Row = dict[str, Any]
Group = tuple[Any, ...]
FIGURES = ("people", "followed_182d", "in_work_182d", "in_work_share_182d", "median_days_to_work")


@dataclass(frozen=True, slots=True)
class Participation:
    """A person's first participation in a group of measures to end, and when they were
    first in work after it (None if not by `until`)."""

    ended_at: datetime
    in_work_at: datetime | None


def outcome_table(
    engagements: Sequence[Row], by: Sequence[str], until: datetime, within: int = 0
) -> list[Row]:
    """One row per group of measures (the values of the engagement columns `by`), in the
    order of those values, small cells suppressed. With `within` > 0 the rows are also
    protected against their margins: the table grouped by the first `within` columns.
    `engagements` hold each person's rows together, as `Export` does."""
    groups = participations(engagements, by, until)
    cells: list[Cells] = []
    for group in sorted(groups, key=lambda group: ["" if v is None else str(v) for v in group]):
        people = groups[group]
        followed = [p for p in people if p.ended_at + FOLLOW_UP <= until]
        in_work = [
            p
            for p in followed
            if p.in_work_at is not None and p.in_work_at <= p.ended_at + FOLLOW_UP
        ]
        row: Row = dict(zip(by, group, strict=True))
        row["people"] = len(people)
        row["followed_182d"] = len(followed)
        row["in_work_182d"] = len(in_work)
        row["in_work_share_182d"] = round(len(in_work) / len(followed), 3) if followed else None
        small = len(people) < SMALLEST_CELL
        row["median_days_to_work"] = None if small else median_days_to_work(people, until)
        cells.append(Cells(row, small_cells(row)))
    if within:
        for _, margin in groupby(cells, key=lambda cell: [cell.row[c] for c in by[:within]]):
            protect_margin(list(margin))
    return [cell.published() for cell in cells]


def participations(
    engagements: Sequence[Row], by: Sequence[str], until: datetime
) -> dict[Group, list[Participation]]:
    """Each person's first ended participation in each group of measures."""
    groups: dict[Group, dict[str, Participation]] = {}
    for person, rows in groupby(engagements, key=itemgetter("person")):
        own = list(rows)
        placements = [row for row in own if row["kind"] == "placement"]
        for row in own:
            if row["kind"] != "measure" or row["ended_at"] is None:
                continue
            people = groups.setdefault(tuple(row[column] for column in by), {})
            first = people.get(person)
            if first is None or row["ended_at"] < first.ended_at:
                ended_at = row["ended_at"]
                people[person] = Participation(ended_at, in_work_after(ended_at, placements, until))
    return {group: list(people.values()) for group, people in groups.items()}


def in_work_after(instant: datetime, placements: Sequence[Row], until: datetime) -> datetime | None:
    """The first instant at or after `instant`, and not after `until`, at which one of
    the placements is active ([start, end)); None if there is none."""
    first = min(
        (
            max(row["started_at"], instant)
            for row in placements
            if row["ended_at"] is None or row["ended_at"] > max(row["started_at"], instant)
        ),
        default=None,
    )
    return first if first is not None and first <= until else None


def median_days_to_work(people: Sequence[Participation], until: datetime) -> float | None:
    """Kaplan–Meier median of the days from each end until in work, censored at `until`."""
    from lifelines import KaplanMeierFitter  # a second to import: only when tables are made

    durations = [((p.in_work_at or until) - p.ended_at) / DAY for p in people]
    observed = [p.in_work_at is not None for p in people]
    median = float(KaplanMeierFitter().fit(durations, observed).median_survival_time_)
    return round(median, 1) if median != float("inf") else None


@dataclass(frozen=True, slots=True)
class Cells:
    """A table's row with all its figures, and the names of those to leave empty."""

    row: Row
    hidden: set[str]

    def published(self) -> Row:
        hidden = [name for name in FIGURES if name in self.hidden]  # in column order
        return {**self.row, **dict.fromkeys(hidden), "suppressed": ";".join(hidden)}


def small_cells(row: Row) -> set[str]:
    """The figures of a row that give away fewer than 5 people (primary suppression)."""
    people, followed, in_work = row["people"], row["followed_182d"], row["in_work_182d"]
    if people < SMALLEST_CELL:
        return set(FIGURES)
    if followed < SMALLEST_CELL:
        return {"followed_182d", "in_work_182d", "in_work_share_182d"}
    if in_work < SMALLEST_CELL or followed - in_work < SMALLEST_CELL:
        return {"in_work_182d", "in_work_share_182d"}
    return set()


# The counts whose margins are published (the coarser table), and how to read each from a
# row: a count hidden in a row is given away by its margin less the counts shown, unless
# at least two are hidden and together they, and for `in_work_182d` also the people not in
# work, come to 5 or more.
COUNTS: dict[str, tuple[Callable[[Row], int], ...]] = {
    "people": (lambda row: row["people"],),
    "followed_182d": (lambda row: row["followed_182d"],),
    "in_work_182d": (
        lambda row: row["in_work_182d"],
        lambda row: row["followed_182d"] - row["in_work_182d"],
    ),
}


def protect_margin(rows: Sequence[Cells]) -> None:
    """Hide more cells of the rows that share a margin until no hidden count can be worked
    out from it (secondary suppression): the smallest shown count goes next."""
    for name, readings in COUNTS.items():
        while True:
            hidden = [cells for cells in rows if name in cells.hidden]
            shown = [cells for cells in rows if name not in cells.hidden]
            safe = len(hidden) >= 2 and all(
                sum(read(cells.row) for cells in hidden) >= SMALLEST_CELL for read in readings
            )
            if not hidden or safe or not shown:
                break
            smallest = min(shown, key=lambda cells: min(read(cells.row) for read in readings))
            smallest.hidden.add(name)
            if name != "people":  # the share is drawn from both of the others
                smallest.hidden.add("in_work_share_182d")
