"""`los export`: what evaluators study, from the same replay of a file of edge events as
`los replay` (CONTRACT §5), or of the journey store as `los replay --store` (`history.py`:
recorded first, each person under the study's pseudonym of their platform pseudonym),
with people pseudonymised under the study's own key.

The output folder gets:

- `engagements.parquet`: pseudonymous microdata, one row per measure or placement known
  at `until`: who, which source system, its code and provider (or employer), when it
  started and ended, what ended it and whether the end was unplanned, the planned end, and
  for a placement what its six-month check said;
- `people.parquet`: one row per person: referral, first and latest triage, coordinator,
  first measure and placement, the latest journey's closing, alerts raised;
- `measure_outcomes.csv` and `provider_outcomes.csv`: aggregates fit to publish, per
  source system and measure code, and per provider of it: how many people's
  participation ended, how many of those followed for 182 days were in work within them,
  and the median days from the end until in work, with no cell that gives away fewer
  than 5 people (`tables.py`; DESIGN, security and privacy).

The readings taken are written down in docs/contract-readings.md.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from operator import itemgetter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.kernel.ids import pseudonym
from services.kernel.settings import RuleSettings
from services.outcomes.domain import (
    COORDINATOR_ASSIGNED,
    DROPPED_OUT,
    REFERRED,
    SIX_MONTH_CHECKED,
    TRIAGED,
    EngagementKey,
    Fact,
)
from services.outcomes.history import Ids, begin, id_ranges, journeys, judged
from services.outcomes.journey import (
    ENGAGEMENT_EVENTS,
    Journey,
    KnownJourney,
    is_unplanned_end,
)
from services.outcomes.replay import Replay, collector_paused, replayed
from services.outcomes.rules import Alert
from services.outcomes.shares import in_order, in_parts, shares_of
from services.outcomes.tables import (
    FIGURES,
    Measure,
    Participation,
    Row,
    left_sight,
    measure_table,
    participations,
    provider_table,
)

# The microdata's columns: instants in UTC, dates as dates.
INSTANT: pa.DataType = pa.timestamp("us", tz="UTC")
ENGAGEMENTS = pa.schema(
    [
        ("person", pa.string()),
        ("kind", pa.string()),
        ("system", pa.string()),
        ("engagement_id", pa.string()),
        ("code", pa.string()),
        ("provider", pa.string()),
        ("started_at", INSTANT),
        ("ended_at", INSTANT),
        ("ended_by", pa.string()),
        ("unplanned", pa.bool_()),
        ("end_status", pa.string()),
        ("end_reason", pa.string()),
        ("planned_end", pa.date32()),
        ("six_month_status", pa.string()),
        ("six_month_evidence", pa.string()),
    ]
)
PEOPLE = pa.schema(
    [
        ("person", pa.string()),
        ("referred_at", INSTANT),
        ("triaged_at", INSTANT),
        ("need_group", pa.string()),
        ("main_goal", pa.string()),
        ("needs_coordinator", pa.bool_()),
        ("coordinator_assigned_at", INSTANT),
        ("first_measure_at", INSTANT),
        ("first_placement_at", INSTANT),
        ("closed_at", INSTANT),
        ("closing_reason", pa.string()),
        ("alerts", pa.int32()),
    ]
)
# How the aggregate tables name the engagement columns they are grouped by.
HEADERS = {"code": "measure_code"}


@dataclass
class Export:
    """The rows of a study's microdata, and what the replay skipped and counted."""

    engagements: list[Row] = field(default_factory=list)
    people: list[Row] = field(default_factory=list)
    replay: Replay = field(default_factory=Replay)

    def add(self, journey: Journey, alerts: Sequence[Alert], until: datetime) -> None:
        """A person's rows: their journey as known at `until`, and the alerts judged on it."""
        facts = journey.known_at(until)
        known = KnownJourney(facts)
        self.engagements += engagement_rows(journey.participant, facts, known)
        self.people.append(person_row(journey.participant, facts, known, alerts))

    def by_person(self) -> Export:
        """The same, each person's rows together, by person."""
        self.engagements.sort(key=itemgetter("person", "started_at", "kind", "engagement_id"))
        self.people.sort(key=itemgetter("person"))
        return self


def export(
    numbered: Iterable[tuple[int, bytes | str]],
    until: datetime,
    key: str,
    rules: RuleSettings,
    part: int = 0,
    parts: int = 1,
) -> Export:
    """The microdata of lines (with their line numbers, as `in_parts` gives them) as known
    at `until` (people of share `part` of `parts`), each person's rows together, by
    person."""
    result = Export()
    for journey, alerts in replayed(numbered, until, key, rules, result.replay, part, parts):
        result.add(journey, alerts, until)
    return result.by_person()


def export_range(
    database_url: str, until: datetime, rules: RuleSettings, study_key: str, last: int, ids: Ids
) -> Export:
    """The microdata of the journeys in the store whose ids are in `ids`, as stored up to
    notification `last` and known at `until`, each person under `study_key`'s pseudonym of
    their platform pseudonym (as `los replay --store` names them); by person."""
    result = Export()
    as_person = partial(pseudonym, key=study_key)
    with collector_paused():
        for stored in journeys(database_url, ids, last):
            if (found := judged(stored, until, rules, result.replay, as_person)) is not None:
                result.add(*found, until)
    return result.by_person()


# A file is exported a share of its people at a time, as `los replay` replays a large
# file, so that only the aggregate tables' inputs are held for everyone: a share's rows
# go to the Parquet files as it is done, in the shares' order. At least this many
# shares, however small the file, so that processes have shares to take and the files
# are the same for any number of processes.
FEWEST_SHARES = 4
# A store is exported a range of its journeys at a time (`history.id_ranges`), in at least
# this many, for the same reasons and so that as many processes have ranges to take.
STORE_RANGES = 16


@dataclass
class Written:
    """What an export wrote, and what its replay skipped and counted."""

    files: list[Path]
    people: int
    engagements: int
    replay: Replay


def export_file(
    path: Path, until: datetime, key: str, rules: RuleSettings, out: Path, workers: int = 1
) -> Written:
    """Export a file into the folder `out`, its people shared out over `workers`
    processes; the files do not depend on how many."""
    parts = max(shares_of(path), FEWEST_SHARES)
    return write(in_parts(export, path, until, key, rules, workers, parts), until, out)


def export_store(
    database_url: str,
    until: datetime,
    study_key: str,
    rules: RuleSettings,
    out: Path,
    workers: int = 1,
) -> Written:
    """Export the journey store at `database_url`, as known at `until`, for the study of
    `study_key` into the folder `out` (the ranges of journeys shared out over `workers`
    processes; the files do not depend on how many). Recorded first, as `los replay
    --store` is; `NoStore` if there is no store."""
    last = begin(database_url, until, study_key, "export")
    run = partial(export_range, database_url, until, rules, study_key, last)
    return write(in_order(run, id_ranges(last, STORE_RANGES), workers), until, out)


def write(parts: Iterable[Export], until: datetime, out: Path) -> Written:
    """The parts' rows into the folder `out`, each part's as it comes, and the aggregate
    tables of them all. The files take their names once all are written: an export that
    fails while it writes leaves none half-written, and an earlier export's as they were."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".writing-") as folder:
        writing = Path(folder)
        measures: dict[Measure, list[Participation]] = {}
        replays: list[Replay] = []
        people = engagements = 0
        with (
            pq.ParquetWriter(writing / "engagements.parquet", ENGAGEMENTS) as engagement_file,
            pq.ParquetWriter(writing / "people.parquet", PEOPLE) as people_file,
        ):
            for part in parts:
                engagement_file.write_table(pa.Table.from_pylist(part.engagements, ENGAGEMENTS))
                people_file.write_table(pa.Table.from_pylist(part.people, PEOPLE))
                ended = participations(part.engagements, until, left_sight(part.people))
                for measure, group in ended.items():
                    measures.setdefault(measure, []).extend(group)
                replays.append(part.replay)
                people += len(part.people)
                engagements += len(part.engagements)
        names = ["engagements.parquet", "people.parquet"]
        names += [path.name for path in write_tables(measures, until, writing)]
        files = [(writing / name).replace(out / name) for name in names]
    return Written(files, people, engagements, Replay.merge(replays))


def write_tables(
    measures: dict[Measure, list[Participation]], until: datetime, out: Path
) -> list[Path]:
    """The aggregate tables, fit to publish, in the folder `out`; their paths."""
    tables = {
        "measure_outcomes.csv": (("system", "code"), measure_table(measures, until)),
        "provider_outcomes.csv": (("system", "code", "provider"), provider_table(measures, until)),
    }
    for name, (by, rows) in tables.items():
        columns = [*by, *FIGURES, "suppressed"]
        with (out / name).open("w", encoding="utf-8", newline="") as sink:
            table = csv.writer(sink)
            table.writerow([HEADERS.get(column, column) for column in columns])
            table.writerows([row[column] for column in columns] for row in rows)
    return [out / name for name in tables]


def engagement_rows(participant: str, facts: Sequence[Fact], known: KnownJourney) -> list[Row]:
    """One row per engagement the facts (in knowledge order) make, as the rules read them
    (`known` is what the facts say)."""
    starts: dict[EngagementKey, Fact] = {}  # the start that counts: the earliest
    ends: dict[tuple[EngagementKey, datetime], list[Fact]] = {}
    checks: dict[str, Fact] = {}  # the latest known six-month check of each placement
    dropouts: dict[datetime, Fact] = {}
    for fact in facts:
        if fact.type == SIX_MONTH_CHECKED:
            checks[str(fact.data.get("placement_id"))] = fact
        elif fact.type == DROPPED_OUT:
            dropouts.setdefault(fact.occurred_at, fact)
        elif (named := _engagement(fact)) is not None:
            engagement_key, is_start = named
            if not is_start:
                ends.setdefault((engagement_key, fact.occurred_at), []).append(fact)
            elif (
                engagement_key not in starts
                or fact.occurred_at < starts[engagement_key].occurred_at
            ):
                starts[engagement_key] = fact
    planned = {
        (plan.system, plan.measure_id): max(plan.declared).day for plan in known.measure_plans()
    }
    rows = []
    for engagement in known.engagements():
        engagement_key = (engagement.kind, engagement.system, engagement.id)
        start = starts[engagement_key]
        end = None
        if engagement.end is not None:
            own_ends = ends.get((engagement_key, engagement.end), [])
            end = _end_of(engagement.end, engagement.unplanned, own_ends, dropouts)
        check = checks.get(engagement.id) if engagement.kind == "placement" else None
        evidence = check.data.get("evidence") if check else None
        day = planned.get((engagement.system, engagement.id))
        rows.append(
            {
                "person": participant,
                "kind": engagement.kind,
                "system": start.system,
                "engagement_id": engagement.id,
                "code": start.data.get("measure_code" if engagement.kind == "measure" else "kind"),
                "provider": start.data.get(
                    "provider" if engagement.kind == "measure" else "employer"
                ),
                "started_at": engagement.start,
                "ended_at": engagement.end,
                "ended_by": end.type if end else None,
                "unplanned": engagement.unplanned if end else None,
                "end_status": end.data.get("status") if end else None,
                "end_reason": end.data.get("reason") if end else None,
                "planned_end": date.fromisoformat(day) if day else None,
                "six_month_status": check.data.get("status") if check else None,
                "six_month_evidence": evidence.get("source")
                if isinstance(evidence, dict)
                else None,
            }
        )
    return rows


def _engagement(fact: Fact) -> tuple[EngagementKey, bool] | None:
    """The engagement a fact starts or ends (keyed as `KnownJourney` keys it), and whether
    it starts it."""
    named = ENGAGEMENT_EVENTS.get(fact.type)
    if named is None:
        return None
    kind, is_start, id_field = named
    engagement_id = fact.data.get(id_field)
    if not isinstance(engagement_id, str):
        return None
    return (kind, fact.system if kind == "measure" else "", engagement_id), is_start


def _end_of(
    at: datetime, unplanned: bool, own_ends: list[Fact], dropouts: dict[datetime, Fact]
) -> Fact:
    """The fact that ended an engagement at `at`: its own end then (of two, the one that
    decided whether the end was unplanned), or else the dropout then."""
    for fact in own_ends:
        if is_unplanned_end(fact) == unplanned:
            return fact
    return dropouts[at]


def person_row(
    participant: str, facts: Sequence[Fact], known: KnownJourney, alerts: Sequence[Alert]
) -> Row:
    """The person's journey in one row: first referral, triage and assignment, what the
    latest triage says, first measure and placement, the latest journey's closing
    (`known` is what the facts say)."""
    by_type: dict[str, list[Fact]] = {}
    for fact in sorted(facts, key=lambda fact: (fact.occurred_at, fact.order)):
        by_type.setdefault(fact.type, []).append(fact)
    triages = by_type.get(TRIAGED, [])
    latest = triages[-1].data if triages else {}
    engagements = known.engagements()
    spans = known.spans()
    last = spans[-1] if spans else None
    reasons = known.closing_reasons(last) if last else frozenset()
    return {
        "person": participant,
        "referred_at": _first(by_type, REFERRED),
        "triaged_at": _first(by_type, TRIAGED),
        "need_group": latest.get("need_group"),
        "main_goal": latest.get("main_goal"),
        "needs_coordinator": latest.get("needs_coordinator"),
        "coordinator_assigned_at": _first(by_type, COORDINATOR_ASSIGNED),
        "first_measure_at": min(
            (e.start for e in engagements if e.kind == "measure"), default=None
        ),
        "first_placement_at": min(
            (e.start for e in engagements if e.kind == "placement"), default=None
        ),
        "closed_at": last.closed_at if last else None,
        "closing_reason": ",".join(sorted(reasons)) or None,
        "alerts": len(alerts),
    }


def _first(by_type: dict[str, list[Fact]], event_type: str) -> datetime | None:
    facts = by_type.get(event_type)
    return facts[0].occurred_at if facts else None
