"""`los import`: a JSONL file of edge events through the source services, in batches; and
`los check`: what became of each event of such a file afterwards.

Lines are read in file order, a chunk at a time, and each chunk is split by owning
service (CONTRACT §2, "emitted by"). Each service has a lane that sends its parts in
order, one batch at a time, so a service stores its events in file order. The lanes run
side by side, and the reading waits while any lane has `AHEAD` chunks waiting. So the
services do not wait for each other, nor drift far apart in recorded_at: outcomes' live
clock, which follows the slowest service during a backfill, stays close behind. Importing
the same file again changes nothing: every event is recognised by its event_id.

Each call carries a source token (`los token --source …`). Without one, the importer signs
its own for every source system with `LOS_SOURCE_TOKEN_KEY`: the operator's tool, on the
operator's key.
"""

from __future__ import annotations

import asyncio
import json
import time
from asyncio import Queue
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.kernel.events import owner, readable_event_id
from services.kernel.rpc import aio_channel
from services.kernel.settings import get_settings
from services.kernel.tokens import bearer, mint_source
from services.kernel.vocabulary import SourceSystem
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc

CHUNK = 2000
BATCH = 500
AHEAD = 4
SELF_SIGNED_LIFETIME = timedelta(hours=1)  # of a token the importer signs itself, per call

Part = list[tuple[int, str]]  # numbered lines
Lines = list[tuple[int, bytes]]  # numbered lines as read


@dataclass
class ImportReport:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    held: int = 0  # ends waiting for their start (CONTRACT §2)
    seconds: float = 0.0
    by_service: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


@dataclass
class CheckReport:
    lines: int = 0
    # By `EventState.State` name; INVALID also for lines that could not be asked about.
    states: Counter[str] = field(default_factory=Counter)


def _reject(
    rejects: IO[str], line: int, event_id: str, field_name: str, reason: str, **more: str
) -> None:
    record = {"line": line, "event_id": event_id, **more, "field": field_name, "reason": reason}
    rejects.write(json.dumps(record) + "\n")


def _chunks(path: Path) -> Iterator[Lines]:
    chunk: Lines = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                chunk.append((number, line))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class InvalidLine(Exception):
    """A line that cannot be routed: its event_id (a UUID, or ""), field and reason."""


def _routed(raw: bytes) -> tuple[str, str, dict[str, Any]]:
    """The service a line goes to, the line as text and as read; or `InvalidLine`."""
    try:
        line = raw.decode("utf-8-sig")  # a byte order mark, as Windows tools write, is dropped
    except UnicodeDecodeError as error:
        raise InvalidLine("", "", f"not UTF-8: byte {error.start + 1} of the line") from None
    try:
        event = json.loads(line)
    except json.JSONDecodeError as error:
        raise InvalidLine("", "", f"not valid JSON: {error.msg}") from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise InvalidLine("", "", f"not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidLine("", "", "not valid JSON: nested too deeply") from None
    try:
        return owner(event["type"]), line, event
    except (KeyError, TypeError, ValueError):
        event_id = readable_event_id(event) if isinstance(event, dict) else None
        raise InvalidLine(event_id or "", "type", "missing or not a v1 event type") from None


class Importer:
    def __init__(self, addresses: dict[str, str], token: str | None = None) -> None:
        settings = get_settings()
        self._channels = {s: aio_channel(a, settings.tls) for s, a in addresses.items()}
        self._stubs = {s: sources_pb2_grpc.SourcesStub(c) for s, c in self._channels.items()}
        self._token = token
        self._key = settings.source_token_key.get_secret_value()

    def _authorization(self) -> tuple[tuple[str, str]]:
        """The token given, or one signed now (so that no import outlives it)."""
        if self._token:
            return bearer(self._token)
        now = datetime.now(UTC)
        return bearer(
            mint_source(self._key, "los", SourceSystem, now=now, lifetime=SELF_SIGNED_LIFETIME)
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)

    async def _submit(
        self, service: str, part: Part, report: ImportReport, rejects: IO[str]
    ) -> None:
        for start in range(0, len(part), BATCH):
            batch = part[start : start + BATCH]
            request = sources_pb2.SubmitEventsRequest(events=[line for _, line in batch])
            reply = await self._stubs[service].SubmitEvents(
                request, timeout=120, metadata=self._authorization()
            )
            report.accepted += reply.accepted
            report.duplicates += reply.duplicates
            report.rejected += len(reply.rejected)
            report.held += len(reply.held)
            for rejection in reply.rejected:
                number = batch[rejection.index][0]
                _reject(rejects, number, rejection.event_id, rejection.field, rejection.reason)
            report.by_service[service] = report.by_service.get(service, 0) + len(batch)

    def _route(self, chunk: Lines, report: ImportReport, rejects: IO[str]) -> dict[str, Part]:
        """The chunk's lines by the service each goes to; the others written to `rejects`."""
        parts: dict[str, Part] = {}
        for number, raw in chunk:
            try:
                service, line, _ = _routed(raw)
            except InvalidLine as invalid:
                report.rejected += 1
                _reject(rejects, number, *invalid.args)
                continue
            parts.setdefault(service, []).append((number, line))
        return parts

    async def run(self, path: Path, rejects_path: Path, *, show_progress: bool) -> ImportReport:
        report = ImportReport()
        with path.open("rb") as lines:
            total = sum(1 for line in lines if line.strip())
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
            lanes = {service: Queue[Part | None](maxsize=AHEAD) for service in self._stubs}

            async def send(service: str) -> None:
                while (part := await lanes[service].get()) is not None:
                    await self._submit(service, part, report, rejects)
                    progress.update(task, advance=len(part))

            async def read() -> None:
                for chunk in _chunks(path):
                    parts = self._route(chunk, report, rejects)
                    progress.update(task, advance=len(chunk) - sum(map(len, parts.values())))
                    for service, part in parts.items():
                        await lanes[service].put(part)
                    report.lines += len(chunk)
                for lane in lanes.values():
                    await lane.put(None)

            async with asyncio.TaskGroup() as lanes_and_reader:
                lanes_and_reader.create_task(read())
                for service in lanes:
                    lanes_and_reader.create_task(send(service))
        report.seconds = time.perf_counter() - started
        return report

    async def check(self, path: Path, out_path: Path) -> CheckReport:
        """Ask each line's service what became of its event; every line whose event was not
        accepted is written to `out_path` with its state, field and reason."""
        report = CheckReport()
        with out_path.open("w", encoding="utf-8") as out:

            def tell(number: int, event_id: str, state: str, field_name: str, why: str) -> None:
                report.states[state] += 1
                if state != "ACCEPTED":
                    _reject(out, number, event_id, field_name, why, state=state)

            for chunk in _chunks(path):
                report.lines += len(chunk)
                asked: dict[str, list[tuple[int, sources_pb2.SentEvent]]] = {}
                for number, raw in chunk:
                    try:
                        service, _, event = _routed(raw)
                    except InvalidLine as invalid:
                        tell(number, invalid.args[0], "INVALID", *invalid.args[1:])
                        continue
                    sent = sources_pb2.SentEvent(
                        event_id=readable_event_id(event) or "", person=str(event.get("person"))
                    )
                    asked.setdefault(service, []).append((number, sent))
                for service, part in asked.items():
                    for start in range(0, len(part), BATCH):
                        batch = part[start : start + BATCH]
                        request = sources_pb2.CheckEventsRequest(events=[s for _, s in batch])
                        reply = await self._stubs[service].CheckEvents(
                            request, timeout=120, metadata=self._authorization()
                        )
                        for (number, _), state in zip(batch, reply.events, strict=True):
                            name = sources_pb2.EventState.State.Name(state.state)
                            tell(number, state.event_id, name, state.field, state.reason)
        return report
