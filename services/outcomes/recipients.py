"""Who an alert goes to (CONTRACT §4): the coordinator responsible when it is raised; with
none, the team (`org_unit`) of the latest assignment, triage or referral. A closing ends
the coordinator's responsibility, as it ends the journey (rules/coordination.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.outcomes.journey import COORDINATION_RANKS, Journey

_TEAM_EVENTS = frozenset({"participant.referred", "participant.triaged", "coordinator.assigned"})


# The team queue of the alerts CONTRACT §4 addresses to no one: raised for a person of
# whom no coordinator, triage or referral was known (measures or placements alone). Whose
# token names this team watches, lists and acknowledges them, and opens those journeys.
UNADDRESSED = "unaddressed"


@dataclass(frozen=True, slots=True)
class Recipient:
    coordinator: str | None
    org_unit: str | None


def recipient_at(journey: Journey, at: datetime) -> Recipient:
    """Judged on what had happened, and was known, at `at`."""
    coordinator: str | None = None
    org_unit: str | None = None
    # Facts of one instant in the order the rules take them; a referral with the triages.
    happened = sorted(
        (f for f in journey.known_at(at) if f.occurred_at <= at),
        key=lambda f: (f.occurred_at, COORDINATION_RANKS.get(f.type, 1), f.event_id),
    )
    for fact in happened:
        if fact.type in _TEAM_EVENTS:
            org_unit = fact.data.get("org_unit") or org_unit
        if fact.type == "coordinator.assigned":
            coordinator = fact.data["coordinator_id"]
        elif fact.type == "journey.closed" or (
            fact.type == "coordinator.unassigned" and fact.data["coordinator_id"] == coordinator
        ):
            coordinator = None
    return Recipient(coordinator, org_unit)


def addressed_at(journey: Journey, at: datetime) -> Recipient:
    """Who the live service sends an alert raised at `at` to: `recipient_at`, or with no
    one known the `unaddressed` queue (`los replay` prints the contract's no one)."""
    recipient = recipient_at(journey, at)
    if recipient.coordinator is None and recipient.org_unit is None:
        return Recipient(None, UNADDRESSED)
    return recipient
