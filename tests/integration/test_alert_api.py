"""The Alerts API as coordinators use it: list, acknowledge, open a journey, team queues,
and refusals for anyone else's data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import grpc
import jwt
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.cli.watch import watch
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.settings import Settings
from services.kernel.tokens import bearer
from services.outcomes.auth import mint
from services.rpc.los.v1 import alerts_pb2, alerts_pb2_grpc
from tests.integration.test_exactly_once import wait_for
from tests.integration.test_handover_gap_live import KEY, assign, submit
from tests.support import Person, facts_recorded, los, token_for

T = TypeVar("T")
GAP = timedelta(seconds=2)


async def refused(call: Awaitable[T]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code()


async def first(updates: AsyncIterator[alerts_pb2.AlertUpdate]) -> alerts_pb2.AlertUpdate:
    return await asyncio.wait_for(anext(updates), 30)


async def ends_a_measure(journey: str, person: Person, now: datetime) -> None:
    """A measure of five days that ends `now` with nothing after: a HANDOVER_GAP is due."""
    reply = await submit(
        journey,
        [
            person.measure_started("m-1", now - timedelta(days=5), recorded_at=now),
            person.measure_ended("m-1", now),
        ],
    )
    assert reply.accepted == 2


@pytest.mark.servers
async def test_coordinators_work_their_own_alerts_and_are_refused_anyone_elses(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT2S") as running:
        anna, bo, queued = Person.make(61), Person.make(62), Person.make(63)
        now = datetime.now(UTC)
        await assign(running.address("intake"), anna, "c-anna", now - timedelta(days=9))
        await assign(running.address("intake"), bo, "c-bo", now - timedelta(days=9))
        referral = {"channel": "nav", "org_unit": "nav-queue"}
        await submit(
            running.address("intake"),
            [queued.event("participant.referred", referral, now - timedelta(days=9), now)],
        )
        for person in (anna, bo, queued):
            await ends_a_measure(running.address("journey"), person, now)
        outcomes = running.address("outcomes")
        anna_token, bo_token = token_for("c-anna"), token_for("c-bo")
        lead_token = token_for("lead", ("nav-queue",))

        raised = await first(watch(outcomes, anna_token, coordinator="c-anna"))
        queue_alert = await first(watch(outcomes, lead_token, org_unit="nav-queue"))
        assert queue_alert.alert.participant == pseudonym(queued.national_id, KEY)
        assert queue_alert.alert.recipient.coordinator_id == ""

        async with grpc.aio.insecure_channel(outcomes) as channel:
            api = alerts_pb2_grpc.AlertsStub(channel)
            # Anna's own work.
            mine = await api.ListAlerts(
                alerts_pb2.ListAlertsRequest(status="open"), metadata=bearer(anna_token)
            )
            assert [a.alert_id for a in mine.alerts] == [raised.alert.alert_id]
            later = Timestamp()
            later.FromDatetime(now + timedelta(days=1))
            none_yet = await api.ListAlerts(
                alerts_pb2.ListAlertsRequest(raised_from=later), metadata=bearer(anna_token)
            )
            assert list(none_yet.alerts) == []
            seen = await api.AcknowledgeAlert(
                alerts_pb2.AcknowledgeAlertRequest(alert_id=raised.alert.alert_id),
                metadata=bearer(anna_token),
            )
            assert (seen.status, seen.acknowledged_by) == ("acknowledged", "c-anna")
            journey = await api.GetJourney(
                alerts_pb2.GetJourneyRequest(participant=raised.alert.participant),
                metadata=bearer(anna_token),
            )
            assert [(e.kind, e.system, e.id) for e in journey.engagements] == [
                ("measure", "nav", "m-1")
            ]
            assert len(journey.gaps) == 1
            assert not journey.gaps[0].HasField("end")
            assert [a.status for a in journey.alerts] == ["acknowledged"]

            # Bo's data, and calls with no token.
            bo_participant = pseudonym(bo.national_id, KEY)
            bo_alerts = await api.ListAlerts(
                alerts_pb2.ListAlertsRequest(), metadata=bearer(bo_token)
            )
            bo_alert = bo_alerts.alerts[0].alert_id
            denied = grpc.StatusCode.PERMISSION_DENIED
            assert (
                await refused(
                    api.ListAlerts(
                        alerts_pb2.ListAlertsRequest(coordinator_id="c-bo"),
                        metadata=bearer(anna_token),
                    )
                )
                == denied
            )
            assert (
                await refused(
                    api.AcknowledgeAlert(
                        alerts_pb2.AcknowledgeAlertRequest(alert_id=bo_alert),
                        metadata=bearer(anna_token),
                    )
                )
                == denied
            )
            assert (
                await refused(
                    api.GetJourney(
                        alerts_pb2.GetJourneyRequest(participant=bo_participant),
                        metadata=bearer(anna_token),
                    )
                )
                == denied
            )
            assert await refused(first(watch(outcomes, anna_token, coordinator="c-bo"))) == denied
            assert await refused(first(watch(outcomes, anna_token, org_unit="nav-queue"))) == denied
            assert (
                await refused(api.ListAlerts(alerts_pb2.ListAlertsRequest()))
                == grpc.StatusCode.UNAUTHENTICATED
            )
            forged = token_for("c-anna")[:-4] + "AAAA"
            listed = api.ListAlerts(alerts_pb2.ListAlertsRequest(), metadata=bearer(forged))
            assert await refused(listed) == grpc.StatusCode.UNAUTHENTICATED

        with psycopg.connect(running.env["DATABASE_URL"]) as conn:
            reads = conn.execute(
                "SELECT reader, participant FROM outcomes.journey_reads"
            ).fetchall()
        assert reads == [("c-anna", raised.alert.participant)]


@pytest.mark.servers
async def test_what_a_token_grants_and_what_a_request_may_ask(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path, rules__handover_gap="PT2S") as running:
        person, now = Person.make(64), datetime.now(UTC)
        await assign(running.address("intake"), person, "c-old", now - timedelta(days=9))
        await ends_a_measure(running.address("journey"), person, now)
        outcomes = running.address("outcomes")
        raised = await first(watch(outcomes, token_for("c-old"), coordinator="c-old"))
        await assign(running.address("intake"), person, "c-new", datetime.now(UTC))
        # Until outcomes knows of the new assignment.
        await wait_for(lambda: facts_recorded(running.env["DATABASE_URL"]) == 4)
        key = Settings().token_key.get_secret_value()

        async with grpc.aio.insecure_channel(outcomes) as channel:
            api = alerts_pb2_grpc.AlertsStub(channel)
            acknowledge = alerts_pb2.AcknowledgeAlertRequest(alert_id=raised.alert.alert_id)
            # The coordinator responsible now may acknowledge what went to the one before;
            # an acknowledgement after that keeps who acknowledged first, and when.
            by_new = await api.AcknowledgeAlert(acknowledge, metadata=bearer(token_for("c-new")))
            again = await api.AcknowledgeAlert(acknowledge, metadata=bearer(token_for("c-old")))
            assert (by_new.status, by_new.acknowledged_by) == ("acknowledged", "c-new")
            assert again == by_new
            assert (
                await refused(api.AcknowledgeAlert(acknowledge, metadata=bearer(token_for("c-x"))))
                == grpc.StatusCode.PERMISSION_DENIED
            )

            # A request it cannot read is refused as such.
            mine = bearer(token_for("c-old"))
            out_of_range = Timestamp(seconds=-(10**12))
            for request in (
                alerts_pb2.ListAlertsRequest(limit=-5),
                alerts_pb2.ListAlertsRequest(status="opne"),
                alerts_pb2.ListAlertsRequest(rule="HANDOVER_GAPS"),
                alerts_pb2.ListAlertsRequest(raised_from=out_of_range),
                alerts_pb2.ListAlertsRequest(page_token="not-a-token"),  # noqa: S106
            ):
                code = await refused(api.ListAlerts(request, metadata=mine))
                assert code == grpc.StatusCode.INVALID_ARGUMENT, request

            # A listing comes in pages.
            page = await api.ListAlerts(alerts_pb2.ListAlertsRequest(limit=1), metadata=mine)
            assert [a.alert_id for a in page.alerts] == [raised.alert.alert_id]
            rest = await api.ListAlerts(
                alerts_pb2.ListAlertsRequest(limit=1, page_token=page.next_page_token),
                metadata=mine,
            )
            assert (list(rest.alerts), rest.next_page_token) == ([], "")

            # So is a token whose teams are not a list of names.
            claims = {
                "sub": "c-old",
                "teams": "nav-0301",
                "aud": "los",
                "iat": now,
                "exp": now + GAP * 99,
            }
            odd = jwt.encode(claims, key, algorithm="HS256")
            assert (
                await refused(api.ListAlerts(alerts_pb2.ListAlertsRequest(), metadata=bearer(odd)))
                == grpc.StatusCode.UNAUTHENTICATED
            )

        # A stream of alerts ends when its token expires.
        brief = mint(key, "c-new", [], now=datetime.now(UTC), lifetime=timedelta(seconds=2))
        code = await refused(first(watch(outcomes, brief, coordinator="c-new")))
        assert code == grpc.StatusCode.UNAUTHENTICATED
