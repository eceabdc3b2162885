"""The processes a test started, seen through /proc: which are ours (by their parent or
their data folder), which are still alive, and how to stop them; and `poll`, which waits
for something to become true."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    cmdline: str


def processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        found[int(entry.name)] = Proc(int(entry.name), int(ppid), state, cmdline.strip())
    return found


def ours(root: int, data_dir: Path) -> dict[int, Proc]:
    """Every live process `root` started (its descendants) or that works in `data_dir`
    (pgserver's postgres is daemonised, so it is no child of `los up`)."""
    table = processes()
    children: dict[int, list[int]] = defaultdict(list)
    for proc in table.values():
        children[proc.ppid].append(proc.pid)
    found: dict[int, Proc] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in table and table[pid].state != "Z":
            found[pid] = table[pid]
        todo.extend(children.get(pid, []))
    marker = str(data_dir)
    for proc in table.values():
        if marker in proc.cmdline and proc.state != "Z":
            found[proc.pid] = proc
    return found


def still_alive(seen: dict[int, Proc], data_dir: Path) -> dict[int, Proc]:
    """Which of `seen` still run (same pid, same command line), plus anything in data_dir."""
    table = processes()
    alive = {
        pid: table[pid]
        for pid, proc in seen.items()
        if pid in table and table[pid].state != "Z" and table[pid].cmdline == proc.cmdline
    }
    marker = str(data_dir)
    alive |= {p.pid: p for p in table.values() if marker in p.cmdline and p.state != "Z"}
    return alive


def kill(found: dict[int, Proc]) -> None:
    """Last resort in cleanup: end exactly these processes, by pid."""
    for pid in found:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def ctrl_c_enabled() -> None:
    """For `preexec_fn`: SIGINT as in an operator's terminal. A shell starts background
    jobs (a CI step, `pytest &`) with SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def poll(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.2) -> T:
    """`check()` until it gives something, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
