"""Outcomes killed in the middle of an import loses nothing, doubles nothing, and ends with
the alerts an uninterrupted run gives."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.cli.importer import Importer
from services.cli.platform import Platform, start_service, wait_healthy
from services.cohort import generate_cohort, write_jsonl
from services.kernel.embedded import Servers
from services.kernel.settings import TlsSettings
from tests.support import alert_rows, facts_recorded, los, outcomes_settled

PEOPLE = 500


def cohort_file(folder: Path) -> Path:
    cohort = generate_cohort(PEOPLE, 42, start=date(2023, 1, 1), end=date(2025, 12, 31))
    path = folder / "cohort.jsonl"
    write_jsonl(path, cohort.events)
    return path


async def import_file(running: Platform, path: Path, rejects: Path) -> int:
    importer = Importer({s: running.address(s) for s in ("intake", "journey", "employer")})
    try:
        report = await importer.run(path, rejects, show_progress=False)
    finally:
        await importer.close()
    return report.accepted


async def settle(running: Platform, accepted: int, since: datetime) -> list[tuple[Any, ...]]:
    database_url = running.env["DATABASE_URL"]
    for _ in range(600):
        if await asyncio.to_thread(outcomes_settled, database_url, accepted, since):
            return alert_rows(database_url)
        await asyncio.sleep(0.2)
    raise AssertionError(f"outcomes did not settle: {facts_recorded(database_url)}/{accepted}")


def restart_outcomes(running: Platform, log_dir: Path) -> None:
    process = start_service("outcomes", running.env, log_dir)
    running.processes["outcomes"] = process
    wait_healthy("outcomes", running.address("outcomes"), process, log_dir, TlsSettings())


@pytest.mark.servers
async def test_outcomes_killed_mid_import_ends_with_exactly_the_events_and_the_same_alerts(
    real_servers: Servers, tmp_path: Path
) -> None:
    events = cohort_file(tmp_path)
    with los(real_servers, tmp_path / "calm") as calm:
        accepted = await import_file(calm, events, tmp_path / "calm-rejects.jsonl")
        expected = await settle(calm, accepted, datetime.now(UTC))

    with los(real_servers, tmp_path / "killed") as killed:
        database_url = killed.env["DATABASE_URL"]
        importing = asyncio.create_task(
            import_file(killed, events, tmp_path / "killed-rejects.jsonl")
        )
        # Killed a quarter of the way through its ingest: the import may have ended by then
        # on a fast machine, but outcomes still has three quarters of it to take in.
        async with asyncio.timeout(300):
            while await asyncio.to_thread(facts_recorded, database_url) < accepted // 4:
                if importing.done():
                    importing.result()  # an import that failed says why
                await asyncio.sleep(0.05)
        os.kill(killed.processes["outcomes"].pid, signal.SIGKILL)
        killed.processes["outcomes"].wait()
        at_kill = await asyncio.to_thread(facts_recorded, database_url)
        await asyncio.sleep(1)
        # In a thread: the import goes on meanwhile, as it would against a real deployment.
        await asyncio.to_thread(restart_outcomes, killed, tmp_path / "killed")
        assert await importing == accepted
        alerts = await settle(killed, accepted, datetime.now(UTC))

    assert 0 < at_kill < accepted
    assert len(expected) > 20, "the cohort should raise a fair number of alerts"
    assert alerts == expected
