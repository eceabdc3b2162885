"""`los replay --store`: the platform's own history, outcomes' journey store, through the
rules as `los replay` takes a file (CONTRACT §5): what was known at `--until`, judged by
the rules with this run's thresholds, with no bus, service or wall clock.

So an evaluator replays the history the platform holds, at any instant and with other
thresholds (`LOS_RULES__*`; not the lifecycle hold, which the live services applied when
the events came), without the source systems' files and their national ids.

- **A study's pseudonyms.** The store's people are the platform's pseudonyms, which
  lead to the live alerts, caseloads and intake's vault. So each `person` is pseudonymised
  again, under the study's own key (HMAC-SHA256 of the platform pseudonym), and each
  `alert_id` derived from that: no line names a person or alert as the live stores do,
  nor as `los replay` of a file under the same key (whose ids come from national ids).
  The lines are still pseudonymous personal data: a line's rule, `raised_at`, subject
  and recipient match its alert in the live store.
- **Recorded first.** Reading every journey is a read of identifiable data (DESIGN.md):
  before it reads, a replay writes who ran it, as of when and for which study (a
  fingerprint of its key) to `outcomes.history_reads`, and does not run if it cannot.
- **What was known.** The store keeps what the source services accepted, each fact with
  both its times, in the order it was stored. A replay reads the store as it was when it
  started (the log up to its last notification id then) and leaves out the facts
  recorded after `--until`, counting them. It has nothing to skip: what was invalid,
  refused or a duplicate never became a fact. An end still held at `--until` whose start
  came later is a fact here, dated by its own `recorded_at`, where a replay of the file
  holds it; no rule reads an end whose start is not known, so neither gives an alert for
  it. With each person's facts sent to each service in `recorded_at` order (as `los
  import` sends a sorted file), the lines are those of a replay of that file, persons
  and alert ids aside (`tests/unit/test_history.py`,
  `tests/integration/test_differential.py`); facts that arrive later but were recorded
  before `--until` change a replay run later.

The store is read a range of the journeys' ids at a time (uuid5, so each range holds about
as many people), a range of about `RANGE_ROWS` stored events in one query, sorted in
memory; no query reads for long, so none holds back the live service or vacuum, and a
process holds one range's rows besides the alerts. The processes take the ranges in turn.
(Read instead a page at a time along the primary key, 10,000 rows a query, the bench's
200,000 facts took twice as long to read: `bench/findings.md` item 36.)
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import itertools
import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from itertools import groupby, islice
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.kernel.ids import pseudonym
from services.kernel.keys import StoredKeys, unseal
from services.kernel.settings import RuleSettings
from services.outcomes.application import FACT_TOPIC, opened_fact, to_fact
from services.outcomes.journey import Journey
from services.outcomes.replay import Replay, alert_row, collector_paused
from services.outcomes.rules import Alert, evaluate
from services.outcomes.shares import in_order

RANGE_ROWS = 250_000  # stored events a query reads, about
KEYS_READ = 1_000  # people whose keys a query reads
FACTS = (
    "SELECT originator_id, state FROM outcomes.journeystore_events"
    " WHERE originator_id BETWEEN $1 AND $2 AND topic = $3 AND notification_id <= $4"
    " ORDER BY originator_id, originator_version"
)
# A range's rows sorted in memory (~140 MB of them), not in temporary files.
SORTING = {"work_mem": "256MB", "max_parallel_workers_per_gather": "0"}
Ids = tuple[UUID, UUID]  # a range of journeys' ids, both ends in


class NoStore(Exception):
    """The database holds no journey store to replay."""


def replay_store(
    database_url: str, until: datetime, rules: RuleSettings, study_key: str, workers: int = 1
) -> Replay:
    """The journey store at `database_url` replayed up to `until` under `study_key`, in
    `workers` processes; the result does not depend on how many. `NoStore` if there is
    none; the replay is recorded first (an error if it cannot be)."""
    last = begin(database_url, until, study_key, "replay")
    run = partial(replay_range, database_url, until, rules, study_key, last)
    return Replay.merge(in_order(run, id_ranges(last, workers), workers))


def replay_range(
    database_url: str, until: datetime, rules: RuleSettings, study_key: str, last: int, ids: Ids
) -> Replay:
    """The journeys whose ids are in `ids`, as stored up to notification `last`, replayed
    up to `until` under `study_key`."""
    result = Replay()
    with collector_paused():
        for stored in journeys(database_url, ids, last):
            judge(stored, until, rules, result, lambda p: pseudonym(p, study_key))
    return result


def judge(
    stored: list[dict[str, Any]],
    until: datetime,
    rules: RuleSettings,
    result: Replay,
    as_person: Callable[[str], str],
) -> None:
    """One person's stored facts, judged at `until` on those recorded by then, their
    alerts into `result`, the person named by `as_person` of their platform pseudonym."""
    if (found := judged(stored, until, rules, result, as_person)) is not None:
        journey, alerts = found
        result.rows.extend(alert_row(journey, alert) for alert in alerts)


def judged(
    stored: list[dict[str, Any]],
    until: datetime,
    rules: RuleSettings,
    result: Replay,
    as_person: Callable[[str], str],
) -> tuple[Journey, list[Alert]] | None:
    """As `judge`: the person's journey as known at `until` and the alerts judged on it,
    or None if nothing of theirs was recorded by then; the counts go into `result`."""
    result.events += len(stored)
    facts = [to_fact(fact, seq) for seq, fact in enumerate(stored)]
    known = [fact for fact in facts if fact.recorded_at <= until]
    result.after_until += len(facts) - len(known)
    if not known:
        return None
    journey = Journey(as_person(stored[0]["participant"]), known)
    alerts, _ = evaluate(journey, until, rules)
    return journey, alerts


def journeys(database_url: str, ids: Ids, last: int) -> Iterator[list[dict[str, Any]]]:
    """Each stored journey whose id is in `ids`: its facts as stored up to notification
    `last` (JSON decoded a journey at a time), in the order they were stored, unsealed
    with their person's key (read for `KEYS_READ` people at a time). An erased person's
    is left out, even one stored before facts were sealed."""
    rows = groupby(asyncio.run(_rows(database_url, ids, last)), key=itemgetter(0))
    stored = ([orjson.loads(state)["fact"] for _, state in facts] for _, facts in rows)
    keys = StoredKeys(database_url)
    try:
        while some := list(islice(stored, KEYS_READ)):
            found, erased = keys.read({facts[0]["participant"] for facts in some})
            for facts in some:
                person = facts[0]["participant"]
                if person not in erased and (unsealed := _unsealed(facts, found.get(person))):
                    yield unsealed
    finally:
        keys.close()


def _unsealed(facts: list[dict[str, Any]], key: AESGCM | None) -> list[dict[str, Any]] | None:
    """A journey's stored facts unsealed with its person's key; None if it is gone."""
    if key is None:
        return None if any("sealed" in fact for fact in facts) else facts
    return [opened_fact(fact, lambda person, text: unseal(key, person, text)) for fact in facts]


async def _rows(database_url: str, ids: Ids, last: int) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url, server_settings=SORTING)
    try:
        return await conn.fetch(FACTS, *ids, FACT_TOPIC, last)
    finally:
        await conn.close()


def stored_up_to(database_url: str) -> int:
    """The journey store's last notification id: what is stored now ends there."""

    async def last() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await _last(conn)
        finally:
            await conn.close()

    return asyncio.run(last())


def id_ranges(last: int, workers: int) -> list[Ids]:
    """The journeys' ids in ranges of about `RANGE_ROWS` of the `last` stored events each,
    and at least one for each process."""
    parts = max(workers, -(-last // RANGE_ROWS), 1)
    bounds = [(1 << 128) * k // parts for k in range(parts + 1)]
    return [(UUID(int=low), UUID(int=high - 1)) for low, high in itertools.pairwise(bounds)]


def begin(database_url: str, until: datetime, study_key: str, command: str) -> int:
    """Record who reads the store with which command (`replay`, `export`), as of when,
    for which study; then the store's last notification id, up to which it is read.
    `NoStore` if there is no journey store (or no record of its reads) to read."""
    return asyncio.run(_begin(database_url, until, study_key, command))


async def _begin(database_url: str, until: datetime, study_key: str, command: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        store = await conn.fetchval("SELECT to_regclass('outcomes.journeystore_events')")
        if store is None:
            raise NoStore("the database DATABASE_URL names holds no journey store of outcomes")
        recorded = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = 'outcomes' AND table_name = 'history_reads'"
            " AND column_name = 'command'"
        )
        if not recorded:  # no table, or one from before exports read the store
            raise NoStore(
                "outcomes.history_reads is missing or old: start outcomes once on this"
                " version first"
            )
        await conn.execute(
            "INSERT INTO outcomes.history_reads (at, reader, until, study, command)"
            " VALUES ($1, $2 || ' as ' || current_user, $3, $4, $5)",
            datetime.now(UTC),
            _who(),
            until,
            hashlib.sha256(study_key.encode()).hexdigest()[:16],
            command,
        )
        return await _last(conn)
    finally:
        await conn.close()


def _who() -> str:
    """The user and host running the replay (the database adds its role)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no name
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


async def _last(conn: asyncpg.Connection) -> int:
    last = await conn.fetchval("SELECT max(notification_id) FROM outcomes.journeystore_events")
    return int(last or 0)
