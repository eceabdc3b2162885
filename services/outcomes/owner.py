"""Which partitions of the stream an outcomes instance owns (DESIGN.md: scale-out).

Every domain event's subject carries the partition of its participant (`bus.py`), so
`LOS_OUTCOMES_INSTANCES` instances can share the stream: instance `LOS_OUTCOMES_INSTANCE`
(0, 1, …) owns the partitions whose number leaves it as remainder, reads only their
subjects through a consumer of its own, and takes in, judges and keeps the deadlines of
their people only. Everyone's events are still in one journey store, alerts table and
alert feed, so any instance answers any coordinator.

Only one running instance may own a partition: each holds a PostgreSQL session lock on
every partition it owns for as long as it runs (`claim`), and one that cannot get them
does not start. (Two owners of one partition would both read it, and whichever recorded
a batch second would find it recorded and skip it: nothing lost, but judged twice.)

An owner is named by its partitions: `outcomes` for all of them (one instance, as before
there were more), `outcomes:1,5,9,13` for some. Its name keys its Tracking position in
the journey store and its rule engine's state, so that when the number of instances
changes, a new owner of a partition starts from where that partition's earlier owners
got (`reached`), not from the beginning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from services.kernel.bus import events_subject, partition_of
from services.kernel.settings import Settings

EVERYTHING = "outcomes"
_CLAIMS = 0x4C6F73  # the first key of the partitions' advisory locks
CLAIM_WAIT = 15.0  # seconds to wait for a lock that a stopped instance's session holds
KEEPALIVES = {
    "tcp_keepalives_idle": "20",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "4",
}


class Taken(Exception):
    """A partition is owned by another running outcomes instance."""


@dataclass(frozen=True)
class Owner:
    """The partitions, of `total`, that an instance owns; and its consumer's name."""

    partitions: frozenset[int]
    total: int
    consumer: str = EVERYTHING

    @classmethod
    def of(cls, settings: Settings) -> Owner:
        instance, instances = settings.outcomes_instance, settings.outcomes_instances
        mine = frozenset(range(instance, settings.partitions, instances))
        return cls(
            mine, settings.partitions, EVERYTHING if instances == 1 else f"outcomes-{instance}"
        )

    @property
    def everything(self) -> bool:
        return len(self.partitions) == self.total

    @property
    def name(self) -> str:
        if self.everything:
            return EVERYTHING
        return f"{EVERYTHING}:{','.join(map(str, sorted(self.partitions)))}"

    def owns(self, participant: str) -> bool:
        return self.everything or partition_of(participant, self.total) in self.partitions

    def subjects(self, settings: Settings) -> list[str]:
        """The subjects of its partitions' domain events."""
        if self.everything:
            return [events_subject(settings)]
        return [events_subject(settings, partition=f"p{p:03d}") for p in sorted(self.partitions)]


def partitions_named(name: str, total: int) -> frozenset[int]:
    """The partitions of the owner `name` (`Owner.name`); none for another name."""
    if name == EVERYTHING:
        return frozenset(range(total))
    prefix, _, listed = name.partition(":")
    if prefix != EVERYTHING or not listed:
        return frozenset()
    return frozenset(int(p) for p in listed.split(","))


def reached(owner: Owner, positions: Mapping[str, int]) -> dict[int, int]:
    """How far each of the owner's partitions has got, from the positions of owners by
    name (this one's and earlier ones'): the furthest any owner of it got, or 0."""
    got = dict.fromkeys(owner.partitions, 0)
    for name, position in positions.items():
        for partition in partitions_named(name, owner.total) & owner.partitions:
            got[partition] = max(got[partition], position)
    return got


async def claim(database_url: str, owner: Owner, wait: float = CLAIM_WAIT) -> asyncpg.Connection:
    """A connection holding a lock on each of the owner's partitions until it is closed.
    `Taken` if another instance still holds one after `wait` seconds (the session of an
    instance just killed may take a moment to end)."""
    # PostgreSQL notices within a minute a client gone without closing (a node lost), and
    # lets its locks go: the default would be the system's two hours.
    conn = await asyncpg.connect(database_url, server_settings=KEEPALIVES)
    deadline = time.monotonic() + wait
    try:
        for partition in sorted(owner.partitions):
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", _CLAIMS, partition
            ):
                if time.monotonic() > deadline:
                    raise Taken(
                        f"partition {partition} is owned by another running outcomes instance:"
                        " give each its own LOS_OUTCOMES_INSTANCE, and all the same"
                        " LOS_OUTCOMES_INSTANCES"
                    )
                await asyncio.sleep(0.5)
    except BaseException:
        await conn.close()  # and with it every lock it took
        raise
    return conn


async def held(conn: asyncpg.Connection, owner: Owner) -> bool:
    """Whether the connection `claim` gave still holds every one of the owner's partitions
    (an error if the connection is gone: after a failover its locks are not on the new
    primary)."""
    count = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND pid = pg_backend_pid() AND classid::bigint = $1",
        _CLAIMS,
    )
    return bool(count == len(owner.partitions))
