"""`los replay` as a command (CONTRACT §5): its file in, its alerts out, what it skipped
reported on stderr, and the same bytes for the same input and key however many workers."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from services.cli.main import app
from services.cohort import generate_cohort
from tests.unit.replaying import ANA, KEY, history, outline, z


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["replay", *args], catch_exceptions=False)


def test_the_command_writes_alerts_and_reports_skipped_lines(tmp_path: Path) -> None:
    lines = [
        *history(ANA.ended("m1", 100, status="AVBRUTT")),
        "{}",
        ANA.ended("m8", 120),
        ANA.ended("m1", 121),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "alerts.jsonl"
    args = [str(events), "--until", "2025-07-25T08:00:00Z", "--pseudonym-key", KEY]
    result = invoke(*args, "--out", str(out), "--workers", "1")
    assert result.exit_code == 0, result.output
    [alert] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert outline(alert) == ("m1", z(107), "open", None, None)
    m8, m1 = (json.loads(line)["event_id"] for line in lines[-2:])
    stderr = result.stderr.splitlines()
    assert stderr[:3] == [
        "line 4: invalid: event without a valid event_id: event_id: is required",
        f"line 5: held by journey: event {m8}: data.measure_id:"
        " held until the start of measure m8 comes",
        f"line 6: refused by journey: event {m1}: data.measure_id: measure m1 has already ended",
    ]
    assert re.fullmatch(
        r"6 events: 1 invalid, 1 refused, 1 held, 0 duplicates, 0 recorded after --until;"
        r" 1 alerts in [\d.]+ s = [\d,]+ events/s",
        stderr[3],
    )
    to_stdout = invoke(*args, "--workers", "1")
    assert to_stdout.stdout == out.read_text(encoding="utf-8")
    # A study key kept in the environment for `--store` does not stop a file's replay.
    with_study = CliRunner(env={"LOS_STUDY_KEY": "s" * 32}).invoke(
        app, ["replay", *args, "--workers", "1"], catch_exceptions=False
    )
    assert with_study.stdout == to_stdout.stdout


def test_the_same_input_and_key_give_byte_identical_output(tmp_path: Path) -> None:
    cohort = generate_cohort(200, seed=4, start=date(2024, 1, 1), end=date(2025, 6, 30))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in cohort.events), encoding="utf-8")
    until = cohort.until.isoformat()
    outputs = []
    for run_number, workers in enumerate(("1", "1", "3")):
        out = tmp_path / f"alerts-{run_number}.jsonl"
        result = invoke(
            str(events), "--until", until, "--pseudonym-key", KEY, "--out", str(out),
            "--workers", workers,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].count(b"\n") > 10


def test_until_must_be_rfc_3339_with_an_offset(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(ANA.referred(0) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["replay", str(events), "--until", "2026-01-01T00:00:00", "--pseudonym-key", KEY]
    )
    assert result.exit_code == 2
    assert "--until" in result.output
