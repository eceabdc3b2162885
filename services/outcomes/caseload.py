"""Caseloads: the people each coordinator follows now, and those waiting in a team's queue
with no coordinator (DESIGN.md: coordinators see their own alerts and caseload).

Only intake's facts (referral, triage, assignment, closing) change whose caseload
someone is in. As the rule engine takes in a new one, it writes the person's stretches
of responsibility (`recipients.py`) from their journey as stored, in the transaction
that moves its position past the fact; a stretch that has ended is not kept. Which
stretch holds is read at the moment asked, so an assignment dated ahead moves the person
on the day it takes effect.

A journey store from before caseloads were kept has its people's caseloads filled once,
when outcomes starts (`fill`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import asyncpg

from services.kernel.store import Worker
from services.outcomes.alerts import Connection
from services.outcomes.application import FACT_TOPIC, JourneyStore
from services.outcomes.recipients import Responsibility, responsibilities

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Member:
    """A person in a caseload: since when, and the team of their assignment or queue."""

    participant: str
    org_unit: str | None
    since: datetime


async def replace(
    conn: Connection, held: Mapping[str, Sequence[Responsibility]], now: datetime
) -> None:
    """Each of these people's stretches not over by `now`, in place of what was stored."""
    rows = [
        (participant, r)
        for participant, stretches in held.items()
        for r in stretches
        if r.until is None or r.until > now
    ]
    await conn.execute(
        "DELETE FROM outcomes.caseload WHERE participant = ANY($1::text[])", list(held)
    )
    await conn.execute(
        "INSERT INTO outcomes.caseload SELECT * FROM unnest($1::text[], $2::text[],"
        " $3::text[], $4::timestamptz[], $5::timestamptz[])",
        [participant for participant, _ in rows],
        [r.coordinator for _, r in rows],
        [r.org_unit for _, r in rows],
        [r.since for _, r in rows],
        [r.until for _, r in rows],
    )


async def members(
    conn: Connection, coordinator: str | None, org_unit: str | None, at: datetime, limit: int
) -> tuple[int, list[Member]]:
    """A coordinator's caseload at `at`, or a team's queue with no coordinator: how many
    in all, and at most `limit` of them, the longest held first."""
    rows = await conn.fetch(
        """SELECT participant, org_unit, since, count(*) OVER () AS total
           FROM outcomes.caseload
           WHERE ($1::text IS NOT NULL AND coordinator = $1
                  OR $1::text IS NULL AND coordinator IS NULL AND org_unit = $2)
             AND since <= $3 AND (until IS NULL OR until > $3)
           ORDER BY since, participant LIMIT $4""",
        coordinator,
        org_unit,
        at,
        limit,
    )
    total = rows[0]["total"] if rows else 0
    return total, [Member(r["participant"], r["org_unit"], r["since"]) for r in rows]


async def loads(conn: Connection, org_unit: str, at: datetime) -> dict[str, int]:
    """The coordinators following someone assigned in this team at `at`, and how many
    people each follows in all (in any team), by coordinator id."""
    rows = await conn.fetch(
        """SELECT coordinator, count(*) FROM outcomes.caseload
           WHERE since <= $2 AND (until IS NULL OR until > $2) AND coordinator IN (
             SELECT coordinator FROM outcomes.caseload
             WHERE org_unit = $1 AND coordinator IS NOT NULL
               AND since <= $2 AND (until IS NULL OR until > $2))
           GROUP BY coordinator ORDER BY coordinator""",
        org_unit,
        at,
    )
    return {row["coordinator"]: row["count"] for row in rows}


async def fill(pool: asyncpg.Pool, store: JourneyStore, worker: Worker, batch: int) -> int:
    """Write the caseload of everyone of whom intake sent a fact, once for a journey store
    from before caseloads were kept (a new store is marked filled at once); call it before
    the rule engine takes in facts, which keeps them from then on. How many people."""
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT count(*) FROM outcomes.caseload_filled"):
            return 0
        rows = await conn.fetch(
            """SELECT DISTINCT fact ->> 'participant' FROM (
                 SELECT convert_from(state, 'UTF8')::jsonb -> 'fact' AS fact
                 FROM outcomes.journeystore_events WHERE topic = $1) AS facts
               WHERE fact ->> 'service' = 'intake'""",
            FACT_TOPIC,
        )
    people = [row[0] for row in rows]
    if people:
        log.info("filling the caseloads of %d people from the journey store", len(people))
    for start in range(0, len(people), batch):
        some = people[start : start + batch]
        journeys = await worker.run(partial(store.journeys, keep=False), some)
        held = {p: responsibilities(journey) for p, journey in journeys.items()}
        async with pool.acquire() as conn, conn.transaction():
            await replace(conn, held, datetime.now(UTC))
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO outcomes.caseload_filled VALUES (1) ON CONFLICT DO NOTHING")
    return len(people)
