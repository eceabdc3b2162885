"""`los replay` (CONTRACT §5): a file of edge events through the live service's domain code,
with no bus, no database and no wall clock; one JSON line for each alert raised.

The way through is the live one, held in memory:

1. each line is read as the source services read it (`parse_edge_event`), and the
   national id becomes the study pseudonym: HMAC-SHA256 under the pseudonym key given;
2. events are taken in `recorded_at` order, file order breaking ties (the order in which
   `los import` sends a sorted file), and each is offered to the record of the source
   service that owns its type: journey's measures, employer's placements, intake's case.
   The record accepts it, recognises a duplicate, holds an end until its start comes, or
   refuses it as the live service would (an end before its start, a second start, an end
   whose start was recorded more than the hold later). The records are replay records:
   `offer` changes their state without the aggregate events that would be stored. An end
   still held at `until` is reported as held, as the live service would still hold it;
3. what is accepted becomes a fact of the person's journey as outcomes stores it: the
   domain event as JSON, read back by `to_fact`;
4. the rules are evaluated once per person, at `until`. They are pure functions of the
   facts and the clock, and walk every knowledge time up to the clock themselves, so one
   evaluation at `until` gives the very alerts, `raised_at`s and resolutions that a clock
   following the events one by one and stopping at `until` gives.

Events recorded after `until` are not part of the input: the clock never reaches them,
so they are neither offered nor judged, only counted. A line without `recorded_at` is
skipped as invalid: live, the platform would have stamped its own receive time, which a
file does not carry.

`replay` is the core: a pure function of the lines, `until`, the key and the rule
settings, reading no clock. `replay_file` is the thin layer that opens the file and,
since each person is judged alone, may share the people out over several processes,
and replays a large file a share of its people at a time so that its memory stays
bounded; the result is the same for any number of either.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

# Routed as `los import` routes a line, so each event meets the record it would live.
from services.employer.application import EmployerApplication
from services.intake.application import IntakeApplication
from services.journey.application import JourneyApplication
from services.kernel.events import (
    DomainEvent,
    EdgeEvent,
    EventType,
    InvalidEvent,
    owner,
    parse_edge_event,
)
from services.kernel.ids import pseudonym
from services.kernel.settings import RuleSettings
from services.kernel.source import ACCEPTED, DUPLICATE, Refused, SourceRecord, Verdict, Waiting
from services.kernel.vocabulary import Timestamp
from services.outcomes.application import to_fact
from services.outcomes.domain import Fact
from services.outcomes.engine import alert_id
from services.outcomes.journey import Journey
from services.outcomes.recipients import recipient_at
from services.outcomes.rules import Alert, evaluate
from services.outcomes.shares import in_parts, part_of, shares_of

RECORD_TYPES: dict[str, type[SourceRecord]] = {
    app.service: app.record_type
    for app in (IntakeApplication, JourneyApplication, EmployerApplication)
}
# The source service each type is sent to, looked up once rather than per line.
OWNERS: dict[str, str] = {event_type: owner(event_type) for event_type in EventType}
NO_RECORDED_AT = "is required for replay: the receive time the platform would use is not in a file"

_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


@dataclass(frozen=True, slots=True)
class Problem:
    """A line that was skipped: `invalid` (it breaks the contract), `refused` by the
    source service that owns its type (it breaks that service's lifecycle checks), or
    `held` by it at `until` (an end whose start has not come)."""

    line: int
    kind: Literal["invalid", "refused", "held"]
    service: str | None
    event_id: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        by = "invalid" if self.kind == "invalid" else f"{self.kind} by {self.service}"
        return f"line {self.line}: {by}: {InvalidEvent(self.event_id, self.field, self.reason)}"


@dataclass
class Replay:
    """What a replay found: the alerts (each with the key it is ordered by), the lines
    skipped, and the counts."""

    rows: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    events: int = 0  # non-blank lines read
    duplicates: int = 0
    after_until: int = 0

    @property
    def alerts(self) -> list[str]:
        """The output: one JSON object per alert, ordered by raised_at, rule, subject."""
        return [line for _, line in sorted(self.rows, key=itemgetter(0))]

    @property
    def skipped(self) -> list[Problem]:
        """The invalid and refused lines, by line number."""
        return sorted(self.problems, key=lambda problem: problem.line)

    @property
    def invalid(self) -> int:
        return sum(1 for problem in self.problems if problem.kind == "invalid")

    @property
    def refused(self) -> int:
        return sum(1 for problem in self.problems if problem.kind == "refused")

    @property
    def held(self) -> int:
        return sum(1 for problem in self.problems if problem.kind == "held")

    @classmethod
    def merge(cls, parts: Iterable[Replay]) -> Replay:
        whole = cls()
        for part in parts:
            whole.rows += part.rows
            whole.problems += part.problems
            whole.events += part.events
            whole.duplicates += part.duplicates
            whole.after_until += part.after_until
        return whole


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, read as events' timestamps are; ValueError
    if it is not one."""
    try:
        return _TIMESTAMP.validate_python(text)
    except ValidationError:
        raise ValueError("RFC 3339 timestamp with a UTC offset expected") from None


def replay(
    lines: Iterable[bytes | str],
    until: datetime,
    key: str,
    rules: RuleSettings,
    part: int = 0,
    parts: int = 1,
) -> Replay:
    """Replay `lines` (JSONL of edge events, CONTRACT §1) up to `until`.

    With `parts` > 1, only the people of share `part` are replayed (and the lines that
    name nobody, in part 0): every person's events are judged alone, so the parts of one
    file, merged, are the whole replay.
    """
    return replay_numbered(enumerate(lines, start=1), until, key, rules, part, parts)


def replay_numbered(
    numbered: Iterable[tuple[int, bytes | str]],
    until: datetime,
    key: str,
    rules: RuleSettings,
    part: int = 0,
    parts: int = 1,
) -> Replay:
    """`replay` of lines that come with their line numbers."""
    result = Replay()
    for journey, alerts in replayed(numbered, until, key, rules, result, part, parts):
        result.rows.extend(alert_row(journey, alert) for alert in alerts)
    return result


def replayed(
    numbered: Iterable[tuple[int, bytes | str]],
    until: datetime,
    key: str,
    rules: RuleSettings,
    result: Replay,
    part: int = 0,
    parts: int = 1,
) -> Iterator[tuple[Journey, list[Alert]]]:
    """Each person's journey as known at `until`, with the alerts judged on it (as
    `replay`, of lines with their numbers); the lines skipped and the counts go into
    `result`."""
    with collector_paused():
        pending = _read(numbered, until, result, part, parts)
        facts = _accept(pending, key, rules.lifecycle_hold, result)
        for participant, known in facts.items():
            journey = Journey(participant, known)
            alerts, _ = evaluate(journey, until, rules)
            yield journey, alerts


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused: a replay builds objects that all live until it
    ends and makes next to no cycles, and every collection would walk them all again
    (half the time of reading a file went there)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def replay_file(
    path: Path,
    until: datetime,
    key: str,
    rules: RuleSettings,
    workers: int = 1,
    shares: int | None = None,
) -> Replay:
    """Replay a file, its people shared out over `workers` processes, and in `shares`
    shares (by default one per `SHARE_BYTES` of file, and at least one per process); the
    result does not depend on how many of either."""
    if shares is None:
        shares = shares_of(path)
    parts = max(workers, shares, 1)
    return Replay.merge(in_parts(replay_numbered, path, until, key, rules, workers, parts))


def _read(
    numbered: Iterable[tuple[int, bytes | str]],
    until: datetime,
    result: Replay,
    part: int,
    parts: int,
) -> list[tuple[datetime, int, EdgeEvent]]:
    """The valid events of this part recorded up to `until`, in knowledge order, with
    their line numbers."""
    pending: list[tuple[datetime, int, EdgeEvent]] = []
    national_ids: set[str] = set()  # each person's checked once
    for number, line in numbered:
        if not line.strip():
            continue
        raw = _share(line, part, parts)
        if raw is None:
            continue  # another part's person
        result.events += 1
        try:
            edge = parse_edge_event(raw, national_ids)
        except InvalidEvent as invalid:
            result.problems.append(
                Problem(number, "invalid", None, invalid.event_id, invalid.field, invalid.reason)
            )
            continue
        if edge.recorded_at is None:
            result.problems.append(
                Problem(number, "invalid", None, str(edge.event_id), "recorded_at", NO_RECORDED_AT)
            )
        elif edge.recorded_at > until:
            result.after_until += 1
        else:
            # Sorted in UTC: instants that share a tzinfo compare without asking it.
            pending.append((edge.recorded_at.astimezone(UTC), number, edge))
    pending.sort(key=itemgetter(0, 1))
    return pending


def _share(line: bytes | str, part: int, parts: int) -> bytes | str | None:
    """The line if it belongs to `part` (`part_of`), None if it does not."""
    return line if parts == 1 or part_of(line, parts) == part else None


def _accept(
    pending: list[tuple[datetime, int, EdgeEvent]], key: str, hold: timedelta, result: Replay
) -> dict[str, list[Fact]]:
    """Each event offered to its owning service's record; the accepted ones as facts,
    by participant, in the order accepted."""
    pseudonyms: dict[str, str] = {}
    records: dict[tuple[str, str], SourceRecord] = {}
    facts: dict[str, list[Fact]] = {}
    # The line of each event held, by its record (service, participant) and event_id.
    held_lines: dict[tuple[str, str, str], int] = {}
    order = count()

    def judged(number: int, domain_event: DomainEvent, verdict: Verdict) -> None:
        if verdict == ACCEPTED:
            fact = to_fact(_stored_form(domain_event), next(order))
            facts.setdefault(domain_event.participant, []).append(fact)
        elif isinstance(verdict, Refused):
            result.problems.append(
                Problem(
                    number,
                    "refused",
                    domain_event.service,
                    str(domain_event.event_id),
                    verdict.field,
                    verdict.reason,
                )
            )

    pending.reverse()  # taken from the end, so each event is let go once it is offered
    while pending:
        recorded_at, number, edge = pending.pop()
        service = OWNERS[edge.type]
        participant = pseudonyms.get(edge.person)
        if participant is None:
            participant = pseudonyms[edge.person] = pseudonym(edge.person, key)
        record = records.get((service, participant))
        if record is None:
            record = records[service, participant] = RECORD_TYPES[service].for_replay(
                service, participant
            )
        domain_event = edge.to_domain(participant, service, recorded_at)
        verdict, settled = record.offer(domain_event, {}, hold)
        if verdict == DUPLICATE or (
            isinstance(verdict, Waiting) and _held(domain_event) in held_lines
        ):
            result.duplicates += 1
        elif isinstance(verdict, Waiting):
            held_lines[_held(domain_event)] = number
        else:
            judged(number, domain_event, verdict)
        for held, outcome in settled:
            judged(held_lines.pop(_held(held)), held, outcome)
    for record in records.values():
        for held, _, waiting in record.held.values():
            result.problems.append(
                Problem(
                    held_lines[_held(held)],
                    "held",
                    held.service,
                    str(held.event_id),
                    waiting.field,
                    waiting.reason,
                )
            )
    return facts


def _held(domain_event: DomainEvent) -> tuple[str, str, str]:
    """How a held event is known: by its record, as the source services keep them, and id."""
    return domain_event.service, domain_event.participant, str(domain_event.event_id)


def _stored_form(domain_event: DomainEvent) -> dict[str, Any]:
    """What `to_fact` reads of the domain event as outcomes stores it, its JSON form: the
    same serializer on the same values."""
    return domain_event.model_dump(
        mode="json", include={"event_id", "type", "occurred_at", "recorded_at", "source", "data"}
    )


def alert_row(journey: Journey, alert: Alert) -> tuple[tuple[Any, ...], str]:
    """One output line, and the key it is ordered by: raised_at, rule, subject, and then
    person and alert_id so that no order is left to chance."""
    recipient = recipient_at(journey, alert.raised_at)
    identity = alert_id(journey.participant, alert.condition_key)
    line = {
        "alert_id": identity,
        "rule": alert.rule,
        "person": journey.participant,
        "recipient": (
            {"coordinator": recipient.coordinator}
            if recipient.coordinator is not None
            else {"team": recipient.org_unit}
        ),
        "raised_at": _instant(alert.raised_at),
        "status": alert.status,
        "resolved_at": None if alert.resolved_at is None else _instant(alert.resolved_at),
        "resolution": alert.resolution,
        "subject": alert.subject,
    }
    order = (alert.raised_at, alert.rule, alert.subject, journey.participant, identity)
    return order, json.dumps(line, ensure_ascii=False)


def _instant(at: datetime) -> str:
    """RFC 3339 in UTC with "Z": one spelling for one instant, whatever offset it came in."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
