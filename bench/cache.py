"""How often the ingest reads a person back into outcomes' cache, counted over the cohort.

Outcomes keeps the journeys of `LOS_AGGREGATE_CACHE_SIZE` people cached; a batch naming
someone no longer cached reads their stored events back and rebuilds the journey
(`BatchApplication.load`), ~12 µs a stored event (`bench/findings.md` item 27). This
replays the cohort's people batch by batch, in file order, through the library's own
`LRUCache` used as `load` and `record_batch` use it, and counts: the share of events whose
person's journey had fallen out of the cache, and the stored events (the `Created` event
and each fact) read back per event. Counted, not timed; for the cache the services run
with and for twice that.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from pathlib import Path

import orjson
from eventsourcing.application import LRUCache

from bench.common import Figure
from services.kernel.settings import Settings


def read_backs(path: Path, cache_size: int, batch: int) -> tuple[float, float]:
    """(share of events whose person's journey was evicted, stored events read back an
    event) for the cohort at `path`, taken `batch` events at a time."""
    cache: LRUCache[str, None] = LRUCache(maxsize=cache_size)
    stored: dict[str, int] = {}  # person → events stored so far, `Created` included
    events = evicted = read_back = 0
    with path.open("rb") as lines:
        while chunk := list(islice(lines, batch)):
            people = Counter(orjson.loads(line)["person"] for line in chunk)
            events += len(chunk)
            for person, count in people.items():  # `load`: everyone the batch names
                try:
                    cache.get(person)
                except KeyError:
                    if person in stored:
                        evicted += count
                        read_back += stored[person]
            for person, count in people.items():  # `record_batch`: then all are cached
                stored[person] = stored.get(person, 1) + count
                cache.put(person, None)
    return evicted / events, read_back / events


def measure(path: Path, batch: int) -> list[Figure]:
    """The counts for the cache the services run with, and for one twice as large."""
    size = Settings().aggregate_cache_size
    figures = []
    for cache_size in (size, 2 * size):
        share, per_event = read_backs(path, cache_size, batch)
        figures.append(
            Figure(
                key=f"cache_evicted_{cache_size}",
                label=f"Events whose person's journey is out of a cache of {cache_size:,}",
                value=round(100 * share, 1),
                unit="% of events",
                note=f"a cache of {cache_size:,} reads back {per_event:.2f} stored events an event"
                " (counted, not timed)",
            )
        )
    return figures
