"""CPU time and memory of the processes a benchmark runs on, read from /proc.

The embedded servers are found by the folder they keep their data in: the postmaster by
`-D <dir>` and every PostgreSQL backend as its child, nats-server by `--store_dir <dir>`.
With configured servers (NATS_URL / DATABASE_URL) they are elsewhere and not counted.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(parent: int) -> list[int]:
    found = []
    for pid in all_pids():
        fields = _stat(pid)
        if fields is not None and int(fields[1]) == parent:
            found.append(pid)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the name).
    return (int(fields[11]) + int(fields[12])) / TICK


def server_pids(work_dir: Path) -> dict[str, list[int]]:
    """The embedded nats-server and PostgreSQL processes (postmaster and backends) whose
    data lives under `work_dir`; a server not found there (a configured one) is left out,
    rather than counted as using no CPU."""
    marker = str(work_dir)
    nats: list[int] = []
    postgres: list[int] = []
    for pid in all_pids():
        line = _cmdline(pid)
        if marker not in line:
            continue
        if "nats-server" in line:
            nats.append(pid)
        elif "postgres" in line and " -D " in line:
            postgres.append(pid)
            postgres.extend(children(pid))
    found = {"nats-server": nats, "postgres": postgres}
    return {server: pids for server, pids in found.items() if pids}


class CpuMeter:
    """CPU seconds spent by groups of processes between `start()` and `stop()`.

    PostgreSQL backends come and go; the group is re-read at both ends, and a backend
    that exited in between is not counted (the pools the services keep live throughout).
    """

    def __init__(self, groups: dict[str, list[int]], work_dir: Path | None) -> None:
        self._groups = groups
        self._work_dir = work_dir
        self._before: dict[str, dict[int, float]] = {}
        self.seconds: dict[str, float] = {}

    def _pids(self) -> dict[str, list[int]]:
        groups = dict(self._groups)
        if self._work_dir is not None:
            groups.update(server_pids(self._work_dir))
        return groups

    def start(self) -> None:
        self._before = {
            name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in self._pids().items()
        }

    def stop(self) -> dict[str, float]:
        for name, pids in self._pids().items():
            before = self._before.get(name, {})
            self.seconds[name] = round(
                sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids), 2
            )
        return self.seconds
