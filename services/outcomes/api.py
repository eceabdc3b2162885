"""The `Alerts` gRPC API (proto/los/v1/alerts.proto): coordinators and team queues watch
their alerts, backlog first, then live, resumable from the last cursor they handled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.outcomes.alerts import AlertFeed, Change
from services.rpc.los.v1 import alerts_pb2, alerts_pb2_grpc


def _timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def to_update(change: Change) -> alerts_pb2.AlertUpdate:
    alert = change.alert
    return alerts_pb2.AlertUpdate(
        cursor=change.cursor,
        change=change.change,
        alert=alerts_pb2.Alert(
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
        ),
    )


class AlertsServicer(alerts_pb2_grpc.AlertsServicer):
    def __init__(self, feed: AlertFeed) -> None:
        self._feed = feed

    async def WatchAlerts(
        self,
        request: alerts_pb2.WatchAlertsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[alerts_pb2.AlertUpdate]:
        recipient = request.WhichOneof("recipient")
        if recipient is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "give coordinator_id or org_unit to watch"
            )
        changes = self._feed.watch(
            coordinator=request.coordinator_id or None,
            org_unit=request.org_unit or None,
            after=request.after,
        )
        async for change in changes:
            yield to_update(change)
