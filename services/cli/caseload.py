"""A coordinator's or team lead's client for `GetCaseload`, and the caseload as tables."""

from __future__ import annotations

from datetime import UTC

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import RenderableType
from rich.table import Table

from services.kernel.rpc import aio_channel
from services.kernel.settings import get_settings
from services.kernel.tokens import bearer
from services.rpc.los.v1 import alerts_pb2, alerts_pb2_grpc


async def get_caseload(
    address: str,
    token: str,
    *,
    coordinator: str | None = None,
    org_unit: str | None = None,
    limit: int = 0,
) -> alerts_pb2.Caseload:
    """One coordinator's caseload, or one team's queue; with neither, the caller's own."""
    if org_unit:
        request = alerts_pb2.GetCaseloadRequest(org_unit=org_unit, limit=limit)
    else:
        request = alerts_pb2.GetCaseloadRequest(coordinator_id=coordinator or "", limit=limit)
    async with aio_channel(address, get_settings().tls) as channel:
        stub = alerts_pb2_grpc.AlertsStub(channel)
        return await stub.GetCaseload(request, metadata=bearer(token))


# The pseudonyms are 64 hex digits; this many tell a caseload's people apart.
SHORT = 12


def _day(stamp: Timestamp, present: bool) -> str:
    return f"{stamp.ToDatetime(UTC):%Y-%m-%d}" if present else ""


def caseload_tables(
    caseload: alerts_pb2.Caseload, whose: str, *, team: bool
) -> list[RenderableType]:
    """A heading and the participants shown (at most as many as asked for); for a team,
    its coordinators' loads too, those over the cap marked."""
    people = f"{caseload.total} participant{'' if caseload.total == 1 else 's'}"
    heading = (
        f"The queue of team {whose}: {people} with no coordinator"
        if team
        else f"The caseload of {whose}: {people} (cap {caseload.cap})"
    )
    shown = len(caseload.participants)
    if shown < caseload.total:
        heading += f", the {shown} held longest shown"
    found: list[RenderableType] = [heading]
    if shown:
        table = Table("participant", "in it since", "now", "since", "unresolved alerts")
        for entry in caseload.participants:
            table.add_row(
                f"{entry.participant[:SHORT]}…",
                _day(entry.since, entry.HasField("since")),
                entry.state.replace("_", " "),
                _day(entry.state_since, entry.HasField("state_since")),
                str(entry.unresolved_alerts),
            )
        found.append(table)
    if caseload.coordinators:
        loads = Table("coordinator", "participants")
        for load in caseload.coordinators:
            over = " [bold red]over the cap[/]" if load.participants > caseload.cap else ""
            loads.add_row(load.coordinator_id, f"{load.participants}{over}")
        found += [f"The coordinators team {whose} assigned, and their caseloads:", loads]
    return found
