"""What Los's own code spends on an event, step by step, each step measured alone.

The ingest's CPU per event (all processes, in the run) stands beside the raw pipe's. This
says what the logic in between costs by itself: the steps a source service and outcomes
take for every event, run in one process over a sample of the run's cohort, best of a
few passes, with the cycle collector paused. No server, driver, gRPC, bus or thread
hand-off is in these figures: the ingest's CPU per event beyond their sum goes there.

A step taken once per record (a new source record's or journey's `Created` event) is
given per event: its cost per record in the sample times the records per event of the
whole cohort (the sample, its first lines, holds more new people than the rest).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from bench.common import Figure
from services.journey.application import JourneyApplication
from services.kernel.events import DomainEvent, InvalidEvent, owner, parse_edge_event
from services.kernel.ids import pseudonym
from services.kernel.keys import Keys, opened, seal, unseal
from services.kernel.settings import RuleSettings, Settings
from services.kernel.source import SourceRecord
from services.outcomes.application import JourneyLog
from services.outcomes.journey import Journey
from services.outcomes.replay import RECORD_TYPES, collector_paused
from services.outcomes.rules import evaluate

SAMPLE = 20_000  # lines of the cohort
PASSES = 5
HOLD = RuleSettings().lifecycle_hold
TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
Step = tuple[str, Callable[[], Any], Callable[[Any], object]]
LABELS = {
    "read_edge": "a source service reads the edge event (pydantic, the national id included)",
    "national_id": "of which checking the national id (stdnum, birth date)",
    "pseudonym": "its pseudonym (HMAC-SHA256)",
    "to_domain": "its domain event (pydantic `model_construct`)",
    "offer": "the source record takes it (dedupe, lifecycle, JSON sealed, the library's event)",
    "source_stored": "the library's stored form of that event (mapper, orjson)",
    "created": "new records' and journeys' `Created` events, stored form",
    "unseal": "outcomes unseals it (base64, AES-GCM)",
    "read_domain": "outcomes reads the domain event (pydantic validation, JSON values)",
    "fact": "the journey log takes the fact (as sealed, the library's event, `Fact`, stored form)",
    "rules": "every rule over each journey, once (live, a journey is judged again as it grows)",
}


def _seconds(prepare: Callable[[], Any], step: Callable[[Any], object], passes: int) -> float:
    """The least CPU time of `step(prepare())` in `passes` passes (`prepare` not timed)."""
    best = float("inf")
    for _ in range(passes):
        state = prepare()
        started = time.process_time()
        step(state)
        best = min(best, time.process_time() - started)
    return best


def _lines(path: Path, sample: int) -> list[str]:
    """The valid lines among the first `sample` of the cohort file."""
    valid: list[str] = []
    with path.open(encoding="utf-8") as cohort:
        for line in islice(cohort, sample):
            try:
                parse_edge_event(line)
            except InvalidEvent:
                continue
            valid.append(line)
    return valid


def measure(path: Path, sample: int = SAMPLE, passes: int = PASSES) -> list[Figure]:
    """Each step's CPU per event over the first `sample` lines of the cohort at `path`."""
    with collector_paused():
        lines = _lines(path, sample)
        steps, records = _steps(lines)
        seconds = {key: _seconds(prepare, step, passes) for key, prepare, step in steps}
    seconds["national_id"] = seconds["read_edge"] - seconds.pop("read_edge_known_ids")
    seconds["created"] *= _records_per_event(path) * len(lines) / records
    figures = [
        Figure(
            key=f"budget_{key}",
            label=f"Alone, per event: {LABELS[key]}",
            value=round(1e6 * seconds[key] / len(lines), 1),
            unit="µs",
            note=f"steps measured alone: {len(lines):,} events, best of {passes} passes",
        )
        for key in LABELS
    ]
    figures.append(
        Figure(
            key="budget_total",
            label="Alone, per event: all these steps (the national id counted once)",
            value=round(sum(f.value for f in figures if f.key != "budget_national_id"), 1),
            unit="µs",
        )
    )
    return figures


def _records_per_event(path: Path) -> float:
    """Source records and journeys made per event over the whole cohort file."""
    lines = 0
    records: set[tuple[str, str]] = set()
    with path.open("rb") as cohort:
        for line in cohort:
            event = orjson.loads(line)
            lines += 1
            records.add((owner(event["type"]), event["person"]))
            records.add(("outcomes", event["person"]))
    return len(records) / lines


def _steps(lines: list[str]) -> tuple[list[Step], int]:
    """(key, prepare, step) of every step over the events in `lines`, and how many
    records and journeys those events make."""
    key = Settings().pseudonym_key.get_secret_value()
    received_at = datetime.now(UTC)
    edges = [parse_edge_event(line) for line in lines]
    owners = [owner(edge.type) for edge in edges]
    people = [pseudonym(edge.person, key) for edge in edges]
    domain = [
        edge.to_domain(person, service, received_at)
        for edge, person, service in zip(edges, people, owners, strict=True)
    ]
    bodies = [event.model_dump_json() for event in domain]
    facts = [DomainEvent.model_validate_json(body).model_dump(mode="json") for body in bodies]
    mapper = JourneyApplication(env={"TRANSCODER_TOPIC": "services.kernel.store:Transcoder"}).mapper
    keys = Keys().for_writing(set(people))
    sealed = [
        (e.participant, seal(keys[e.participant], e.participant, b.encode()))
        for e, b in zip(domain, bodies, strict=True)
    ]
    known_ids = {edge.person for edge in edges}
    records = sorted(set(zip(owners, people, strict=True)))
    rules = Settings().rules

    def new_records() -> dict[tuple[str, str], SourceRecord]:
        made = {(s, p): RECORD_TYPES[s](s, p) for s, p in records}
        for record in made.values():
            record.collect_events()
        return made

    def offer(made: dict[tuple[str, str], SourceRecord]) -> list[Any]:
        accepted: list[Any] = []
        with opened(keys):
            for event, service in zip(domain, owners, strict=True):
                record = made[service, event.participant]
                record.offer(event, TRACE, HOLD)
                accepted += record.collect_events()
        return accepted

    def new_logs() -> dict[str, JourneyLog]:
        made = {person: JourneyLog(person) for person in set(people)}
        for log in made.values():
            log.collect_events()
        return made

    def record_facts(made: dict[str, JourneyLog]) -> dict[str, JourneyLog]:
        for fact, (_, text) in zip(facts, sealed, strict=True):
            log = made[fact["participant"]]
            log.record(fact, TRACE, text)  # as sealed on the stream, as ingest gives it
            store(log.collect_events())
        return made

    def store(events: Iterable[Any]) -> None:
        for event in events:
            mapper.to_stored_event(event)

    def create(_: None) -> None:
        for service, person in records:
            store(RECORD_TYPES[service](service, person).collect_events())
        for person in set(people):
            store(JourneyLog(person).collect_events())

    def journeys() -> list[Journey]:
        return [log.journey() for log in record_facts(new_logs()).values()]

    def judge(whole: list[Journey]) -> None:
        until = max(fact.recorded_at for journey in whole for fact in journey.facts)
        for journey in whole:
            evaluate(journey, until, rules)

    def read_edge(_: None) -> None:
        for line in lines:
            parse_edge_event(line)

    def read_edge_known_ids(_: None) -> None:
        for line in lines:
            parse_edge_event(line, known_ids)

    def pseudonyms(_: None) -> None:
        for edge in edges:
            pseudonym(edge.person, key)

    def to_domain(_: None) -> None:
        for edge, person, service in zip(edges, people, owners, strict=True):
            edge.to_domain(person, service, received_at)

    def unsealed(_: None) -> None:
        for person, text in sealed:
            unseal(keys[person], person, text)

    def read_domain(_: None) -> None:
        for body in bodies:
            DomainEvent.model_validate_json(body).model_dump(mode="json")

    def nothing() -> None:
        return None

    steps: list[Step] = [
        ("read_edge", nothing, read_edge),
        ("read_edge_known_ids", nothing, read_edge_known_ids),
        ("pseudonym", nothing, pseudonyms),
        ("to_domain", nothing, to_domain),
        ("offer", new_records, offer),
        ("source_stored", lambda: offer(new_records()), store),
        ("created", nothing, create),
        ("unseal", nothing, unsealed),
        ("read_domain", nothing, read_domain),
        ("fact", new_logs, record_facts),
        ("rules", journeys, judge),
    ]
    return steps, len(records) + len(set(people))
