"""Who is calling, and what they may see (DESIGN.md, Security and privacy).

Callers present a bearer JWT signed with `LOS_TOKEN_KEY` (HS256). Its claims name the
coordinator (`sub`) and the teams (`org_unit`s) they belong to (`teams`, a list). A
coordinator sees and acknowledges the alerts addressed to them or to one of their teams,
acknowledges those of the participants they are responsible for now, and opens the
journeys of the participants they are responsible for (or that wait in one of their
teams' queues with no coordinator). A stream of alerts ends when its token expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
AUDIENCE = "los"


class Refused(Exception):
    """A call that is not allowed, with the reason the caller gets."""


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
    claims = {
        "sub": coordinator,
        "teams": sorted(teams),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def caller_from(authorization: str | None, key: str) -> Caller:
    """The caller named by an `authorization: Bearer …` header, or `Refused` saying why."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:  # the scheme is case-insensitive (RFC 6750)
        raise Refused("no bearer token: send 'authorization: Bearer <token>' (los token)")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise Refused("the token has expired") from None
    except jwt.InvalidTokenError as invalid:
        raise Refused(f"the token is not valid: {invalid}") from None
    teams = claims.get("teams", [])
    if not (isinstance(teams, list) and all(isinstance(team, str) for team in teams)):
        raise Refused("the token is not valid: its teams must be a list of team names")
    return Caller(
        coordinator=str(claims["sub"]),
        teams=frozenset(teams),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
