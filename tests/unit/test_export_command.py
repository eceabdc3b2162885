"""`los export` as a command: a synthetic cohort in, the study's four files out, checked
against counts taken straight from the file, and the same rows however many workers."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cohort import generate_cohort
from tests.unit.replaying import KEY

FILES = ["engagements.parquet", "measure_outcomes.csv", "people.parquet", "provider_outcomes.csv"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], str]:
    made = generate_cohort(400, seed=11, start=date(2023, 1, 1), end=date(2025, 6, 30))
    events = tmp_path_factory.mktemp("cohort") / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in made.events), encoding="utf-8")
    return events, made.events, made.until.isoformat()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def exported(cohort: tuple[Path, list[dict[str, Any]], str], out: Path, workers: str) -> Path:
    events, _, until = cohort
    args = ["export", str(events), "--until", until, "--study-key", KEY, "--out", str(out)]
    result = invoke(*args, "--workers", workers)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == FILES
    return out


def test_the_rows_are_the_file_s_people_and_engagements(
    cohort: tuple[Path, list[dict[str, Any]], str], tmp_path: Path
) -> None:
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
    cohort: tuple[Path, list[dict[str, Any]], str], tmp_path: Path
) -> None:
    out = exported(cohort, tmp_path / "study", "1")
    events, _, until = cohort
    alerts = tmp_path / "alerts.jsonl"
    args = ["--until", until, "--pseudonym-key", KEY, "--out", str(alerts), "--workers", "1"]
    assert invoke("replay", str(events), *args).exit_code == 0
    raised = Counter(json.loads(line)["person"] for line in alerts.read_text().splitlines())
    people = pq.read_table(out / "people.parquet").to_pylist()
    assert {row["person"]: row["alerts"] for row in people if row["alerts"]} == raised


def test_the_measure_table_counts_each_person_once_and_publishes_no_small_cell(
    cohort: tuple[Path, list[dict[str, Any]], str], tmp_path: Path
) -> None:
    out = exported(cohort, tmp_path / "study", "1")
    engagements = pq.read_table(out / "engagements.parquet").to_pylist()
    ended = Counter(
        (system, code)
        for person, system, code in {
            (row["person"], row["system"], row["code"])
            for row in engagements
            if row["kind"] == "measure" and row["ended_at"] is not None
        }
    )
    with (out / "measure_outcomes.csv").open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    assert {(row["system"], row["measure_code"]) for row in rows} == set(ended)
    published = [row for row in rows if row["people"]]
    assert published
    for row in published:
        assert int(row["people"]) == ended[row["system"], row["measure_code"]]
    for row in rows:
        counts = [row[name] for name in ("people", "followed_182d", "in_work_182d")]
        assert all(int(count) >= 5 for count in counts if count)
        if row["in_work_182d"]:
            assert int(row["followed_182d"]) - int(row["in_work_182d"]) >= 5


def test_the_same_rows_with_several_workers(
    cohort: tuple[Path, list[dict[str, Any]], str], tmp_path: Path
) -> None:
    one = exported(cohort, tmp_path / "one", "1")
    three = exported(cohort, tmp_path / "three", "3")
    for name in FILES:
        if name.endswith(".parquet"):
            assert pq.read_table(one / name).equals(pq.read_table(three / name))
        else:
            assert (one / name).read_bytes() == (three / name).read_bytes()


def test_until_must_be_rfc_3339_with_an_offset(
    cohort: tuple[Path, list[dict[str, Any]], str], tmp_path: Path
) -> None:
    events, _, _ = cohort
    args = ["--until", "2026-01-01T00:00:00", "--study-key", KEY, "--out", str(tmp_path)]
    result = CliRunner().invoke(app, ["export", str(events), *args])
    assert result.exit_code == 2
    assert "--until" in result.output
