"""Where the time goes: py-spy's raw (collapsed) stacks of each service, summarised.

`python -m bench.run --only ingest --profile` attaches `py-spy record --nonblocking` to
the four service processes for the whole ingest and keeps their collapsed stacks. This
module reads them into, per process: the samples in which a Los function or a library
entry point was on the stack (inclusive share), and what the innermost frame was doing
(self share, by library). py-spy counts only threads that are not idle, so a share is a
share of the time the process was busy.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")

# The innermost frame's module (first part of its path, as py-spy shortens it) → what the
# process was doing.
CATEGORIES: dict[str, str] = {
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "eventsourcing": "eventsourcing",
    "psycopg": "psycopg (PostgreSQL driver)",
    "psycopg_pool": "psycopg (PostgreSQL driver)",
    "asyncpg": "asyncpg",
    "nats": "nats-py",
    "faststream": "faststream",
    "grpc": "grpcio",
    "google": "protobuf",
    "opentelemetry": "OpenTelemetry",
    "stamina": "stamina",
    "stdnum": "python-stdnum",
    "json": "json (stdlib)",
    "uuid.py": "uuid (stdlib)",
    "datetime.py": "datetime (stdlib)",
    "_strptime.py": "datetime (stdlib)",
    "asyncio": "asyncio event loop",
    "selectors.py": "asyncio event loop",
    "threading.py": "threads (stdlib)",
    "queue.py": "threads (stdlib)",
    "concurrent": "threads (stdlib)",
    "copy.py": "copy (stdlib)",
    "hmac.py": "hmac (stdlib)",
    "logging": "logging (stdlib)",
    "zlib": "zlib",
}


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text.strip())
    if match is None:
        return text.strip(), ""
    return match["function"], match["file"]


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _category(path: str) -> str:
    short = _short(path)
    if short.startswith("services/outcomes/rules"):
        return "rules (Los)"
    if short.startswith("services/"):
        return "Los code"
    return CATEGORIES.get(short.split("/", 1)[0], "other (interpreter, stdlib)")


def _is_los(path: str) -> bool:
    short = _short(path)
    return short.startswith("services/") and not short.startswith("services/rpc/")


def summarise(raw: Path, top: int = 12) -> dict[str, Any]:
    """The summary of one process's collapsed stacks."""
    total = 0
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    leaf_functions: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(part) for part in stack.split(";") if part]
        seen: set[str] = set()
        for function, path in frames:
            if _is_los(path):
                name = f"{function} ({_short(path)})"
                if name not in seen:
                    seen.add(name)
                    inclusive[name] += count
        if frames:
            leaf[_category(frames[-1][1])] += count
            function, path = frames[-1]
            leaf_functions[f"{function} ({_short(path)})"] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "los_inclusive_pct": share(inclusive) if total else [],
        "innermost_pct": share(leaf) if total else [],
        "innermost_functions_pct": share(leaf_functions) if total else [],
    }


def summarise_all(outputs: dict[str, str], busy_seconds: dict[str, float]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, path in outputs.items():
        raw = Path(path)
        if raw.exists():
            found[name] = summarise(raw) | {"cpu_seconds": busy_seconds.get(name)}
    return found
