"""Who an alert goes to (CONTRACT §4): the coordinator responsible when it is raised; with
none, the team (`org_unit`) of the latest assignment, triage or referral. A closing ends
the coordinator's responsibility, as it ends the journey (rules/coordination.py).

The same walk gives each person's place in a caseload over time (`responsibilities`):
their coordinator's while they have one, else their team's queue, and no one's once
their journey is closed."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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

# The facts that open a journey and name its team.
_TEAM_EVENTS = frozenset({REFERRED, TRIAGED, COORDINATOR_ASSIGNED})


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


def _handovers(facts: Iterable[Fact]) -> Iterator[tuple[datetime, Recipient, bool]]:
    """After each fact that can change who is responsible, in the order the rules take
    them (a referral with the triages): when, who, and whether a journey is open."""
    coordinator: str | None = None
    org_unit: str | None = None
    is_open = False
    in_order = sorted(
        facts, key=lambda f: (f.occurred_at, COORDINATION_RANKS.get(f.type, 1), f.event_id)
    )
    for fact in in_order:
        if fact.type in _TEAM_EVENTS:
            org_unit = fact.data.get("org_unit") or org_unit
            is_open = True
        if fact.type == COORDINATOR_ASSIGNED:
            coordinator = fact.data["coordinator_id"]
        elif fact.type == JOURNEY_CLOSED:
            coordinator = None
            is_open = False
        elif fact.type == COORDINATOR_UNASSIGNED:
            if fact.data["coordinator_id"] == coordinator:
                coordinator = None
        elif fact.type not in _TEAM_EVENTS:
            continue
        yield fact.occurred_at, Recipient(coordinator, org_unit), is_open


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


def _caseload(recipient: Recipient, is_open: bool) -> tuple[str | None, str | None] | None:
    """Whose caseload: (coordinator, None), or (None, team) for a team's queue; None while
    no journey is open or no one is known."""
    if not is_open:
        return None
    if recipient.coordinator:
        return recipient.coordinator, None
    return (None, recipient.org_unit) if recipient.org_unit else None


def responsibilities(journey: Journey) -> list[Responsibility]:
    """Whose caseload the person is in over business time, on every fact received (a
    caseload is a view of now, not a judgement at the live clock), including stretches
    planned ahead (an assignment dated later). A person of whom only measures or
    placements are known is in none: no journey was opened for them."""
    stretches: list[Responsibility] = []
    held: tuple[str | None, str | None] | None = None
    since, team = datetime.min, None
    for at, recipient, is_open in _handovers(journey.facts):
        holder = _caseload(recipient, is_open)
        if holder == held:
            continue
        if held is not None and since < at:  # not a hand-over within one instant
            stretches.append(Responsibility(held[0], team, since, at))
        held, since, team = holder, at, recipient.org_unit
    if held is not None:
        stretches.append(Responsibility(held[0], team, since, None))
    return stretches
