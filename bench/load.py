"""The live background load of the latency benchmark (`bench/latency.py`).

Synthetic people, each sending what a source system would send live, in a valid order
(referred, a measure started, ended and the next one started, placements started and
ended), with no `recorded_at`, so the platform stamps its receive time. `background`
makes `Load.rate` events a second, split by the service that owns each type; one
`sender` per service sends its batches strictly in order, each once the previous is stored.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.kernel.events import owner
from services.kernel.ids import synthetic_national_id, synthetic_orgnr
from services.kernel.settings import get_settings
from services.kernel.tokens import bearer, mint_source
from services.kernel.vocabulary import SourceSystem
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc

BACKGROUND_TEAM = "bench-background"
TICK = 0.1


def now() -> datetime:
    return datetime.now(UTC)


def authorization() -> tuple[tuple[str, str]]:
    """A source token for every source system, signed now with the services' key."""
    key = get_settings().source_token_key.get_secret_value()  # as the services' (inherited)
    return bearer(mint_source(key, "bench", SourceSystem, now=now()))


@dataclass
class Someone:
    national_id: str
    org: str
    measure: str | None = None
    placement: str | None = None

    def event(self, event_type: str, data: dict[str, Any], occurred_at: datetime) -> str:
        return json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "type": event_type,
                "occurred_at": occurred_at.isoformat(),
                "source": {"system": "nav", "org": self.org},
                "person": self.national_id,
                "data": data,
            }
        )


class People:
    """Synthetic people with distinct national ids."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._taken: set[str] = set()
        self._orgs = [synthetic_orgnr(self._rng) for _ in range(50)]

    def new(self) -> Someone:
        while True:
            born = date(1960, 1, 1) + timedelta(days=self._rng.randrange(365 * 45))
            national_id = synthetic_national_id(self._rng, born)
            if national_id not in self._taken:
                self._taken.add(national_id)
                return Someone(national_id, self._rng.choice(self._orgs))


class Background:
    """Live events for all three source services, in a valid order per person."""

    def __init__(self, people: People, seed: int) -> None:
        self._people = people
        self._rng = random.Random(seed)
        self._active: list[Someone] = []
        self._next = 0

    def _id(self, kind: str) -> str:
        self._next += 1
        return f"{kind}-{self._next}"

    def events(self, count: int) -> list[str]:
        out: list[str] = []
        data: dict[str, Any]
        while len(out) < count:
            roll = self._rng.random()
            if roll < 0.1 or len(self._active) < 20:
                person = self._people.new()
                data = {"channel": "nav", "org_unit": BACKGROUND_TEAM}
                out.append(person.event("participant.referred", data, now()))
                self._active.append(person)
                continue
            person = self._rng.choice(self._active)
            if roll < 0.8 or person.measure is None:
                if person.measure is not None:
                    ended = {"measure_id": person.measure, "status": "FULLFORT", "reason": "FERDIG"}
                    out.append(person.event("measure.ended", ended, now()))
                person.measure = self._id("m")
                started = {
                    "measure_id": person.measure,
                    "measure_code": "OPPFOLGING",
                    "provider": person.org,
                }
                out.append(person.event("measure.started", started, now()))
            elif person.placement is None:
                person.placement = self._id("p")
                data = {
                    "placement_id": person.placement,
                    "employer": person.org,
                    "kind": "TEMPORARY",
                    "hours_pct": 50,
                }
                out.append(person.event("placement.started", data, now()))
            else:
                data = {"placement_id": person.placement, "reason": "CONTRACT_ENDED"}
                out.append(person.event("placement.ended", data, now()))
                person.placement = None
        return out


@dataclass
class Load:
    rate: int = 0  # events/s offered now
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    behind: float = 0.0  # the longest a send queue was behind, in seconds
    queues: dict[str, asyncio.Queue[tuple[float, list[str]]]] = field(default_factory=dict)


async def sender(
    stub: sources_pb2_grpc.SourcesAsyncStub,
    queue: asyncio.Queue[tuple[float, list[str]]],
    load: Load,
) -> None:
    """Sends one service's batches strictly in order (an end after its start), each once
    the previous one is stored, as a source system's client would."""
    while True:
        made, events = await queue.get()
        load.behind = max(load.behind, time.monotonic() - made)
        request = sources_pb2.SubmitEventsRequest(events=events)
        reply = await stub.SubmitEvents(request, timeout=60, metadata=authorization())
        load.accepted += reply.accepted
        load.rejected += len(reply.rejected)


async def background(source: Background, load: Load) -> None:
    """Offers `load.rate` events a second from `source`, a tick's worth at a time."""
    next_tick = time.monotonic()
    while True:
        made = time.monotonic()
        parts: dict[str, list[str]] = {}
        for line in source.events(max(1, round(load.rate * TICK))):
            parts.setdefault(owner(json.loads(line)["type"]), []).append(line)
        for service, events in parts.items():
            load.queues[service].put_nowait((made, events))
            load.sent += len(events)
        next_tick += TICK
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
