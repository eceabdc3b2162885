"""A whole cohort: people drawn one by one, their histories recorded, the events of all
of them in `recorded_at` order, and the ground truth of the handover gaps put in.

Deterministic for a seed: one `random.Random(seed)` drives everything, and nothing
reads the wall clock.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from services.cohort.casefile import History, Numbering, Person, gap_window
from services.cohort.catalogue import KOMMUNE_MIX, PROFILE_MIX
from services.cohort.corruption import InvalidLine, mix_in_invalid
from services.cohort.facts import OSLO, GapCause, GapFact, days, local_day, office_time
from services.cohort.journey import simulate
from services.cohort.organisations import Organisations, org_unit
from services.cohort.recording import MAX_AHEAD, edge_event, record, shift
from services.kernel.ids import synthetic_national_id

Event = dict[str, Any]

# Gap people are referred early enough for their gap to fall inside the window, and
# are drawn again when it still does not.
_GAP_ROOM = days(240)
_ATTEMPTS = 30
# A recent person needs a history with a handover in it; most have one.
_RECENT_ATTEMPTS = 50


@dataclass(frozen=True, slots=True)
class InjectedGap:
    """A HANDOVER_GAP the cohort holds (CONTRACT §4): the last active engagement,
    `measure_id`, ended at `ended_at` and nothing followed by `deadline`.

    `raised_at` is when a replay should raise it: the deadline, or, if later, the moment
    the last of the ends up to `ended_at` was recorded. `cause` is "handover" (injected
    by `gap_share`), "recent" (due just after `now`) or "dropout" (a dropout whose
    journey stayed open).
    """

    measure_id: str
    ended_at: datetime
    unplanned: bool
    deadline: datetime
    raised_at: datetime
    cause: GapCause


@dataclass(slots=True)
class Cohort:
    """The events of a cohort and what is known to be in them.

    `events` are CONTRACT §1 objects in `recorded_at` order, broken lines included.
    `injected_gaps` are the gaps put in on purpose (gap_share and recent people);
    `dropout_gaps` the ones dropouts make. Every HANDOVER_GAP a replay up to `until`
    raises is in one of the two lists (see the package docstring for the fine print).
    """

    events: list[Event]
    injected_gaps: list[InjectedGap]
    dropout_gaps: list[InjectedGap]
    invalid_lines: list[InvalidLine]
    until: datetime
    people: int

    @property
    def handover_gaps(self) -> list[InjectedGap]:
        """Every HANDOVER_GAP a replay of `events` up to `until` raises, by deadline."""
        return sorted([*self.injected_gaps, *self.dropout_gaps], key=lambda gap: gap.deadline)


def generate_cohort(
    people: int,
    seed: int,
    *,
    start: date,
    end: date,
    gap_share: float = 0.15,
    now: datetime | None = None,
    recent_share: float = 0.01,
    recent_span: tuple[timedelta, timedelta] = (timedelta(seconds=5), timedelta(seconds=60)),
    invalid_share: float = 0.0,
) -> Cohort:
    """A synthetic cohort of `people` referred between `start` and `end` (both included).

    Events recorded after `end` (or after `now`, when given) are left out. With `now`,
    `recent_share` of the people (at least one) have a gap due `recent_span` after
    `now`. `invalid_share` adds that share of broken lines (see `corruption`).
    """
    if people < 0 or end < start:
        raise ValueError("people must not be negative, nor end before start")
    shares = {"gap_share": gap_share, "recent_share": recent_share, "invalid_share": invalid_share}
    for name, share in shares.items():
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must be between 0 and 1")
    if not timedelta(0) <= recent_span[0] <= recent_span[1]:
        raise ValueError("recent_span must be (low, high), low >= 0")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    cohort = _Drawing(rng, people, start, end, now)
    gap_people = set(rng.sample(range(people), round(gap_share * people)))
    recent_people: set[int] = set()
    if now is not None and people:
        others = [index for index in range(people) if index not in gap_people]
        wanted = max(1, round(recent_share * people))
        recent_people = set(rng.sample(others, min(wanted, len(others))))
    for index in range(people):
        if index in recent_people:
            low, high = (span.total_seconds() for span in recent_span)
            assert now is not None
            cohort.add_recent(now + timedelta(seconds=rng.uniform(low, high)))
        else:
            cohort.add(inject_gap=index in gap_people)
    events = [event for _, event in sorted(cohort.rows, key=itemgetter(0))]
    invalid: list[InvalidLine] = []
    if invalid_share:
        events, invalid = mix_in_invalid(events, rng, invalid_share)
    return Cohort(
        events=events,
        injected_gaps=sorted(cohort.injected, key=lambda gap: gap.deadline),
        dropout_gaps=sorted(cohort.dropouts, key=lambda gap: gap.deadline),
        invalid_lines=invalid,
        until=cohort.until,
        people=people,
    )


def generate(
    people: int,
    seed: int,
    *,
    start: date,
    end: date,
    gap_share: float = 0.15,
    now: datetime | None = None,
    recent_share: float = 0.01,
    recent_span: tuple[timedelta, timedelta] = (timedelta(seconds=5), timedelta(seconds=60)),
    invalid_share: float = 0.0,
) -> Iterator[Event]:
    """The events of `generate_cohort`, one by one, in `recorded_at` order."""
    cohort = generate_cohort(
        people,
        seed,
        start=start,
        end=end,
        gap_share=gap_share,
        now=now,
        recent_share=recent_share,
        recent_span=recent_span,
        invalid_share=invalid_share,
    )
    yield from cohort.events


def write_jsonl(path: str | Path, events: Iterable[Event]) -> int:
    """Write one event per line (CONTRACT §1); return how many were written."""
    written = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
    return written


class _Drawing:
    """The cohort as it is being drawn: organisations, people, their events and gaps."""

    def __init__(
        self, rng: random.Random, people: int, start: date, end: date, now: datetime | None
    ) -> None:
        self.rng = rng
        self.now = now
        self.start = datetime.combine(start, time(0), tzinfo=OSLO).astimezone(UTC)
        self.until = datetime.combine(end + days(1), time(0), tzinfo=OSLO).astimezone(UTC)
        # Whatever starts after this is recorded after `until`, even if planned ahead.
        self.horizon = self.until + MAX_AHEAD + days(1)
        self.orgs = Organisations(rng, people)
        self.numbering = Numbering()
        self.rows: list[tuple[datetime, Event]] = []
        self.injected: list[InjectedGap] = []
        self.dropouts: list[InjectedGap] = []
        self.national_ids: set[str] = set()

    def add(self, *, inject_gap: bool) -> None:
        latest = self.until - days(1)
        if inject_gap and self.until - _GAP_ROOM > self.start:
            latest = self.until - _GAP_ROOM
        for attempt in range(_ATTEMPTS):
            person, history = self._simulate(
                self._referral_day(latest), inject_gap=inject_gap, horizon=self.horizon
            )
            record(history.facts, self.rng)
            injected = [gap for gap in history.gaps if gap.cause == "handover"]
            drawn = len(injected) == inject_gap and all(map(self._raised, injected))
            if drawn or attempt == _ATTEMPTS - 1:
                break
            self._forget(history)
        self.injected += [self._truth(gap) for gap in injected if self._raised(gap)]
        self._keep(person, history)

    def add_recent(self, deadline: datetime) -> None:
        """A person whose measure ended so that HANDOVER_GAP is due at `deadline`: a
        normal history, moved in time so that its first handover ends then, and cut
        there. Drawn again until it begins inside the window, or else taken as is."""
        assert self.now is not None
        fallback: tuple[Person, History] | None = None
        for _ in range(_RECENT_ATTEMPTS):
            # Drawn in full, as it is moved in time before it is cut.
            person, history = self._simulate(
                self._referral_day(self.until), inject_gap=False, horizon=None
            )
            if history.handovers and self._moved_start(history, deadline) >= self.start:
                break
            if history.handovers and fallback is None:
                fallback = person, history
            else:
                self._forget(history)
        else:
            if fallback is None:
                raise RuntimeError("no history with a handover could be drawn")
            person, history = fallback
        cover = history.handovers[0]
        assert cover.end is not None
        ended_at = deadline - gap_window(cover.unplanned)
        endings = history.endings_until(cover.end)
        shift(history.facts, ended_at - cover.end)
        history.facts = [fact for fact in history.facts if fact.occurred_at <= ended_at]
        history.gaps = []  # a dropout only ever comes after every handover: it is cut
        record(history.facts, self.rng, cap=min(self.now, self.until - timedelta(seconds=1)))
        gap = GapFact(cover.engagement_id, ended_at, cover.unplanned, "recent", endings)
        self.injected.append(self._truth(gap))
        self._keep(person, history)

    @staticmethod
    def _moved_start(history: History, deadline: datetime) -> datetime:
        """When the history begins once its first handover is moved to fall due at
        `deadline`."""
        cover = history.handovers[0]
        assert cover.end is not None
        moved_by = deadline - gap_window(cover.unplanned) - cover.end
        return history.facts[0].occurred_at + moved_by

    def _simulate(
        self, referred_day: date, *, inject_gap: bool, horizon: datetime | None
    ) -> tuple[Person, History]:
        rng = self.rng
        profile = PROFILE_MIX.draw(rng)
        kommune = KOMMUNE_MIX.draw(rng)
        age_days = rng.randint(profile.min_age * 365 + 1, (profile.max_age + 1) * 365 - 2)
        birth = referred_day - days(age_days)
        plus = rng.choice((80, 80, 40))
        national_id = synthetic_national_id(rng, birth, plus=plus)
        while national_id in self.national_ids:  # two people never share a number
            national_id = synthetic_national_id(rng, birth, plus=plus)
        self.national_ids.add(national_id)
        person = Person(
            national_id=national_id,
            profile=profile,
            kommune=kommune,
            org_unit=org_unit(kommune, rng.choice(kommune.offices)),
        )
        referred_at = office_time(referred_day, rng.randint(8, 15), rng.choice((0, 15, 30, 45)))
        history = simulate(
            rng,
            self.orgs,
            self.numbering,
            person,
            referred_at,
            inject_gap=inject_gap,
            horizon=horizon,
        )
        return person, history

    def _referral_day(self, latest: datetime) -> date:
        first = local_day(self.start)
        return first + days(self.rng.randint(0, max(0, (local_day(latest) - first).days)))

    def _forget(self, history: History) -> None:
        for coordinator in history.coordinators:
            self.orgs.caseloads.release(coordinator)

    def _emitted(self, at: datetime | None) -> bool:
        assert at is not None
        return at < self.until and (self.now is None or at <= self.now)

    def _raised(self, gap: GapFact) -> bool:
        """Whether a replay up to `until` (and `now`) raises the gap."""
        deadline = gap.ended_at + gap_window(gap.unplanned)
        return self._emitted(deadline) and all(
            self._emitted(ending.recorded_at) for ending in gap.endings
        )

    def _truth(self, gap: GapFact) -> InjectedGap:
        deadline = gap.ended_at + gap_window(gap.unplanned)
        return InjectedGap(
            measure_id=gap.measure_id,
            ended_at=gap.ended_at,
            unplanned=gap.unplanned,
            deadline=deadline,
            raised_at=max(deadline, gap.known_at()),
            cause=gap.cause,
        )

    def _keep(self, person: Person, history: History) -> None:
        self.dropouts += [
            self._truth(gap) for gap in history.gaps if gap.cause == "dropout" and self._raised(gap)
        ]
        for fact in history.facts:
            if self._emitted(fact.recorded_at):
                assert fact.recorded_at is not None
                self.rows.append((fact.recorded_at, edge_event(fact, person.national_id)))
