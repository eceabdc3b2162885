"""Where each service keeps its events: the `eventsourcing` library on PostgreSQL.

Every service has its own schema in the database named by `DATABASE_URL`; services never
read each other's tables. `eventsourcing` is synchronous (psycopg 3), so services call
their application from one worker thread (`Worker`), which is also the single writer
the library's table lock wants.

Two things are added to the library. Its PostgreSQL recorders (`ApplicationRecorder`,
`ProcessRecorder`) insert a batch as several statements of at most `STATEMENT_BYTES`
each, in the same transaction (one pipelined statement of several megabytes has been seen
never to complete with psycopg 3.3; BENCHMARKS.md, findings), and read the events of many
aggregates with one query. `BatchApplication` uses that to load everyone a batch names at
once, rather than with one query per person.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from itertools import groupby
from typing import Any, Generic, ParamSpec, TypeVar
from uuid import UUID

import orjson
import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder, Recording, StoredEvent, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresProcessRecorder
from psycopg import Cursor, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, tuple_row

from services.kernel.keys import Erased, Keys, StoredKeys, create_keys, opened

P = ParamSpec("P")
T = TypeVar("T")
KEYS_DATABASE_URL = "KEYS_DATABASE_URL"  # an Application's setting, as the library's are


def application_env(database_url: str, schema: str, *, cache_size: int) -> dict[str, str]:
    """The environment an `eventsourcing` Application needs to store in `schema`."""
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_SCHEMA": schema,
        # Keep the process recorder's Tracking rows (DESIGN.md, pitfalls).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "POSTGRES_POOL_SIZE": "4",
        "CREATE_TABLE": "y",
        "AGGREGATE_CACHE_MAXSIZE": str(cache_size),
        # One writer per application (DESIGN.md), so a cached aggregate is never stale:
        # no query to fast-forward it on every get (measured 1.5x on the journey store).
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        # The cache hands out its own aggregate rather than a deep copy (the copy was a
        # fifth of outcomes' time); a batch that fails to save evicts what it touched.
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        "TRANSCODER_TOPIC": f"{__name__}:Transcoder",
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:ApplicationRecorder",
        "PROCESS_RECORDER_TOPIC": f"{__name__}:ProcessRecorder",
        # People's keys (keys.py), beside the events sealed with them.
        KEYS_DATABASE_URL: database_url,
    }


STATEMENT_BYTES = 256 * 1024


class Transcoder(JSONTranscoder):
    """The library's JSON transcoding, with orjson writing it: the same bytes, several
    times faster. Datetimes and dataclasses still go through the library's transcodings;
    reading is the library's own (orjson has no hook for them)."""

    def encode(self, obj: Any) -> bytes:
        options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        return orjson.dumps(obj, default=self._encode_obj, option=options)


class ApplicationRecorder(PostgresApplicationRecorder):
    """The library's recorder, inserting in statements of bounded size, one array per
    column (psycopg sends them in binary; the library's array of composites is dumped
    as text, in Python), and reading many aggregates at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.insert_columns_statement = sql.SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(
            sql.Identifier(self.datastore.schema),
            sql.Identifier(self.events_table_name),
            sql.Identifier(self.datastore.originator_id_type),
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        statements = [
            (
                [event.originator_id for event in chunk],
                [event.originator_version for event in chunk],
                [event.topic for event in chunk],
                [event.state for event in chunk],
            )
            for chunk in _chunks(stored_events, STATEMENT_BYTES)
        ]
        curs.executemany(self.insert_columns_statement, statements, returning=True)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        # In a pipeline the cursor also holds the results of the lock and notify before.
        notification_ids: list[int] = []
        while True:
            if curs.description is not None:
                notification_ids += [row["notification_id"] for row in curs.fetchall()]
            if not curs.nextset():
                break
        if len(notification_ids) != len(stored_events):
            raise psycopg.ProgrammingError(
                f"{len(notification_ids)} notification ids for {len(stored_events)} events"
            )
        return notification_ids

    def select_many(self, originator_ids: Collection[UUID]) -> list[StoredEvent]:
        """The events of all these aggregates, by aggregate and version."""
        statement = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}.{}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(sql.Identifier(self.datastore.schema), sql.Identifier(self.events_table_name))
        # Rows as tuples: a dict for each row (the library's row factory) was a fifth of
        # reading a journey back. In binary: as text, each state comes as hex, which
        # PostgreSQL writes and psycopg reads back (half the client's CPU of the read).
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(statement, (list(originator_ids),))
            return [StoredEvent(*row) for row in curs.fetchall()]


class ProcessRecorder(ApplicationRecorder, PostgresProcessRecorder):
    """The same, for an application that also records its tracking positions."""

    def tracked(self) -> dict[str, int]:
        """Every tracking position, by name."""
        statement = sql.SQL(
            "SELECT application_name, max(notification_id) FROM {}.{} GROUP BY 1"
        ).format(sql.Identifier(self.datastore.schema), sql.Identifier(self.tracking_table_name))
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(statement)
            return dict(curs.fetchall())


A = TypeVar("A", bound=Aggregate)


class BatchApplication(Application[UUID]):
    """An application that takes a batch at a time: loads everyone a batch names with one
    query, changes them, and records all their events in one transaction.

    The aggregate cache hands out its own aggregates, not copies: change them only inside
    `evicting`, which drops them from the cache if the batch is not recorded."""

    # Told of each batch's events with their notifications as soon as they are committed,
    # in the worker thread: a reader of the log hands them to itself (`Handover`).
    recorded: Callable[[list[Recording[UUID]]], None] | None = None

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        # People's keys in the database of the events; in memory beside the library's
        # in-memory recorder (unit tests).
        if url := self.env.get(KEYS_DATABASE_URL):
            create_keys(url)
            self.keys: Keys = StoredKeys(url)
        else:
            self.keys = Keys()

    def close(self) -> None:
        self.keys.close()
        super().close()

    def load(
        self,
        kind: type[A],
        ids: Collection[UUID],
        *,
        keep: bool = True,
        people: Mapping[UUID, str] | None = None,
    ) -> dict[UUID, A]:
        """The stored aggregates among `ids` (the others are new): from the cache, the
        rest with one query, then cached unless not to `keep` (a read that should not
        push out what the writes are working on). Those read from the store are read
        with their people's keys `opened` around the call; or, given each one's person
        (`people`), with their keys read now, an erased person's left out of the cache
        too. One whose key is gone (erased) is left out."""
        keys: dict[str, AESGCM] | None = None
        if people is not None:
            keys, erased = self.keys.read(people.values())
            gone = {i for i in ids if people[i] in erased}
            self.forget(gone)
            ids = [i for i in ids if i not in gone]
        cache = self.repository.cache
        found: dict[UUID, A] = {}
        missing = list(ids)
        if cache is not None:
            missing = []
            for aggregate_id in ids:
                try:
                    cached = cache.get(aggregate_id)
                except KeyError:
                    missing.append(aggregate_id)
                    continue
                assert isinstance(cached, kind)
                found[aggregate_id] = cached
        recorder = self.recorder
        if not missing:
            return found
        if isinstance(recorder, ApplicationRecorder):
            stored = recorder.select_many(missing)
        else:  # the library's in-memory recorder, in unit tests
            stored = [event for i in missing for event in recorder.select_events(i)]
        with nullcontext() if keys is None else opened(keys):
            for _, events in groupby(stored, key=lambda event: event.originator_id):
                try:
                    aggregate = _replayed(map(self.mapper.to_domain_event, events))
                except Erased:
                    continue
                assert isinstance(aggregate, kind)
                found[aggregate.id] = aggregate
                if cache is not None and keep:
                    cache.put(aggregate.id, aggregate)
        return found

    def forget(self, ids: Collection[UUID]) -> None:
        """Take the aggregates `ids` out of the cache."""
        if (cache := self.repository.cache) is not None:
            for aggregate_id in ids:
                with suppress(KeyError):
                    cache.get(aggregate_id, evict=True)

    @contextmanager
    def evicting(self, ids: Collection[UUID]) -> Iterator[None]:
        """Take the aggregates `ids` out of the cache if the block fails: it may have
        changed them without recording."""
        try:
            yield
        except BaseException:
            self.forget(ids)
            raise

    def record_batch(
        self, events: Sequence[Any], aggregates: Iterable[Aggregate], tracking: Tracking | None
    ) -> list[Recording[UUID]]:
        """`events` in one transaction, with `tracking`; then `aggregates` are cached.
        Returns each event with its notification. (The library's `save`, without its
        protocol check on every object.)"""
        processing = ProcessingEvent[UUID](tracking)
        processing.events.extend(events)
        processing.aggregates.update((aggregate.id, aggregate) for aggregate in aggregates)
        recordings = self._record(processing)
        if self.recorded is not None and recordings:
            self.recorded(recordings)
        return recordings


class Handover(Generic[T]):
    """What an application commits, handed in memory to one reader of its log on the event
    loop, so that the reader need not read it back from the store.

    The reader reads the store from its position until it reaches the end, then takes
    what was handed over. It opens the handover before each read (`open`), so a batch
    committed while it reads is in what it read, handed over, or both: `take` leaves out
    what the reader has passed. A reader more than `limit` batches behind (the bus is
    slow, the rules are busy) finds the handover closed, what it held dropped, and reads
    the store again."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._batches: deque[list[tuple[int, T]]] = deque()
        self.is_open = False

    def open(self) -> None:
        self._batches.clear()
        self.is_open = True

    def committed(self, items: list[tuple[int, T]]) -> None:
        """A batch just committed: (notification id, item) of each of its events that the
        reader wants. In the worker thread."""
        if not self.is_open:
            return
        if len(self._batches) >= self._limit:
            self.is_open = False
            self._batches.clear()
            return
        self._batches.append(items)

    def take(self, after: int) -> list[tuple[int, T]]:
        """What was handed over after notification `after`, in order."""
        taken: list[tuple[int, T]] = []
        while self._batches:
            taken.extend(item for item in self._batches.popleft() if item[0] > after)
        return taken


def _replayed(events: Iterable[Any]) -> Aggregate | None:
    """An aggregate rebuilt from its events, as the library's `project_aggregate` does but
    without checking each event against a `typing` protocol at run time: that check was
    half the cost of rebuilding a journey no longer in the cache."""
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _chunks(events: Sequence[StoredEvent], limit: int) -> Iterator[Sequence[StoredEvent]]:
    """`events` in runs of at most `limit` bytes (at least one event per run)."""
    start, size = 0, 0
    for end, event in enumerate(events):
        weight = len(event.state) + len(event.topic) + 64
        if end > start and size + weight > limit:
            yield events[start:end]
            start, size = end, 0
        size += weight
    if start < len(events):
        yield events[start:]


def create_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


class Worker:
    """One thread for one synchronous application: calls run in order, off the event loop."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
