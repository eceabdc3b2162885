"""The `Alerts` gRPC API (proto/los/v1/alerts.proto): coordinators and team queues watch,
list and acknowledge their alerts, and open their participants' journeys. Every call is
authorised from its bearer token (`auth.py`); a refusal says why."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.kernel.settings import Settings
from services.kernel.store import Worker
from services.kernel.tokens import authenticated
from services.outcomes import alerts, caseload
from services.outcomes.alerts import AlertFeed, StoredAlert
from services.outcomes.application import JourneyStore
from services.outcomes.auth import Caller, Refused, caller_from
from services.outcomes.journey import Journey
from services.outcomes.recipients import addressed_at, held_at
from services.outcomes.rules import RULES
from services.outcomes.timeline import Timeline, standing_in_journey, timeline
from services.rpc.los.v1 import alerts_pb2, alerts_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
STATUSES = ("open", "acknowledged", "resolved")
# The requests that name a coordinator or a team.
Recipients = (
    alerts_pb2.WatchAlertsRequest | alerts_pb2.ListAlertsRequest | alerts_pb2.GetCaseloadRequest
)
RULE_NAMES = tuple(rule.name for rule in RULES)


def _timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


class Invalid(Exception):
    """A request field that cannot be read, with what is wrong with it."""


def _optional(request: Any, field: str) -> datetime | None:
    if not request.HasField(field):
        return None
    try:
        return getattr(request, field).ToDatetime(UTC)  # type: ignore[no-any-return]
    except (ValueError, OverflowError):
        raise Invalid(f"{field}: not a valid timestamp") from None


def _page_token(alert: StoredAlert) -> str:
    """Where the page after `alert` starts (newest first: raise time, then id)."""
    return base64.urlsafe_b64encode(
        f"{alert.raised_at.isoformat()}|{alert.alert_id}".encode()
    ).decode()


def _page_after(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        raised_at, alert_id = base64.urlsafe_b64decode(token).decode().split("|", 1)
        return datetime.fromisoformat(raised_at), alert_id
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise Invalid("page_token: not one this API gave out") from None


def _listing(request: alerts_pb2.ListAlertsRequest) -> dict[str, Any]:
    """The filters of a ListAlerts request, or `Invalid`."""
    if request.status and request.status not in STATUSES:
        raise Invalid(f"status: one of {', '.join(STATUSES)} expected")
    if request.rule and request.rule not in RULE_NAMES:
        raise Invalid(f"rule: one of {', '.join(RULE_NAMES)} expected")
    return {
        "status": request.status or None,
        "rule": request.rule or None,
        "raised_from": _optional(request, "raised_from"),
        "raised_until": _optional(request, "raised_until"),
        "limit": _limit(request),
        "before": _page_after(request.page_token),
    }


def _limit(request: alerts_pb2.ListAlertsRequest | alerts_pb2.GetCaseloadRequest) -> int:
    if request.limit < 0:
        raise Invalid("limit: must not be negative")
    return min(request.limit or 100, 1000)


def to_message(alert: StoredAlert) -> alerts_pb2.Alert:
    return alerts_pb2.Alert(
        alert_id=alert.alert_id,
        rule=alert.rule,
        participant=alert.participant,
        recipient=alerts_pb2.Recipient(
            coordinator_id=alert.coordinator or "", org_unit=alert.org_unit or ""
        ),
        raised_at=_timestamp(alert.raised_at),
        status=alert.status,
        resolved_at=_timestamp(alert.resolved_at),
        resolution=alert.resolution or "",
        subject=alert.subject,
        acknowledged_by=alert.acknowledged_by or "",
        acknowledged_at=_timestamp(alert.acknowledged_at),
    )


def to_journey(found: Timeline) -> alerts_pb2.Journey:
    return alerts_pb2.Journey(
        participant=found.participant,
        engagements=[
            alerts_pb2.Engagement(
                kind=e.kind,
                id=e.id,
                start=_timestamp(e.start),
                end=_timestamp(e.end),
                unplanned_end=e.unplanned,
                system=e.system,
            )
            for e in found.engagements
        ],
        gaps=[alerts_pb2.Gap(start=_timestamp(s), end=_timestamp(e)) for s, e in found.gaps],
        alerts=[to_message(alert) for alert in found.alerts],
    )


class AlertsServicer(alerts_pb2_grpc.AlertsServicer):
    def __init__(
        self,
        feed: AlertFeed,
        pool: asyncpg.Pool,
        store: JourneyStore,
        worker: Worker,
        settings: Settings,
    ) -> None:
        self._feed = feed
        self._pool = pool
        self._store = store
        self._worker = worker
        self._key = settings.token_key.get_secret_value()
        self._max_lifetime = settings.token_max_lifetime
        self._cap = settings.caseload_cap

    async def _caller(self, context: Context) -> Caller:
        return await authenticated(
            context, lambda header: caller_from(header, self._key, self._max_lifetime)
        )

    async def _whose(
        self, context: Context, request: Recipients
    ) -> tuple[Caller, str | None, str | None]:
        """The caller, and whose alerts or caseload their request asks for (a coordinator
        or a team; with neither, their own), once the caller may see them."""
        caller = await self._caller(context)
        coordinator, org_unit = request.coordinator_id, request.org_unit
        if not (coordinator or org_unit):
            coordinator = caller.coordinator
        try:
            caller.check_recipient(coordinator or None, org_unit or None)
        except Refused as refused:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(refused))
        return caller, coordinator or None, org_unit or None

    async def WatchAlerts(
        self, request: alerts_pb2.WatchAlertsRequest, context: Context
    ) -> AsyncIterator[alerts_pb2.AlertUpdate]:
        caller, coordinator, org_unit = await self._whose(context, request)
        changes = self._feed.watch(coordinator=coordinator, org_unit=org_unit, after=request.after)
        while True:
            left = (caller.expires_at - datetime.now(UTC)).total_seconds()
            try:
                change = await asyncio.wait_for(anext(changes), timeout=max(left, 0))
            except StopAsyncIteration:
                return
            except TimeoutError:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "the token has expired: watch again with a new one, after the last cursor",
                )
            yield alerts_pb2.AlertUpdate(
                cursor=change.cursor, change=change.change, alert=to_message(change.alert)
            )

    async def _journeys(self, participants: list[str]) -> dict[str, Journey]:
        """Journeys read for a caller: the store's cache is left to ingest and the rules."""
        return await self._worker.run(partial(self._store.journeys, keep=False), participants)

    async def AcknowledgeAlert(
        self, request: alerts_pb2.AcknowledgeAlertRequest, context: Context
    ) -> alerts_pb2.Alert:
        caller = await self._caller(context)
        async with self._pool.acquire() as conn, conn.transaction():
            found = await alerts.find(conn, request.alert_id)
            if found is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no alert {request.alert_id}")
            assert found is not None
            now = datetime.now(UTC)
            if not await self._may_acknowledge(caller, found, now):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"alert {found.alert_id} is not addressed to {caller.coordinator}"
                    " or one of their teams, nor are they responsible for its participant",
                )
            if found.acknowledged_by is not None:
                return to_message(found)  # acknowledged once: who and when stay as they were
            change = alerts.acknowledged(found, caller.coordinator, now)
            await alerts.write(conn, [change])
        return to_message(change[1])

    async def _may_acknowledge(self, caller: Caller, alert: StoredAlert, now: datetime) -> bool:
        """Whether the alert was addressed to the caller or their team, or the caller is
        responsible for its participant now (the alert went to someone before them)."""
        if caller.may_see(alert.coordinator, alert.org_unit):
            return True
        journeys = await self._journeys([alert.participant])
        now_responsible = addressed_at(journeys[alert.participant], now)
        return caller.may_see(now_responsible.coordinator, now_responsible.org_unit)

    async def ListAlerts(
        self, request: alerts_pb2.ListAlertsRequest, context: Context
    ) -> alerts_pb2.ListAlertsResponse:
        _, coordinator, org_unit = await self._whose(context, request)
        try:
            where = alerts.Filter(coordinator=coordinator, org_unit=org_unit, **_listing(request))
        except Invalid as invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(invalid))
        async with self._pool.acquire() as conn:
            found = await alerts.listed(conn, where)
        more = len(found) == where.limit
        return alerts_pb2.ListAlertsResponse(
            alerts=[to_message(a) for a in found],
            next_page_token=_page_token(found[-1]) if more else "",
        )

    async def GetJourney(
        self, request: alerts_pb2.GetJourneyRequest, context: Context
    ) -> alerts_pb2.Journey:
        caller = await self._caller(context)
        now = datetime.now(UTC)
        journeys = await self._journeys([request.participant])
        journey = journeys[request.participant]
        async with self._pool.acquire() as conn:
            stored = await alerts.of_participant(conn, request.participant)
            found = timeline(journey, stored, now)
            if not caller.may_see(found.recipient.coordinator, found.recipient.org_unit):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{caller.coordinator} is not responsible for this participant",
                )
            await alerts.record_reads(conn, caller.coordinator, [request.participant], now)
        return to_journey(found)

    async def GetCaseload(
        self, request: alerts_pb2.GetCaseloadRequest, context: Context
    ) -> alerts_pb2.Caseload:
        caller, coordinator, org_unit = await self._whose(context, request)
        try:
            limit = _limit(request)
        except Invalid as invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(invalid))
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn:
            total, members = await caseload.members(conn, coordinator, org_unit, now, limit)
            loads = await caseload.loads(conn, org_unit, now) if org_unit else {}
        journeys = await self._journeys([m.participant for m in members])
        # The caseload of a fact ingested moments ago may not be written yet: no one is
        # shown to whom the facts stored now do not give them.
        shown = [m for m in members if _in(journeys[m.participant], now, coordinator, org_unit)]
        participants = [member.participant for member in shown]
        async with self._pool.acquire() as conn:
            unresolved = await alerts.unresolved_counts(conn, participants)
            await alerts.record_reads(conn, caller.coordinator, participants, now)
        entries = []
        for member in shown:
            state, since = standing_in_journey(journeys[member.participant], now)
            entries.append(
                alerts_pb2.CaseloadEntry(
                    participant=member.participant,
                    org_unit=member.org_unit or "",
                    since=_timestamp(member.since),
                    state=state,
                    state_since=_timestamp(since),
                    unresolved_alerts=unresolved.get(member.participant, 0),
                )
            )
        return alerts_pb2.Caseload(
            total=total - (len(members) - len(shown)),
            participants=entries,
            cap=self._cap,
            coordinators=[
                alerts_pb2.CoordinatorLoad(coordinator_id=c, participants=n)
                for c, n in loads.items()
            ],
        )


def _in(journey: Journey, now: datetime, coordinator: str | None, org_unit: str | None) -> bool:
    """Whether the facts stored now make the person this coordinator's, or put them in
    this team's queue."""
    held = held_at(journey, now)
    if held is None:
        return False
    if coordinator:
        return held.coordinator == coordinator
    return held.coordinator is None and held.org_unit == org_unit
