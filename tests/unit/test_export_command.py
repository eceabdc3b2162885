"""`los export` as a command: a synthetic cohort in, the study's four files out, checked
against counts taken straight from the file, and the same rows however many workers."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cohort import generate_cohort
from services.kernel.settings import get_settings
from services.outcomes import export as export_module
from tests.unit.replaying import KEY

COUNTS = ("people", "followed_182d", "in_work_182d")
Cohort = tuple[Path, list[dict[str, Any]], str]  # the file, its events, its --until
FILES = ["engagements.parquet", "measure_outcomes.csv", "people.parquet", "provider_outcomes.csv"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    made = generate_cohort(400, seed=11, start=date(2023, 1, 1), end=date(2025, 6, 30))
    events = tmp_path_factory.mktemp("cohort") / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in made.events), encoding="utf-8")
    return events, made.events, made.until.isoformat()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def exported(cohort: Cohort, out: Path, workers: str) -> Path:
    events, _, until = cohort
    args = ["export", str(events), "--until", until, "--study-key", KEY, "--out", str(out)]
    result = invoke(*args, "--workers", workers)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == FILES
    return out


def test_the_rows_are_the_file_s_people_and_engagements(cohort: Cohort, tmp_path: Path) -> None:
    out = exported(cohort, tmp_path / "study", "1")
    _, events, _ = cohort
    starts = {
        (e["person"], e["source"]["system"], e["data"]["measure_id"])
        for e in events
        if e["type"] == "measure.started"
    } | {
        (e["person"], "", e["data"]["placement_id"])
        for e in events
        if e["type"] == "placement.started"
    }
    engagements = pq.read_table(out / "engagements.parquet").to_pylist()
    people = pq.read_table(out / "people.parquet").to_pylist()
    assert len(engagements) == len(starts)
    assert len(people) == len({e["person"] for e in events})
    assert Counter(row["kind"] for row in engagements) == Counter(
        "placement" if system == "" else "measure" for _, system, _ in starts
    )
    contents = b"".join(path.read_bytes() for path in out.iterdir())
    assert not [e["person"] for e in events if e["person"].encode() in contents]


def test_the_people_are_those_los_replay_names_with_the_same_key(
    cohort: Cohort, tmp_path: Path
) -> None:
    out = exported(cohort, tmp_path / "study", "1")
    events, _, until = cohort
    alerts = tmp_path / "alerts.jsonl"
    args = ["--until", until, "--pseudonym-key", KEY, "--out", str(alerts), "--workers", "1"]
    assert invoke("replay", str(events), *args).exit_code == 0
    raised = Counter(json.loads(line)["person"] for line in alerts.read_text().splitlines())
    people = pq.read_table(out / "people.parquet").to_pylist()
    assert {row["person"]: row["alerts"] for row in people if row["alerts"]} == raised


def ended_by_measure(
    events: list[dict[str, Any]], until: datetime
) -> dict[tuple[str, str], dict[str, datetime]]:
    """The people whose participation in each measure ended by `until`, with their first
    end, worked out from the events themselves: a measure ends at its own end, or at a
    dropout after its start."""
    starts: dict[tuple[str, str, str], tuple[datetime, str]] = {}
    ends: dict[tuple[str, str, str], datetime] = {}
    dropouts: dict[str, list[datetime]] = {}
    for e in events:
        at = datetime.fromisoformat(e["occurred_at"])
        if e["type"] == "participant.dropped_out":
            dropouts.setdefault(e["person"], []).append(at)
        elif e["type"] in ("measure.started", "measure.ended"):
            key = (e["person"], e["source"]["system"], e["data"]["measure_id"])
            if e["type"] == "measure.started" and (key not in starts or at < starts[key][0]):
                starts[key] = (at, e["data"]["measure_code"])
            elif e["type"] == "measure.ended":
                ends[key] = min(ends.get(key, at), at)
    ended: dict[tuple[str, str], dict[str, datetime]] = {}
    for (person, system, measure_id), (start, code) in starts.items():
        own = ends.get((person, system, measure_id))
        candidates = [d for d in dropouts.get(person, []) if d >= start] + ([own] if own else [])
        if candidates and min(candidates) <= until:
            first = ended.setdefault((system, code), {})
            first[person] = min(first.get(person, min(candidates)), min(candidates))
    return ended


def test_the_measure_table_counts_each_person_once_and_providers_add_up_to_it(
    cohort: Cohort, tmp_path: Path
) -> None:
    out = exported(cohort, tmp_path / "study", "1")
    _, events, until = cohort
    clock = datetime.fromisoformat(until)
    ended = ended_by_measure(events, clock)
    measures = {(row["system"], row["measure_code"]): row for row in table(out, "measure")}
    assert set(measures) == set(ended)
    published = [key for key, row in measures.items() if row["followed_182d"]]
    assert published
    # Followed: at most those who ended 182 days before --until; at least those of them
    # whose journey never closed as moved, deceased or transferred out.
    leaving = {"MOVED", "DECEASED", "TRANSFERRED_OUT"}
    gone = {
        e["person"]
        for e in events
        if e["type"] == "journey.closed" and e["data"]["reason"] in leaving
    }
    for key in published:
        long_ago = {p for p, end in ended[key].items() if end + timedelta(days=182) <= clock}
        assert int(measures[key]["people"]) == len(ended[key])
        followed = int(measures[key]["followed_182d"])
        assert len(long_ago - gone) <= followed <= len(long_ago)
    providers = table(out, "provider")
    assert providers
    for key, row in measures.items():
        rows = [r for r in providers if (r["system"], r["measure_code"]) == key]
        if rows:
            assert [sum(int(r[name]) for r in rows) for name in COUNTS] == [
                int(row[name]) for name in COUNTS
            ]


def table(out: Path, name: str) -> list[dict[str, str]]:
    with (out / f"{name}_outcomes.csv").open(encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


def test_the_same_rows_with_several_workers(cohort: Cohort, tmp_path: Path) -> None:
    one = exported(cohort, tmp_path / "one", "1")
    three = exported(cohort, tmp_path / "three", "3")
    for name in FILES:
        if name.endswith(".parquet"):
            assert pq.read_table(one / name).equals(pq.read_table(three / name))
        else:
            assert (one / name).read_bytes() == (three / name).read_bytes()


def test_a_file_exported_a_share_at_a_time_holds_the_same_rows_and_tables(
    cohort: Cohort, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "FEWEST_SHARES", 1)
    whole = exported(cohort, tmp_path / "whole", "1")
    monkeypatch.setattr(export_module, "FEWEST_SHARES", 7)
    shared = exported(cohort, tmp_path / "shared", "1")
    # Each share's rows are written as it is done: a row group each.
    assert pq.ParquetFile(whole / "people.parquet").num_row_groups == 1
    assert pq.ParquetFile(shared / "people.parquet").num_row_groups == 7
    for name, key in (
        ("engagements.parquet", ("person", "started_at", "kind", "engagement_id")),
        ("people.parquet", ("person",)),
    ):
        rows = [sorted(pq.read_table(out / name).to_pylist(), key=itemgetter(*key))
                for out in (whole, shared)]  # fmt: skip
        assert rows[0] == rows[1]
        assert len(rows[0]) > 400 / 2
    for name in ("measure_outcomes.csv", "provider_outcomes.csv"):
        assert (whole / name).read_bytes() == (shared / name).read_bytes()


def test_until_must_be_rfc_3339_with_an_offset(cohort: Cohort, tmp_path: Path) -> None:
    events, _, _ = cohort
    args = ["--until", "2026-01-01T00:00:00", "--study-key", KEY, "--out", str(tmp_path)]
    result = CliRunner().invoke(app, ["export", str(events), *args])
    assert result.exit_code == 2
    assert "--until" in result.output


def test_the_platform_s_own_pseudonym_key_is_no_study_key(cohort: Cohort, tmp_path: Path) -> None:
    events, _, until = cohort
    platform_key = get_settings().pseudonym_key.get_secret_value()
    args = ["--until", until, "--study-key", platform_key, "--out", str(tmp_path / "study")]
    result = CliRunner().invoke(app, ["export", str(events), *args])
    assert result.exit_code == 2
    assert "LOS_PSEUDONYM_KEY" in result.output
    assert not (tmp_path / "study").exists()
