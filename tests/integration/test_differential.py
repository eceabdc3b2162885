"""A generated cohort sent through the live services and through `los replay` gives the
same alerts (CONTRACT §3: importing history gives the alerts `los replay` gives); and
replaying the journey store the live services filled (`los replay --store`) gives the
replay of the file, line for line, at any instant, and exporting it for a study (`los
export --store`) the export of the file."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cohort import generate_cohort, write_jsonl
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.settings import Settings, get_settings
from services.outcomes import history
from services.outcomes.export import export_file, export_store
from services.outcomes.history import replay_store
from services.outcomes.replay import replay_file
from tests.integration.test_crash_recovery import import_file, settle
from tests.support import los

PEOPLE = 2000
STUDY = "a-study's-own-key-of-32-bytes-or-more"


def live_alerts(database_url: str) -> tuple[datetime, set[tuple[str, ...]]]:
    """Outcomes' clock and its alerts, read in one snapshot."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute("SELECT clock FROM outcomes.rule_state").fetchone()
        assert row is not None
        return row[0], alerts_in(conn)


def alerts_in(conn: psycopg.Connection[Any]) -> set[tuple[str, ...]]:
    """The alerts outcomes raised: rule, person, raised_at, status, resolution."""
    rows = conn.execute(
        "SELECT rule, participant, raised_at, status, resolution FROM outcomes.alerts"
    ).fetchall()
    return {
        (rule, person, raised_at.astimezone(UTC).isoformat(), status, resolution or "")
        for rule, person, raised_at, status, resolution in rows
    }


def replayed_alerts(path: Path, until: datetime, key: str) -> set[tuple[str, ...]]:
    result = replay_file(path, until, key, Settings().rules)
    alerts = [json.loads(line) for line in result.alerts]
    return {
        (
            a["rule"],
            a["person"],
            datetime.fromisoformat(a["raised_at"]).isoformat(),
            a["status"],
            a["resolution"] or "",
        )
        for a in alerts
    }


@pytest.mark.servers
async def test_live_services_and_replay_raise_the_same_alerts(
    real_servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = generate_cohort(PEOPLE, 2026, start=date(2023, 1, 1), end=date(2025, 12, 31))
    events = tmp_path / "cohort.jsonl"
    write_jsonl(events, cohort.events)

    with los(real_servers, tmp_path) as running:
        accepted = await import_file(running, events, tmp_path / "rejects.jsonl")
        await settle(running, accepted, datetime.now(UTC))
        clock, live = live_alerts(running.env["DATABASE_URL"])

    key = Settings().pseudonym_key.get_secret_value()
    replayed = await asyncio.to_thread(replayed_alerts, events, clock, key)

    assert len(live) > PEOPLE // 10, "a cohort this size raises many alerts"
    assert {rule for rule, *_ in live} >= {"HANDOVER_GAP", "SIX_MONTH_CHECK_OVERDUE"}
    assert live - replayed == set(), "raised live but not in the replay"
    assert replayed - live == set(), "in the replay but not raised live"

    # The journey store the services filled, replayed for a study: the file's lines, each
    # person under the study's pseudonym of theirs, read in ranges of ~1,000 stored events
    # (shared by two processes), each replay recorded first.
    rules, database_url = Settings().rules, running.env["DATABASE_URL"]
    monkeypatch.setattr(history, "RANGE_ROWS", 1000)
    for until in (clock, datetime(2024, 7, 1, tzinfo=UTC)):  # the end, and inside it
        from_file = await asyncio.to_thread(replay_file, events, until, key, rules)
        from_store = await asyncio.to_thread(replay_store, database_url, until, rules, STUDY, 2)
        assert for_study(from_store.alerts) == for_study(from_file.alerts, STUDY), until
        assert from_store.events == accepted
        assert from_store.after_until == from_file.after_until
        assert {line["alert_id"] for line in map(json.loads, from_store.alerts)}.isdisjoint(
            line["alert_id"] for line in map(json.loads, from_file.alerts)
        ), "a study's alert ids must not be the live ones"
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    out = tmp_path / "store-alerts.jsonl"
    command = ["replay", "--store", "--until", clock.isoformat(), "--study-key", STUDY]
    command += ["--out", str(out)]
    ran = await asyncio.to_thread(CliRunner().invoke, app, command)
    get_settings.cache_clear()
    assert ran.exit_code == 0, ran.output
    assert for_study(out.read_text().splitlines()) == for_study(
        replay_file(events, clock, key, rules).alerts, STUDY
    )

    # Exported for the study from the store: the export of the file, persons mapped.
    command = ["export", "--store", "--until", "2024-07-01T00:00:00+02:00", "--study-key", STUDY]
    command += ["--out", str(tmp_path / "from-store"), "--workers", "2"]
    ran = await asyncio.to_thread(CliRunner().invoke, app, command)
    get_settings.cache_clear()
    assert ran.exit_code == 0, ran.output
    july = datetime(2024, 6, 30, 22, tzinfo=UTC)
    file_export = await asyncio.to_thread(
        export_file, events, july, key, rules, tmp_path / "from-file"
    )
    assert f"{accepted:,} facts, {file_export.replay.after_until:,} recorded after" in ran.output
    for name in ("engagements.parquet", "people.parquet"):
        file_rows = pq.read_table(tmp_path / "from-file" / name).to_pylist()
        for row in file_rows:
            row["person"] = pseudonym(row["person"], STUDY)
        store_rows = pq.read_table(tmp_path / "from-store" / name).to_pylist()
        assert len(store_rows) > PEOPLE // 2, name
        assert by_row(store_rows) == by_row(file_rows), name
    for name in ("measure_outcomes.csv", "provider_outcomes.csv"):
        table = (tmp_path / "from-store" / name).read_text()
        assert table == (tmp_path / "from-file" / name).read_text(), name
    # The same files, byte for byte, from one process.
    alone = tmp_path / "from-store-alone"
    await asyncio.to_thread(export_store, database_url, july, STUDY, rules, alone, 1)
    for made in (tmp_path / "from-store").iterdir():
        assert (alone / made.name).read_bytes() == made.read_bytes(), made.name

    with psycopg.connect(database_url) as conn:
        reads = conn.execute(
            "SELECT until, study, command FROM outcomes.history_reads ORDER BY at"
        ).fetchall()
    fingerprint = hashlib.sha256(STUDY.encode()).hexdigest()[:16]
    assert reads == [
        (clock, fingerprint, "replay"),
        (datetime(2024, 7, 1, tzinfo=UTC), fingerprint, "replay"),
        (clock, fingerprint, "replay"),
        (july, fingerprint, "export"),
        (july, fingerprint, "export"),
    ]


def by_row(rows: list[dict[str, object]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def for_study(lines: list[str], study: str | None = None) -> list[dict[str, object]]:
    """Output lines without their alert ids, each person under `study`'s pseudonym of
    theirs (when given: lines of a replay of the file under the platform's key)."""
    found = []
    for line in lines:
        alert = json.loads(line)
        del alert["alert_id"]
        if study is not None:
            alert["person"] = pseudonym(alert["person"], study)
        found.append(alert)
    return sorted(found, key=lambda alert: json.dumps(alert, sort_keys=True))
