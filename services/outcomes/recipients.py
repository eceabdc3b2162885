"""Who an alert goes to (CONTRACT §4): the coordinator responsible when it is raised; with
none, the team (`org_unit`) of the latest assignment, triage or referral. A closing ends
the coordinator's responsibility, as it ends the journey (rules/coordination.py).

The same walk gives each person's place in a caseload over time (`responsibilities`):
their coordinator's while they have one, else their team's queue, and no one's once
their journey is closed."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from services.outcomes.domain import (
    COORDINATOR_ASSIGNED,
    COORDINATOR_UNASSIGNED,
    JOURNEY_CLOSED,
    REFERRED,
    TRIAGED,
    Fact,
)
from services.outcomes.journey import COORDINATION_RANKS, Journey

# The facts that name a person's team, and those of them that open a journey.
_TEAM_EVENTS = frozenset({REFERRED, TRIAGED, COORDINATOR_ASSIGNED})
_OPENINGS = frozenset({REFERRED, TRIAGED})


# The team queue of the alerts CONTRACT §4 addresses to no one: raised for a person of
# whom no coordinator, triage or referral was known (measures or placements alone). Whose
# token names this team watches, lists and acknowledges them, and opens those journeys.
UNADDRESSED = "unaddressed"


@dataclass(frozen=True, slots=True)
class Recipient:
    coordinator: str | None
    org_unit: str | None


@dataclass(frozen=True, slots=True)
class Responsibility:
    """A stretch of business time in one caseload: a coordinator's (with the team of
    their assignment) or, with no coordinator, a team queue's. `until` is None while it
    lasts as far as is known."""

    coordinator: str | None
    org_unit: str | None
    since: datetime
    until: datetime | None


def _handovers(facts: Iterable[Fact]) -> Iterator[tuple[Fact, Recipient, bool]]:
    """After each fact that can change who is responsible, in the order the rules take
    them (a referral with the triages): the fact, who, and whether a journey is open (as
    `KnownJourney` reads it: a referral or triage opens one, a closing closes it, and
    with neither known the person is in one open journey)."""
    coordinator: str | None = None
    org_unit: str | None = None
    is_open = True
    in_order = sorted(
        facts, key=lambda f: (f.occurred_at, COORDINATION_RANKS.get(f.type, 1), f.event_id)
    )
    for fact in in_order:
        if fact.type in _TEAM_EVENTS:
            org_unit = fact.data.get("org_unit") or org_unit
        if fact.type == COORDINATOR_ASSIGNED:
            coordinator = fact.data["coordinator_id"]
        elif fact.type == JOURNEY_CLOSED:
            coordinator = None
            is_open = False
        elif fact.type == COORDINATOR_UNASSIGNED:
            if fact.data["coordinator_id"] == coordinator:
                coordinator = None
        elif fact.type in _OPENINGS:
            is_open = True
        else:
            continue
        yield fact, Recipient(coordinator, org_unit), is_open


def recipient_at(journey: Journey, at: datetime) -> Recipient:
    """Judged on what had happened, and was known, at `at`."""
    happened = (f for f in journey.known_at(at) if f.occurred_at <= at)
    latest = deque(_handovers(happened), maxlen=1)
    return latest[0][1] if latest else Recipient(None, None)


def addressed_at(journey: Journey, at: datetime) -> Recipient:
    """Who the live service sends an alert raised at `at` to: `recipient_at`, or with no
    one known the `unaddressed` queue (`los replay` prints the contract's no one)."""
    recipient = recipient_at(journey, at)
    if recipient.coordinator is None and recipient.org_unit is None:
        return Recipient(None, UNADDRESSED)
    return recipient


def responsibilities(journey: Journey) -> list[Responsibility]:
    """Whose caseload the person is in over business time, on every fact received (a
    caseload is a view of now, not a judgement at the live clock), including stretches
    planned ahead (an assignment dated later): their coordinator's, in the team of the
    coordinator's latest assignment, while they have one; else the queue of their latest
    team; no one's while their journey is closed or no team is known (someone known only
    from measures or placements)."""
    stretches: list[Responsibility] = []
    current: Responsibility | None = None
    assigned_in: str | None = None  # the team of the latest assignment
    for fact, recipient, is_open in _handovers(journey.facts):
        if fact.type == COORDINATOR_ASSIGNED:
            assigned_in = recipient.org_unit
        holder = None
        if is_open and recipient.coordinator:
            holder = Responsibility(recipient.coordinator, assigned_in, fact.occurred_at, None)
        elif is_open and recipient.org_unit:
            holder = Responsibility(None, recipient.org_unit, fact.occurred_at, None)
        if _whose(holder) == _whose(current):
            continue
        at = fact.occurred_at
        if current is not None and current.since < at:
            stretches.append(replace(current, until=at))
        elif stretches and stretches[-1].until == at and _whose(stretches[-1]) == _whose(holder):
            # Back with the one before within an instant (a hand-over and its undoing).
            current = replace(stretches.pop(), until=None)
            continue
        current = holder
    if current is not None:
        stretches.append(current)
    return stretches


def _whose(stretch: Responsibility | None) -> tuple[str | None, str | None] | None:
    """The caseload a stretch is in: a coordinator's in a team, or a team's queue."""
    return None if stretch is None else (stretch.coordinator, stretch.org_unit)


def held_at(journey: Journey, at: datetime) -> Responsibility | None:
    """The stretch of `responsibilities` the person is in at `at`; None if in no caseload."""
    for stretch in responsibilities(journey):
        if stretch.since <= at and (stretch.until is None or at < stretch.until):
            return stretch
    return None
