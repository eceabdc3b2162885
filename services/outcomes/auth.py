"""Who is calling, and what they may see (DESIGN.md, Security and privacy).

Callers present a bearer JWT signed with `LOS_TOKEN_KEY` (HS256, for the audience `los`:
`services/kernel/tokens.py`). Its claims name the coordinator (`sub`) and the teams
(`org_unit`s) they belong to (`teams`, a list). A coordinator sees and acknowledges the
alerts addressed to them or to one of their teams, acknowledges those of the participants
they are responsible for now, and opens the journeys of the participants they are
responsible for (or that wait in one of their teams' queues with no coordinator). A
stream of alerts ends when its token expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.kernel.tokens import Refused, claims_from, expiry, names, sign

AUDIENCE = "los"

__all__ = ["Caller", "Refused", "caller_from", "mint"]


@dataclass(frozen=True)
class Caller:
    coordinator: str
    teams: frozenset[str]
    expires_at: datetime

    def may_see(self, coordinator: str | None, org_unit: str | None) -> bool:
        """Whether an alert for this recipient (CONTRACT §4) is the caller's to see."""
        if coordinator:
            return coordinator == self.coordinator
        return org_unit is not None and org_unit in self.teams

    def check_recipient(self, coordinator: str | None, org_unit: str | None) -> None:
        if coordinator and coordinator != self.coordinator:
            raise Refused(f"{self.coordinator} may not see the alerts of {coordinator}")
        if org_unit and org_unit not in self.teams:
            raise Refused(f"{self.coordinator} is not in team {org_unit}")


def mint(
    key: str,
    coordinator: str,
    teams: list[str],
    *,
    now: datetime,
    lifetime: timedelta = timedelta(hours=8),
) -> str:
    """A token for a coordinator, for the Alerts API."""
    return sign(key, AUDIENCE, coordinator, now, lifetime, teams=sorted(teams))


def caller_from(authorization: str | None, key: str, max_lifetime: timedelta) -> Caller:
    """The caller named by an `authorization: Bearer …` header, or `Refused` saying why."""
    claims = claims_from(authorization, key, AUDIENCE, max_lifetime)
    return Caller(
        coordinator=str(claims["sub"]),
        teams=names(claims, "teams", "team names"),
        expires_at=expiry(claims),
    )
