"""`los caseload` and the demo print a caseload as tables: the participants shown of how
many, where each stands, and the coordinators over the cap marked."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console

from services.cli.caseload import caseload_tables
from services.rpc.los.v1 import alerts_pb2


def stamp(day: int) -> Timestamp:
    at = Timestamp()
    at.FromDatetime(datetime(2026, 11, day, 9, tzinfo=UTC))
    return at


def printed(caseload: alerts_pb2.Caseload, whose: str, *, team: bool) -> str:
    console = Console(record=True, width=200)
    for shown in caseload_tables(caseload, whose, team=team):
        console.print(shown)
    return console.export_text()


def test_a_coordinators_caseload_is_counted_against_the_cap() -> None:
    caseload = alerts_pb2.Caseload(
        total=3,
        cap=25,
        participants=[
            alerts_pb2.CaseloadEntry(
                participant="ab" * 32, org_unit="nav-0301", since=stamp(2),
                state="between", state_since=stamp(20), unresolved_alerts=1,
            ),
            alerts_pb2.CaseloadEntry(
                participant="cd" * 32, org_unit="nav-0301", since=stamp(3), state="not_started",
            ),
        ],
    )  # fmt: skip

    text = printed(caseload, "c-17", team=False)

    assert "The caseload of c-17: 3 participants (cap 25), the 2 held longest shown" in text
    rows = [line.split("│")[1:-1] for line in text.splitlines() if "…" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["abababababab…", "2026-11-02", "between", "2026-11-20", "1"],
        ["cdcdcdcdcdcd…", "2026-11-03", "not started", "", "0"],
    ]
    assert "coordinators" not in text


def test_a_team_sees_its_queue_and_which_coordinators_are_over_the_cap() -> None:
    caseload = alerts_pb2.Caseload(
        total=0,
        cap=25,
        coordinators=[
            alerts_pb2.CoordinatorLoad(coordinator_id="c-17", participants=25),
            alerts_pb2.CoordinatorLoad(coordinator_id="c-18", participants=26),
        ],
    )

    text = printed(caseload, "nav-0301", team=True)

    assert text.startswith("The queue of team nav-0301: 0 participants with no coordinator\n")
    assert "unresolved alerts" not in text  # no table of participants
    loads = {
        cells[1].strip(): cells[2].strip()
        for line in text.splitlines()
        if (cells := line.split("│")) and len(cells) == 4
    }
    assert loads == {"c-17": "25", "c-18": "26 over the cap"}
