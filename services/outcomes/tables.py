"""The aggregate tables of `los export`, fit to publish: for each measure (a source system
and measure code), and for each of its providers, what became of the people whose
participation ended.

In each measure a person counts once, with the first of their participations in it to end
by `until` (in business time; of two ending at one instant, the one that started first),
and under the provider of that participation, so the provider rows of a measure add up
to the measure's row. The figures:

- `people`: how many people's participation ended;
- `followed_182d`: of those, the ones whose end lies at least 182 days before `until`
  and who did not leave sight within them before they were in work (their latest journey
  closed as moved, deceased or transferred out: `left_sight`);
- `in_work_182d` and `in_work_share_182d`: of those followed, the ones in work within
  182 days of the end (the share empty while no one is followed); "in work" is being in
  any placement, from the first instant at or after the end at which one is active (at
  once if one already was);
- `median_days_to_work`: the median days from the end until in work, Kaplan–Meier over
  all the people (lifelines), censored when they left sight or at `until`; empty while
  not reached.

Small cells (DESIGN, security and privacy). The measure table leaves a figure empty, and
names it in `suppressed`, when it would give away fewer than 5 people: every figure of a
measure with fewer than 5; `followed_182d` when it, or the people not followed, number
1–4; when some are followed, `in_work_182d` when the people in work or those not in work
among them number 0–4 (none and all are small too); `in_work_182d` also whenever
`followed_182d` is empty; a share with its count. The median needs 10 people (it is
always one person's own days). The provider table has no empty counts: a provider whose
row would have one is pooled with the other such providers of the measure in one row,
`provider` empty; while that row, or that row less any one provider in it (which that
provider could work out), would have one too, the smallest provider shown joins it; a
measure whose providers cannot be shown that way has no provider rows. So no empty
cell, and no pooled provider's figures, can be worked out exactly from the published ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

FOLLOW_UP = timedelta(days=182)
SMALLEST_CELL = 5
SMALLEST_FOR_MEDIAN = 10
DAY = timedelta(days=1)

Row = dict[str, Any]
Measure = tuple[str, str]  # source system, measure code
FIGURES = ("people", "followed_182d", "in_work_182d", "in_work_share_182d", "median_days_to_work")
# Closings that take a person out of sight (CONTRACT §2, `journey.closed`).
LEAVING = frozenset({"MOVED", "DECEASED", "TRANSFERRED_OUT"})


@dataclass(frozen=True, slots=True)
class Participation:
    """A person's first participation in a measure to end, its provider, when they were
    first in work after it (None if not by `until`), and, if never, when they left sight
    after it (None if they did not)."""

    provider: str
    ended_at: datetime
    in_work_at: datetime | None
    left_at: datetime | None = None


def left_sight(people: Iterable[Row]) -> dict[str, datetime]:
    """When each person whose latest journey closed as moved, deceased or transferred out
    left sight: that closing. (A person whose journey opened again is in sight.)"""
    return {
        row["person"]: row["closed_at"]
        for row in people
        if row["closed_at"] is not None and LEAVING & set(row["closing_reason"].split(","))
    }


def participations(
    engagements: Sequence[Row], until: datetime, left: Mapping[str, datetime] | None = None
) -> dict[Measure, list[Participation]]:
    """Each person's first participation to end by `until` in each measure. `engagements`
    hold each person's rows together, as `Export` does; `left` is `left_sight`."""
    left = left or {}
    measures: dict[Measure, dict[str, Participation]] = {}
    for person, rows in groupby(engagements, key=itemgetter("person")):
        own = list(rows)
        placements = [row for row in own if row["kind"] == "placement"]
        for row in own:
            ended_at = row["ended_at"]
            if row["kind"] != "measure" or ended_at is None or ended_at > until:
                continue
            people = measures.setdefault((row["system"], row["code"]), {})
            first = people.get(person)
            if first is None or ended_at < first.ended_at:
                in_work_at = in_work_after(ended_at, placements, until)
                gone = left.get(person)
                seen_go = gone is not None and ended_at <= gone <= until
                left_at = gone if in_work_at is None and seen_go else None
                provider = row["provider"] or ""
                people[person] = Participation(provider, ended_at, in_work_at, left_at)
    return {measure: list(people.values()) for measure, people in measures.items()}


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


def counts(people: Sequence[Participation], until: datetime) -> Row:
    """The counts of a group of people, and the share drawn from them; none left out."""
    followed = [
        p
        for p in people
        if p.ended_at + FOLLOW_UP <= until
        and (p.left_at is None or p.left_at >= p.ended_at + FOLLOW_UP)
    ]
    in_work = [
        p for p in followed if p.in_work_at is not None and p.in_work_at <= p.ended_at + FOLLOW_UP
    ]
    return {
        "people": len(people),
        "followed_182d": len(followed),
        "in_work_182d": len(in_work),
        "in_work_share_182d": round(len(in_work) / len(followed), 3) if followed else None,
    }


def figures(people: Sequence[Participation], until: datetime) -> Row:
    """Every figure of a group of people, none left out."""
    enough = len(people) >= SMALLEST_FOR_MEDIAN
    median = median_days_to_work(people, until) if enough else None
    return {**counts(people, until), "median_days_to_work": median}


def median_days_to_work(people: Sequence[Participation], until: datetime) -> float | None:
    """Kaplan–Meier median of the days from each end until in work, censored at `until`."""
    from lifelines import KaplanMeierFitter  # a second to import: only when tables are made

    durations = [((p.in_work_at or p.left_at or until) - p.ended_at) / DAY for p in people]
    observed = [p.in_work_at is not None for p in people]
    median = float(KaplanMeierFitter().fit(durations, observed).median_survival_time_)
    return round(median, 1) if median != float("inf") else None


def small_cells(row: Row) -> list[str]:
    """The figures of a row that would give away fewer than 5 people, in column order."""
    people, followed, in_work = row["people"], row["followed_182d"], row["in_work_182d"]
    if people < SMALLEST_CELL:
        return list(FIGURES)
    hidden = []
    if 0 < followed < SMALLEST_CELL or 0 < people - followed < SMALLEST_CELL:
        hidden = ["followed_182d", "in_work_182d", "in_work_share_182d"]
    elif followed and (in_work < SMALLEST_CELL or followed - in_work < SMALLEST_CELL):
        hidden = ["in_work_182d", "in_work_share_182d"]
    if people < SMALLEST_FOR_MEDIAN:
        hidden.append("median_days_to_work")
    return hidden


def measure_table(measures: dict[Measure, list[Participation]], until: datetime) -> list[Row]:
    """One row per measure, in order, small cells left empty."""
    rows = []
    for (system, code), people in sorted(measures.items()):
        row = figures(people, until)
        hidden = small_cells(row)
        rows.append(
            {
                "system": system,
                "code": code,
                **row,
                **dict.fromkeys(hidden),
                "suppressed": ";".join(hidden),
            }
        )
    return rows


def provider_table(measures: dict[Measure, list[Participation]], until: datetime) -> list[Row]:
    """One row per provider of each measure with no count left empty, and one for the
    other providers pooled; in order, the pool last."""
    rows = []
    for (system, code), people in sorted(measures.items()):
        for provider, row in _providers_shown(people, until):
            hidden = small_cells(row)  # the median alone, if any
            row = {"system": system, "code": code, "provider": provider, **row}
            rows.append({**row, **dict.fromkeys(hidden), "suppressed": ";".join(hidden)})
    return rows


def _providers_shown(
    people: Sequence[Participation], until: datetime
) -> list[tuple[str | None, Row]]:
    """The providers of one measure that can be shown, each with its figures, and then the
    pool of the others (provider None) if there is one; nothing if no pool can be shown."""
    by_provider = {
        provider: list(own)
        for provider, own in groupby(sorted(people, key=_by_provider), key=_by_provider)
    }
    pooled = [provider for provider, own in by_provider.items() if not _counts_shown(own, until)]
    while pooled and not _pool_shown(by_provider, pooled, until):
        rest = [provider for provider in by_provider if provider not in pooled]
        if not rest:
            return []
        pooled.append(min(rest, key=lambda provider: (len(by_provider[provider]), provider)))
    shown: list[tuple[str | None, Row]] = [
        (provider, figures(own, until))
        for provider, own in by_provider.items()
        if provider not in pooled
    ]
    return [*shown, (None, figures(_of(by_provider, pooled), until))] if pooled else shown


def _pool_shown(
    by_provider: dict[str, list[Participation]], pooled: list[str], until: datetime
) -> bool:
    """Whether a pool can be shown: no count of it is small, nor of it less any one of its
    providers, which that provider could work out from its own figures (so a pool needs
    three providers at least)."""
    return _counts_shown(_of(by_provider, pooled), until) and all(
        _counts_shown(_of(by_provider, [p for p in pooled if p != member]), until)
        for member in pooled
    )


def _by_provider(participation: Participation) -> str:
    return participation.provider


def _of(
    by_provider: dict[str, list[Participation]], providers: Iterable[str]
) -> list[Participation]:
    return [p for provider in providers for p in by_provider[provider]]


def _counts_shown(people: Sequence[Participation], until: datetime) -> bool:
    """Whether every count of a group can be shown (the median aside)."""
    return not set(small_cells(counts(people, until))) - {"median_days_to_work"}
