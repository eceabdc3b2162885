"""Helpers for tests on real servers: an isolated database, stream and subjects per test,
and edge events made by hand (synthetic national ids only)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import nats
import psycopg
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from services.cli.platform import Platform, running_services
from services.kernel.bus import partition_of
from services.kernel.embedded import Servers
from services.kernel.ids import synthetic_national_id, synthetic_orgnr
from services.kernel.settings import Settings
from services.kernel.tokens import mint_source
from services.kernel.vocabulary import SourceSystem
from services.outcomes.application import Delivery
from services.outcomes.auth import mint
from services.outcomes.owner import Owner

PARTITIONS = Settings().partitions
# One outcomes instance, owning every partition.
EVERYONE = Owner.of(Settings())

# The databases `fresh_database` made and the streams `fresh_bus` named, for
# `drop_what_the_run_made` at the end of the run.
_made: list[str] = []
_named_streams: list[str] = []


def fresh_database(database_url: str) -> str:
    """A new, empty database on the same server; returns its URL."""
    name = f"los_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _made.append(name)
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def fresh_bus(nats_url: str) -> dict[str, str]:
    """Environment naming a stream and subjects of their own on the NATS server."""
    tag = uuid.uuid4().hex[:8]
    _named_streams.append(f"TEST_{tag}")
    return {
        "NATS_URL": nats_url,
        "LOS_STREAM": f"TEST_{tag}",
        "LOS_SUBJECT_PREFIX": f"test{tag}",
        "LOS_DEAD_LETTER_SUBJECT": f"test{tag}.dead",
    }


def drop_what_the_run_made(database_url: str | None, nats_url: str | None) -> None:
    """Drop the databases and streams the run made on servers that outlive it
    (`DATABASE_URL`, `NATS_URL`); embedded servers go with their data folder."""
    if database_url is not None and _made:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while _made:
                conn.execute(f'DROP DATABASE IF EXISTS "{_made.pop()}" WITH (FORCE)')
    if nats_url is not None and _named_streams:
        asyncio.run(delete_streams(nats_url, _named_streams))
        _named_streams.clear()


async def delete_streams(nats_url: str, names: Iterable[str]) -> None:
    """Delete these streams, those that exist."""
    client = await nats.connect(nats_url)
    try:
        for name in names:
            with suppress(NotFoundError):
                await client.jetstream().delete_stream(name)
    finally:
        await client.close()


def isolated_env(servers: Servers, **settings: str) -> dict[str, str]:
    """Environment for services that share the servers with nothing else."""
    return {
        **fresh_bus(servers.nats_url),
        "DATABASE_URL": fresh_database(servers.database_url),
        **{f"LOS_{key.upper()}": value for key, value in settings.items()},
    }


async def events_on_the_stream(env: dict[str, str]) -> list[Msg]:
    """Every event message on the stream of an isolated environment, in stream order."""
    settings = bus_settings(env)
    client = await nats.connect(env["NATS_URL"])
    found: list[Msg] = []
    try:
        reader = await client.jetstream().pull_subscribe(
            f"{settings.subject_prefix}.events.>",
            stream=settings.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE),
        )
        while True:
            try:
                found += await reader.fetch(500, timeout=2)
            except nats.errors.TimeoutError:
                return found  # read to the end
    finally:
        await client.close()


def bus_settings(env: dict[str, str]) -> Settings:
    """The settings that name the bus of an isolated environment (its stream, subjects)."""
    return Settings(subject_prefix=env["LOS_SUBJECT_PREFIX"], stream=env["LOS_STREAM"])


@contextmanager
def los(servers: Servers, log_dir: Path, **settings: str) -> Iterator[Platform]:
    """The four services as processes, isolated from other tests."""
    with running_services(servers, log_dir, isolated_env(servers, **settings)) as running:
        yield running


def token_for(coordinator: str, teams: tuple[str, ...] = ()) -> str:
    """A bearer token for the Alerts API, signed with the development key the tests use."""
    key = Settings().token_key.get_secret_value()
    return mint(key, coordinator, list(teams), now=datetime.now(UTC))


def source_token() -> str:
    """A bearer token for the Sources API, for every source system."""
    key = Settings().source_token_key.get_secret_value()
    return mint_source(key, "tests", SourceSystem, now=datetime.now(UTC))


@dataclass
class Person:
    """A synthetic participant and a source organisation to send events from."""

    national_id: str
    org: str

    @classmethod
    def make(cls, seed: int) -> Self:
        rng = random.Random(seed)
        return cls(synthetic_national_id(rng, date(1990, 5, 17)), synthetic_orgnr(rng))

    def event(
        self,
        event_type: str,
        data: dict[str, Any],
        occurred_at: datetime,
        recorded_at: datetime | None = None,
        system: str = "nav",
        org: str | None = None,
    ) -> str:
        """The edge event as a source system sends it: one JSON line."""
        return json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "type": event_type,
                "occurred_at": occurred_at.isoformat(),
                "recorded_at": (recorded_at or occurred_at).isoformat(),
                "source": {"system": system, "org": org or self.org},
                "person": self.national_id,
                "data": data,
            }
        )

    def measure_started(self, measure_id: str, at: datetime, **kw: Any) -> str:
        data = {"measure_id": measure_id, "measure_code": "AVKLARING", "provider": self.org}
        return self.event("measure.started", data, at, **kw)

    def measure_ended(self, measure_id: str, at: datetime, **kw: Any) -> str:
        data = {"measure_id": measure_id, "status": "FULLFORT", "reason": "FERDIG"}
        return self.event("measure.ended", data, at, **kw)


def facts_recorded(database_url: str) -> int:
    """How many facts outcomes' journey store holds."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outcomes.journeystore_events WHERE topic LIKE '%.FactRecorded'"
        ).fetchone()
    return int(row[0]) if row else 0


def outcomes_settled(database_url: str, facts: int, since: datetime) -> bool:
    """Outcomes holds `facts` facts, has judged them all, and its clock has reached `since`
    with nothing due before it."""
    if facts_recorded(database_url) != facts:
        return False
    with psycopg.connect(database_url) as conn:
        state = conn.execute(
            "SELECT position, clock FROM outcomes.rule_state WHERE id = 'outcomes'"
        ).fetchone()
        last = conn.execute("SELECT max(notification_id) FROM outcomes.journeystore_events")
        due = conn.execute(
            "SELECT count(*) FROM outcomes.deadlines WHERE due_at <= %s",
            (state[1] if state else None,),
        ).fetchone()
        return (
            state is not None
            and state[1] is not None
            and state[0] == last.fetchone()[0]  # type: ignore[index]
            and state[1] >= since
            and due is not None
            and due[0] == 0
        )


def alert_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT alert_id, participant, rule, subject, coordinator, org_unit, raised_at,"
            " status, resolved_at, resolution FROM outcomes.alerts ORDER BY alert_id"
        ).fetchall()


def deliveries(people: int, facts_each: int, note_bytes: int) -> list[Delivery]:
    """`facts_each` facts about each of `people` new people, in stream order."""
    found = []
    for n in range(people * facts_each):
        at = (datetime(2025, 3, 3, 9, 0, tzinfo=UTC) + timedelta(minutes=n)).isoformat()
        participant = f"person-{n % people}"
        fact = {
            "event_id": str(uuid.uuid4()),
            "participant": participant,
            "service": "journey",
            "type": "participant.dropped_out",
            "occurred_at": at,
            "recorded_at": at,
            "source": {"system": "nav", "org": "889640782"},
            "data": {"reason": "x" * note_bytes},
        }
        found.append(Delivery(n + 1, partition_of(participant, PARTITIONS), fact))
    return found
