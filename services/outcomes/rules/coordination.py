"""NO_COORDINATOR: a person who needs a coordinator has had none for 7 days (CONTRACT §4)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from services.kernel.settings import RuleSettings
from services.outcomes.domain import (
    COORDINATOR_ASSIGNED,
    COORDINATOR_UNASSIGNED,
    JOURNEY_CLOSED,
    REFERRED,
    TRIAGED,
    Coordination,
)
from services.outcomes.journey import KnownJourney
from services.outcomes.rules.walk import Condition, Rule, iso, journey_subject


class CoordinatorNeed(NamedTuple):
    """A stretch in which the person needs a coordinator and has none.

    It begins at `since` (T): a triage with `needs_coordinator` while none is assigned, or
    the unassignment of the current coordinator while the latest triage says
    `needs_coordinator`. It lasts until `met_at`, the first assignment at or after T (None
    while none is known), or until the journey closes. A triage inside it begins nothing
    new, whatever it says: the need is already there and unmet.
    """

    since: datetime
    met_at: datetime | None


def coordinator_needs(coordination: Iterable[Coordination]) -> list[CoordinatorNeed]:
    """The stretches of unmet need, walking the coordination in business time. A closing
    ends the journey, and with it its coordinator, what its latest triage said and any
    need still unmet; an unassignment of one already replaced changes nothing."""
    needs: list[CoordinatorNeed] = []
    coordinator: str | None = None
    needed = False  # what the latest triage of the journey says
    since: datetime | None = None
    for mark in coordination:
        if mark.type == COORDINATOR_ASSIGNED:
            coordinator = mark.coordinator_id
            if since is not None:
                needs.append(CoordinatorNeed(since, mark.occurred_at))
                since = None
            continue
        if mark.type == JOURNEY_CLOSED:
            if since is not None:
                needs.append(CoordinatorNeed(since, None))
                since = None
            coordinator = None
            needed = False
            continue
        if mark.type == TRIAGED:
            needed = mark.needs_coordinator
        elif mark.coordinator_id == coordinator:
            coordinator = None
        else:
            continue
        if needed and coordinator is None and since is None:
            since = mark.occurred_at
    if since is not None:
        needs.append(CoordinatorNeed(since, None))
    return needs


def _no_coordinator_conditions(known: KnownJourney, rules: RuleSettings) -> list[Condition]:
    """NO_COORDINATOR: at T the person needs a coordinator and has none, and no
    `coordinator.assigned` has occurred_at in [T, T+7d]. The first assignment after the
    window resolves the alert (`coordinator_assigned`), at the later of when it happened
    and when it became known. The subject is the journey T belongs to; the key adds T."""
    conditions: list[Condition] = []
    for need in coordinator_needs(known.coordination()):
        due = need.since + rules.no_coordinator
        if need.met_at is not None and need.met_at <= due:
            continue
        span = known.journey_at(need.since)
        subject = journey_subject(span) if span else "journey"
        conditions.append(
            Condition(
                key=f"NO_COORDINATOR:{subject}:{iso(need.since)}",
                subject=subject,
                due=due,
                settled_at=need.met_at,
                settled_by="coordinator_assigned",
                closed_at=span.closed_at if span else None,
            )
        )
    return conditions


NO_COORDINATOR = Rule(
    "NO_COORDINATOR",
    frozenset({TRIAGED, REFERRED, COORDINATOR_ASSIGNED, COORDINATOR_UNASSIGNED, JOURNEY_CLOSED}),
    _no_coordinator_conditions,
    requires=frozenset({TRIAGED}),
)
