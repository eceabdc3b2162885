"""`los import`: a JSONL file of edge events through the source services, in batches.

Lines are sent in file order, a chunk at a time: each chunk is split by owning service
(CONTRACT §2, "emitted by") and its parts submitted concurrently, and the next chunk
starts when all parts are stored. So the services never drift far apart in recorded_at,
which keeps outcomes' live clock honest during a backfill. Importing the same file again
changes nothing: every event is recognised by its event_id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.kernel.events import owner
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc

CHUNK = 2000
BATCH = 500


@dataclass
class ImportReport:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    by_service: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def _reject(rejects: IO[str], line: int, event_id: str, field_name: str, reason: str) -> None:
    record = {"line": line, "event_id": event_id, "field": field_name, "reason": reason}
    rejects.write(json.dumps(record) + "\n")


def _chunks(path: Path) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                chunk.append((number, line))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class Importer:
    def __init__(self, addresses: dict[str, str]) -> None:
        self._channels = {s: grpc.aio.insecure_channel(a) for s, a in addresses.items()}
        self._stubs = {s: sources_pb2_grpc.SourcesStub(c) for s, c in self._channels.items()}

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)

    async def _submit(
        self, service: str, part: list[tuple[int, str]], report: ImportReport, rejects: IO[str]
    ) -> None:
        for start in range(0, len(part), BATCH):
            batch = part[start : start + BATCH]
            request = sources_pb2.SubmitEventsRequest(events=[line for _, line in batch])
            reply = await self._stubs[service].SubmitEvents(request, timeout=120)
            report.accepted += reply.accepted
            report.duplicates += reply.duplicates
            report.rejected += len(reply.rejected)
            for rejection in reply.rejected:
                number = batch[rejection.index][0]
                _reject(rejects, number, rejection.event_id, rejection.field, rejection.reason)
            report.by_service[service] = report.by_service.get(service, 0) + len(batch)

    def _route(
        self, chunk: list[tuple[int, str]], report: ImportReport, rejects: IO[str]
    ) -> dict[str, list[tuple[int, str]]]:
        parts: dict[str, list[tuple[int, str]]] = {}
        for number, line in chunk:
            try:
                event = json.loads(line)
                service = owner(event["type"])
            except json.JSONDecodeError as error:
                report.rejected += 1
                _reject(rejects, number, "", "", f"not valid JSON: {error.msg}")
                continue
            except RecursionError:
                report.rejected += 1
                _reject(rejects, number, "", "", "not valid JSON: nested too deeply")
                continue
            except (KeyError, TypeError, ValueError):
                report.rejected += 1
                event_id = event.get("event_id", "") if isinstance(event, dict) else ""
                _reject(rejects, number, str(event_id), "type", "missing or not a v1 event type")
                continue
            parts.setdefault(service, []).append((number, line))
        return parts

    async def run(self, path: Path, rejects_path: Path, *, show_progress: bool) -> ImportReport:
        report = ImportReport()
        total = sum(1 for line in path.open(encoding="utf-8") if line.strip())
        started = time.perf_counter()
        columns = (
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with (
            rejects_path.open("w", encoding="utf-8") as rejects,
            Progress(*columns, disable=not show_progress) as progress,
        ):
            task = progress.add_task("import", total=total)
            for chunk in _chunks(path):
                parts = self._route(chunk, report, rejects)
                await asyncio.gather(
                    *(self._submit(s, part, report, rejects) for s, part in parts.items())
                )
                report.lines += len(chunk)
                progress.update(task, advance=len(chunk))
        report.seconds = time.perf_counter() - started
        return report
