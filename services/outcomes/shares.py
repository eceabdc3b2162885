"""Shares of a file's people: `los replay` and `los export` judge each person alone, so
the people of a file of edge events can be shared out, over processes and a share at a
time, and the results merged, the same for any number of either. A line belongs to the
share of its `person`; the lines of a file too large to hold at once, or of a pipe, are
first sorted into a file per share.

Those files hold the edge events, national ids and all, so they never have a name: each
is unlinked as it is made (`TemporaryFile`), and the processes that read them inherit
them open, forked, and end with the process that started them. A replay that is killed,
however, leaves nothing behind on disk.
"""

from __future__ import annotations

import json
import os
import stat
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from tempfile import TemporaryFile
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.kernel.processes import die_with_parent
from services.kernel.settings import RuleSettings

# A replay holds every event of its people until it has judged them (~2.9 GB for the
# 1,000,000 events of a 317 MB file): a file larger than this is replayed a share of
# its people at a time, after one pass that sorts its lines into a file per share.
SHARE_BYTES = 256 * 1024 * 1024


def shares_of(path: Path) -> int:
    """How many shares of its people a file is replayed in: one per `SHARE_BYTES`."""
    return -(-path.stat().st_size // SHARE_BYTES)


R = TypeVar("R")
T = TypeVar("T")
OfLines = Callable[[Iterable[tuple[int, bytes]], datetime, str, RuleSettings, int, int], R]


def in_parts(
    run: OfLines[R],
    path: Path,
    until: datetime,
    key: str,
    rules: RuleSettings,
    workers: int,
    parts: int,
) -> Generator[R, None, None]:
    """`run` on the numbered lines of the file for each of `parts` shares of its people,
    in `workers` processes (in this one if only one); the results in the shares' order,
    each as soon as it and those before it are done. Each share reads the whole file for
    its own lines; a file over `SHARE_BYTES`, or one that can be read only once (a pipe),
    is first sorted into a file per share (in the system's temporary folder, `TMPDIR`,
    but nameless), so that it is read once, not once a share."""
    with ExitStack() as files:
        once = not stat.S_ISREG(path.stat().st_mode)
        if parts > 1 and (once or path.stat().st_size > SHARE_BYTES):
            split = _split(path, parts, files)
            shares = [_Share(path, share.fileno(), 0, 1) for share in split]
        else:
            shares = [_Share(path, None, part, parts) for part in range(parts)]
        yield from in_order(partial(_on_file, run, until, key, rules), shares, workers)


def in_order(run: Callable[[T], R], tasks: Iterable[T], workers: int) -> Generator[R, None, None]:
    """`run` of each task in `workers` processes (in this one if only one); the results in
    the tasks' order, each as soon as it and those before it are done. At most one task
    more than processes is under way, so a result is let go once taken."""
    if workers <= 1:
        yield from map(run, tasks)
        return
    # Forked (all of them at the first submit), so they hold open what this one has open.
    pool = forked_pool(workers)
    try:
        ahead = iter(tasks)
        running = deque(pool.submit(run, task) for task in islice(ahead, workers + 1))
        while running:
            done = running.popleft()
            for upcoming in islice(ahead, 1):
                running.append(pool.submit(run, upcoming))
            yield done.result()
    finally:
        pool.shutdown(cancel_futures=True)  # a consumer that stops early waits for no more


def forked_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` processes forked from this one (at the first submit), each ending with it."""
    return ProcessPoolExecutor(
        workers, get_context("fork"), initializer=_worker_start, initargs=(os.getpid(),)
    )


def _worker_start(parent: int) -> None:
    """A worker ends with the process that started it. Otherwise, were that one killed,
    the worker would wait for work forever, holding every share's file open."""
    die_with_parent()
    if os.getppid() != parent:  # gone before the line above
        os._exit(1)


@dataclass(frozen=True)
class _Share:
    """Where a share's lines are: those of share `part` of `parts` in the file at `path`,
    or, where `split` holds the descriptor of a file `_split` made, every line of that
    file, each after its number in the file it came from and a tab."""

    path: Path
    split: int | None
    part: int
    parts: int


def _on_file(run: OfLines[R], until: datetime, key: str, rules: RuleSettings, share: _Share) -> R:
    if share.split is None:
        with share.path.open("rb") as lines:
            return run(enumerate(lines, start=1), until, key, rules, share.part, share.parts)
    # Read through a copy of the descriptor, from the start: one process reads a share.
    with open(os.dup(share.split), "rb") as lines:
        lines.seek(0)
        return run(_unsplit(lines), until, key, rules, share.part, share.parts)


def _split(path: Path, parts: int, files: ExitStack) -> list[IO[bytes]]:
    """Sort the lines of the file into a file per share of its people, each without a
    name and open until `files` closes."""
    sinks: list[IO[bytes]] = [
        files.enter_context(TemporaryFile(prefix="los-share-"))  # noqa: SIM115 (entered)
        for _ in range(parts)
    ]
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            sink = sinks[part_of(line, parts)]
            if line.endswith(b"\n"):
                sink.write(b"%d\t%s" % (number, line))
            else:  # the last line, with no newline of its own
                sink.write(b"%d-\t%s\n" % (number, line))
    for sink in sinks:
        sink.flush()
    return sinks


def _unsplit(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The lines of a file `_split` made, with their numbers, each as it was."""
    for written in lines:
        number, _, line = written.partition(b"\t")
        if number.endswith(b"-"):
            yield int(number[:-1]), line[:-1]
        else:
            yield int(number), line


def part_of(line: bytes | str, parts: int) -> int:
    """Which share of `parts` a line belongs to: its person's; a line that names nobody
    belongs to share 0, where `parse_edge_event` says what is wrong with it."""
    person = _person(line)
    if not isinstance(person, str):
        return 0
    return zlib.crc32(person.encode("utf-8", "surrogatepass")) % parts


class _Whose(BaseModel):
    """A line read for its `person` alone: nothing else becomes a Python object."""

    person: Any = None


def _person(line: bytes | str) -> object:
    """The line's top-level `person` as `json.loads` reads it; None if it has none."""
    try:
        return _Whose.model_validate_json(line).person
    except ValidationError:
        pass  # pydantic's reader is stricter than json's (NaN, deep nesting, UTF-16, ...)
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return raw.get("person") if isinstance(raw, dict) else None
