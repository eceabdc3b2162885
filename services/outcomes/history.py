"""`los replay --store`: the platform's own history, outcomes' journey store, through the
rules as `los replay` takes a file (CONTRACT §5): what was known at `--until`, judged by
the rules with this run's settings, with no bus, service or wall clock.

So an evaluator replays the history the platform holds, at any instant and with other
thresholds (`LOS_RULES__*`), without the source systems' files and their national ids.
The journey store keeps what the source services accepted, each fact of a pseudonymous
person with both its times; its `person`s are the platform's pseudonyms, so the lines
are those `los replay` writes for the same events' file under the platform's
`LOS_PSEUDONYM_KEY` (`tests/integration/test_differential.py`). Nothing is skipped: what
was invalid, refused or still held never became a fact. Facts recorded after `--until`
are counted and left out, as a replay of the file leaves those events out.

Each person's facts are read together, in the order the store keeps them (its primary
key), through a cursor (asyncpg, as DESIGN.md has replay scans read), so a process holds
one journey at a time besides the alerts; the people are shared out over processes by a
hash of their journey's id.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from itertools import groupby, repeat
from multiprocessing import get_context
from operator import itemgetter
from typing import Any

import asyncpg
import orjson

from services.kernel.settings import RuleSettings
from services.outcomes.application import FACT_TOPIC, to_fact
from services.outcomes.journey import Journey
from services.outcomes.replay import Replay, alert_row, collector_paused
from services.outcomes.rules import evaluate
from services.outcomes.shares import worker_start

FACTS = (
    "SELECT originator_id, state FROM outcomes.journeystore_events"
    " WHERE topic = $1 AND abs(hashtext(originator_id::text)) % $2 = $3"
    " ORDER BY originator_id, originator_version"
)
FETCH = 10_000  # rows a round trip of the cursor
# Planned for reading every row, not the first few (a cursor's default): a sort in
# memory rather than a walk of the primary key's index; 0.5 s less for 200,000 facts.
READING_ALL = {"cursor_tuple_fraction": "1", "work_mem": "256MB"}


def replay_store(
    database_url: str, until: datetime, rules: RuleSettings, workers: int = 1
) -> Replay:
    """The journey store at `database_url` replayed up to `until`, in `workers` processes;
    the result does not depend on how many."""
    if workers <= 1:
        return replay_share(database_url, until, rules)
    pool = ProcessPoolExecutor(
        workers, get_context("fork"), initializer=worker_start, initargs=(os.getpid(),)
    )
    with pool:
        shares = pool.map(
            replay_share,
            repeat(database_url),
            repeat(until),
            repeat(rules),
            range(workers),
            repeat(workers),
        )
        return Replay.merge(shares)


def replay_share(
    database_url: str, until: datetime, rules: RuleSettings, part: int = 0, parts: int = 1
) -> Replay:
    """Share `part` of `parts` of the people in the journey store, replayed up to `until`."""
    with collector_paused():
        return asyncio.run(_replay_share(database_url, until, rules, part, parts))


async def _replay_share(
    database_url: str, until: datetime, rules: RuleSettings, part: int, parts: int
) -> Replay:
    result = Replay()
    async for stored in journeys(database_url, part, parts):
        judge(stored, until, rules, result)
    return result


def judge(
    stored: list[dict[str, Any]], until: datetime, rules: RuleSettings, result: Replay
) -> None:
    """One person's stored facts, judged at `until` on those recorded by then, into
    `result`."""
    result.events += len(stored)
    facts = [to_fact(fact, seq) for seq, fact in enumerate(stored)]
    known = [fact for fact in facts if fact.recorded_at <= until]
    result.after_until += len(facts) - len(known)
    if known:
        journey = Journey(stored[0]["participant"], known)
        alerts, _ = evaluate(journey, until, rules)
        result.rows.extend(alert_row(journey, alert) for alert in alerts)


async def journeys(
    database_url: str, part: int = 0, parts: int = 1
) -> AsyncIterator[list[dict[str, Any]]]:
    """Each stored journey of share `part` of `parts`: its facts as stored (JSON decoded),
    in the order they were recorded in the store."""
    conn = await asyncpg.connect(database_url, server_settings=READING_ALL)
    try:
        async with conn.transaction():  # a cursor lives in one
            cursor = await conn.cursor(FACTS, FACT_TOPIC, parts, part)
            journey: list[dict[str, Any]] = []
            whose = None
            while rows := await cursor.fetch(FETCH):
                for originator, facts in groupby(rows, key=itemgetter(0)):
                    if originator != whose and journey:
                        yield journey
                        journey = []
                    whose = originator
                    journey.extend(orjson.loads(state)["fact"] for _, state in facts)
            if journey:
                yield journey
    finally:
        await conn.close()
