"""GetCaseload as coordinators and team leads use it, on the whole platform: who each
coordinator follows now and where they stand, who waits in a team's queue, the
coordinators' loads against the cap, and refusals for anyone else's caseload."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import grpc
import psycopg
import pytest

from services.cli.platform import stop
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.tokens import bearer
from services.rpc.los.v1 import alerts_pb2, alerts_pb2_grpc
from tests.integration.test_alert_api import refused
from tests.integration.test_crash_recovery import restart_outcomes
from tests.integration.test_handover_gap_live import KEY, assign, submit
from tests.support import Person, los, token_for

TEAM = "nav-0301"  # the team `assign` assigns in


async def settled(
    api: alerts_pb2_grpc.AlertsAsyncStub,
    request: alerts_pb2.GetCaseloadRequest,
    token: str,
    done: Callable[[alerts_pb2.Caseload], bool],
) -> alerts_pb2.Caseload:
    """The caseload once `done` holds for it: the engine writes it as it judges."""
    for _ in range(150):
        caseload = await api.GetCaseload(request, metadata=bearer(token))
        if done(caseload):
            return caseload
        await asyncio.sleep(0.2)
    raise AssertionError(f"the caseload never settled; last seen:\n{caseload}")


def time_of(
    entry: alerts_pb2.CaseloadEntry, field: Literal["since", "state_since"]
) -> datetime | None:
    if not entry.HasField(field):
        return None
    return getattr(entry, field).ToDatetime(UTC)  # type: ignore[no-any-return]


@pytest.mark.servers
async def test_a_coordinator_sees_their_caseload_and_a_team_lead_the_queue_and_the_loads(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT2S") as running:
        intake, journey = running.address("intake"), running.address("journey")
        anna, dora, erik, ahead, queued, bo = (Person.make(n) for n in range(71, 77))
        now = datetime.now(UTC)
        days = [now - timedelta(days=n) for n in range(10)]
        await assign(intake, anna, "c-anna", days[9])
        await assign(intake, dora, "c-anna", days[5])
        await assign(intake, erik, "c-anna", days[8])
        await assign(intake, bo, "c-bo", days[4])
        referral = {"channel": "nav", "org_unit": TEAM}
        to_anna = {"coordinator_id": "c-anna", "org_unit": TEAM}
        reply = await submit(
            intake,
            [
                erik.event("journey.closed", {"reason": "MOVED"}, days[1]),
                ahead.event("participant.referred", referral, days[3]),
                ahead.event("coordinator.assigned", to_anna, now + timedelta(days=30), now),
                queued.event("participant.referred", referral, days[2]),
            ],
        )
        assert reply.accepted == 4, reply
        reply = await submit(
            journey,
            [
                anna.measure_started("m-a", days[7]),
                dora.measure_started("m-d", days[4]),
                dora.measure_ended("m-d", days[1]),  # nothing after: a HANDOVER_GAP
            ],
        )
        assert reply.accepted == 3
        anna_token, lead = token_for("c-anna"), token_for("lead", (TEAM,))

        async with grpc.aio.insecure_channel(running.address("outcomes")) as channel:
            api = alerts_pb2_grpc.AlertsStub(channel)
            mine = await settled(
                api,
                alerts_pb2.GetCaseloadRequest(),
                anna_token,
                lambda c: c.total == 2 and any(e.unresolved_alerts for e in c.participants),
            )
            assert mine.cap == 25
            assert [
                (e.participant, time_of(e, "since"), e.org_unit, e.state, time_of(e, "state_since"),
                 e.unresolved_alerts)
                for e in mine.participants
            ] == [
                (pseudonym(anna.national_id, KEY), days[9], TEAM, "engaged", days[7], 0),
                (pseudonym(dora.national_id, KEY), days[5], TEAM, "between", days[1], 1),
            ]  # fmt: skip

            queue = await settled(
                api,
                alerts_pb2.GetCaseloadRequest(org_unit=TEAM),
                lead,
                lambda c: c.total == 2,
            )
            assert [(e.participant, time_of(e, "since"), e.state) for e in queue.participants] == [
                (pseudonym(ahead.national_id, KEY), days[3], "not_started"),
                (pseudonym(queued.national_id, KEY), days[2], "not_started"),
            ]
            assert [(c.coordinator_id, c.participants) for c in queue.coordinators] == [
                ("c-anna", 2),
                ("c-bo", 1),
            ]

            # Each participant listed is a read of their data; a refused call reads no one.
            before = datetime.now(UTC)
            first = await api.GetCaseload(
                alerts_pb2.GetCaseloadRequest(limit=1), metadata=bearer(anna_token)
            )
            assert (first.total, [e.participant for e in first.participants]) == (
                2,
                [pseudonym(anna.national_id, KEY)],
            )
            teams = alerts_pb2.GetCaseloadRequest(org_unit=TEAM)
            await api.GetCaseload(teams, metadata=bearer(lead))

            denied, invalid = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT
            for request, code in (
                (alerts_pb2.GetCaseloadRequest(coordinator_id="c-bo"), denied),
                (alerts_pb2.GetCaseloadRequest(org_unit=TEAM), denied),
                (alerts_pb2.GetCaseloadRequest(limit=-1), invalid),
            ):
                assert await refused(api.GetCaseload(request, metadata=bearer(anna_token))) == code
            assert (
                await refused(api.GetCaseload(alerts_pb2.GetCaseloadRequest()))
                == grpc.StatusCode.UNAUTHENTICATED
            )

            with psycopg.connect(running.env["DATABASE_URL"]) as conn:
                reads = conn.execute(
                    "SELECT reader, participant FROM outcomes.journey_reads WHERE at >= %s",
                    (before,),
                ).fetchall()
            assert sorted(reads) == sorted(
                [("c-anna", pseudonym(anna.national_id, KEY))]
                + [("lead", e.participant) for e in queue.participants]
            )

            # Dora goes to Bo: she leaves Anna's caseload and joins Bo's.
            await assign(intake, dora, "c-bo", datetime.now(UTC))
            bo_token = token_for("c-bo")
            bos = await settled(
                api, alerts_pb2.GetCaseloadRequest(), bo_token, lambda c: c.total == 2
            )
            assert {e.participant for e in bos.participants} == {
                pseudonym(bo.national_id, KEY),
                pseudonym(dora.national_id, KEY),
            }
            # Even were her caseload row not rewritten yet, the facts would keep her out.
            with psycopg.connect(running.env["DATABASE_URL"]) as conn:
                conn.execute(
                    "INSERT INTO outcomes.caseload VALUES (%s, 'c-anna', %s, %s, NULL)",
                    (pseudonym(dora.national_id, KEY), TEAM, days[5]),
                )
            annas = await api.GetCaseload(
                alerts_pb2.GetCaseloadRequest(), metadata=bearer(anna_token)
            )
            assert annas.total == 1
            assert [e.participant for e in annas.participants] == [pseudonym(anna.national_id, KEY)]


@pytest.mark.servers
async def test_a_store_from_before_caseloads_has_them_filled_when_outcomes_starts(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path) as running:
        intake, database = running.address("intake"), running.env["DATABASE_URL"]
        anna, queued = Person.make(81), Person.make(82)
        now = datetime.now(UTC)
        await assign(intake, anna, "c-anna", now - timedelta(days=2))
        referral = {"channel": "nav", "org_unit": TEAM}
        reply = await submit(
            intake, [queued.event("participant.referred", referral, now - timedelta(days=1))]
        )
        assert reply.accepted == 1
        anna_token, lead = token_for("c-anna"), token_for("lead", (TEAM,))
        async with grpc.aio.insecure_channel(running.address("outcomes")) as channel:
            api = alerts_pb2_grpc.AlertsStub(channel)
            await settled(api, alerts_pb2.GetCaseloadRequest(), anna_token, lambda c: c.total > 0)
            await settled(
                api, alerts_pb2.GetCaseloadRequest(org_unit=TEAM), lead, lambda c: c.total > 0
            )
        # Outcomes of before: the facts taken in, and no caseloads kept.
        await asyncio.to_thread(stop, running.processes["outcomes"])
        with psycopg.connect(database) as conn:
            conn.execute("DELETE FROM outcomes.caseload")
            conn.execute("DELETE FROM outcomes.caseload_filled")
        await asyncio.to_thread(restart_outcomes, running, tmp_path)

        async with grpc.aio.insecure_channel(running.address("outcomes")) as channel:
            api = alerts_pb2_grpc.AlertsStub(channel)
            mine = await settled(
                api, alerts_pb2.GetCaseloadRequest(), anna_token, lambda c: c.total > 0
            )
            queue = await api.GetCaseload(
                alerts_pb2.GetCaseloadRequest(org_unit=TEAM), metadata=bearer(lead)
            )
        assert [e.participant for e in mine.participants] == [pseudonym(anna.national_id, KEY)]
        assert [e.participant for e in queue.participants] == [pseudonym(queued.national_id, KEY)]
        with psycopg.connect(database) as conn:
            assert conn.execute("SELECT id FROM outcomes.caseload_filled").fetchall() == [(1,)]
