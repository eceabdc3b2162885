"""`bench.budget`: what each step of an event costs, measured alone."""

from datetime import date
from pathlib import Path

from bench.budget import LABELS, measure
from services.cohort import generate_cohort, write_jsonl


def test_every_step_is_measured_and_the_total_counts_the_national_id_once(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort.jsonl"
    write_jsonl(
        cohort, generate_cohort(40, 7, start=date(2024, 1, 1), end=date(2024, 12, 31)).events
    )
    figures = {f.key: f.value for f in measure(cohort, sample=200, passes=1)}
    assert list(figures) == [f"budget_{key}" for key in LABELS] + ["budget_total"]
    # The national id's share is a difference of two timings: noise can make it negative.
    counted = {k: v for k, v in figures.items() if k not in ("budget_total", "budget_national_id")}
    assert all(value > 0 for value in counted.values()), counted
    assert figures["budget_national_id"] < figures["budget_read_edge"]
    assert abs(figures["budget_total"] - sum(counted.values())) < 0.05
