"""Bearer tokens: who calls a Los gRPC API (DESIGN.md, Security and privacy).

Every token is a JWT (HS256), sent as `authorization: Bearer <token>`, valid from its `iat`
to its `exp` for at most `LOS_TOKEN_MAX_LIFETIME`. Its audience says which API it is for,
and each API checks its tokens with a key of its own:
coordinators' tokens (`services/outcomes/auth.py`, `LOS_TOKEN_KEY`) are for the Alerts
API, source systems' tokens (`SourceClient`, here, `LOS_SOURCE_TOKEN_KEY`) for the
`Sources` API of intake, journey and employer.

A source system's token names the client (`sub`), the `source.system`s it covers
(`systems`) and, if it is bound to organisations, the `source.org`s it covers (`orgs`;
none means any organisation of those systems). An event's `source` must be covered, so a
municipality's system cannot send events labelled as NAV's, nor as another
municipality's. What it covers is the label: an end names its measure by the measure's
id for that source system, not by organisation (docs/contract-readings.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import jwt

from services.kernel.settings import iso_duration
from services.kernel.vocabulary import SourceSystem

ALGORITHM = "HS256"
# How far the clock of a token's issuer may be ahead of (`iat`) or behind (`exp`) ours.
CLOCK_SKEW = timedelta(seconds=30)
SOURCES_AUDIENCE = "los-sources"
T = TypeVar("T")


class Refused(Exception):
    """A call that is not allowed, with the reason the caller gets."""


def sign(
    key: str, audience: str, subject: str, now: datetime, lifetime: timedelta, **claims: Any
) -> str:
    """A token for `audience` naming `subject`, valid from `now` for `lifetime`."""
    everything = {"sub": subject, "aud": audience, "iat": now, "exp": now + lifetime, **claims}
    return jwt.encode(everything, key, algorithm=ALGORITHM)


def claims_from(
    authorization: str | None, key: str, audience: str, max_lifetime: timedelta
) -> dict[str, Any]:
    """The claims of the token in an `authorization: Bearer …` header, once its signature,
    audience, issue time, expiry and lifetime (at most `max_lifetime`) are checked; or
    `Refused` saying why not."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:  # the scheme is case-insensitive (RFC 6750)
        raise Refused("no bearer token: send 'authorization: Bearer <token>' (los token)")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": ["sub", "iat", "exp"]},
            leeway=CLOCK_SKEW,
        )
    except jwt.ExpiredSignatureError:
        raise Refused("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise Refused("the token is not valid: it was issued in the future (iat)") from None
    except jwt.InvalidTokenError as invalid:
        raise Refused(f"the token is not valid: {invalid}") from None
    if not claims["sub"]:
        raise Refused("the token is not valid: its sub names no one")
    if claims["exp"] - claims["iat"] > max_lifetime.total_seconds():
        raise Refused(
            "the token is not valid: it is valid for longer than the"
            f" {iso_duration(max_lifetime)} LOS_TOKEN_MAX_LIFETIME allows (exp - iat)"
        )
    return claims


async def authenticated(
    context: grpc.aio.ServicerContext[Any, Any], read: Callable[[str | None], T]
) -> T:
    """Who calls: what `read` makes of the call's `authorization` header. A header it
    refuses ends the call (UNAUTHENTICATED, with the reason)."""
    metadata = dict(context.invocation_metadata() or ())
    try:
        return read(metadata.get("authorization"))
    except Refused as refused:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(refused))
    raise AssertionError("abort raises")


def names(claims: dict[str, Any], claim: str, what: str) -> frozenset[str]:
    """A claim that must be a list of names (absent: none); `Refused` if it is not."""
    listed = claims.get(claim, [])
    if not (isinstance(listed, list) and all(isinstance(name, str) for name in listed)):
        raise Refused(f"the token is not valid: its {claim} must be a list of {what}")
    return frozenset(listed)


@dataclass(frozen=True)
class SourceClient:
    """A source system's client, as its token names it."""

    name: str
    systems: frozenset[str]
    orgs: frozenset[str]  # empty: any organisation of its systems

    def covers_system(self, system: str) -> bool:
        return system in self.systems

    def covers_org(self, org: str) -> bool:
        return not self.orgs or org in self.orgs


def mint_source(
    key: str,
    client: str,
    systems: Iterable[str],
    orgs: Iterable[str] = (),
    *,
    now: datetime,
    lifetime: timedelta = timedelta(hours=8),
) -> str:
    """A token for a source system's client, for the `Sources` API."""
    return sign(
        key,
        SOURCES_AUDIENCE,
        client,
        now,
        lifetime,
        systems=sorted(set(systems)),
        orgs=sorted(set(orgs)),
    )


def source_client_from(
    authorization: str | None, key: str, max_lifetime: timedelta
) -> SourceClient:
    """The source client named by an `authorization` header, or `Refused` saying why."""
    claims = claims_from(authorization, key, SOURCES_AUDIENCE, max_lifetime)
    systems = names(claims, "systems", "source systems")
    if not systems or not systems <= set(SourceSystem):
        raise Refused(
            "the token is not valid: its systems must name one or more of "
            + ", ".join(SourceSystem)
        )
    return SourceClient(str(claims["sub"]), systems, names(claims, "orgs", "organisation numbers"))


def bearer(token: str) -> tuple[tuple[str, str]]:
    """The gRPC metadata that carries `token`."""
    return (("authorization", f"Bearer {token}"),)


def expiry(claims: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"], UTC)
