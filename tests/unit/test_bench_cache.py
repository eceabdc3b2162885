"""`bench.cache`: how often the ingest reads a person back into outcomes' cache."""

from pathlib import Path

import orjson

from bench.cache import read_backs


def _cohort(tmp_path: Path, people: str) -> Path:
    path = tmp_path / "cohort.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"person": p}) + b"\n" for p in people))
    return path


def test_a_person_evicted_is_read_back_with_every_event_stored_so_far(tmp_path: Path) -> None:
    # A cache of two, one event a batch: C evicts A, then A evicts B. A's and B's second
    # events each read back two stored events (the `Created` event and the first fact).
    share, per_event = read_backs(_cohort(tmp_path, "ABCAB"), cache_size=2, batch=1)
    assert (share, per_event) == (2 / 5, 4 / 5)


def test_nobody_is_read_back_while_everyone_fits(tmp_path: Path) -> None:
    assert read_backs(_cohort(tmp_path, "ABCAB"), cache_size=3, batch=1) == (0.0, 0.0)


def test_a_batch_looks_everyone_up_before_it_caches_its_new_people(tmp_path: Path) -> None:
    # Batches AB | CA | AB, a cache of two. The second batch finds A cached before C is
    # cached and evicts B; the third reads B back (two stored events) and finds A.
    share, per_event = read_backs(_cohort(tmp_path, "ABCAAB"), cache_size=2, batch=2)
    assert (share, per_event) == (1 / 6, 2 / 6)
