"""A coordinator's client for `WatchAlerts`: resumes from its last cursor after a break."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from services.kernel.rpc import aio_channel
from services.kernel.settings import get_settings
from services.kernel.tokens import bearer
from services.rpc.los.v1 import alerts_pb2, alerts_pb2_grpc


async def watch(
    address: str,
    token: str,
    *,
    coordinator: str | None = None,
    org_unit: str | None = None,
    after: int = 0,
    broke: Callable[[str], None] | None = None,
) -> AsyncIterator[alerts_pb2.AlertUpdate]:
    """Every alert update for one coordinator or team, for as long as the caller reads.
    `broke` is told why the stream broke, once for each break, before it tries again."""
    metadata = bearer(token)
    if coordinator:
        request = alerts_pb2.WatchAlertsRequest(coordinator_id=coordinator, after=after)
    else:
        request = alerts_pb2.WatchAlertsRequest(org_unit=org_unit or "", after=after)
    told = False
    while True:
        try:
            async with aio_channel(address, get_settings().tls) as channel:
                stub = alerts_pb2_grpc.AlertsStub(channel)
                async for update in stub.WatchAlerts(request, metadata=metadata):
                    request.after = update.cursor
                    told = False
                    yield update
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            if broke is not None and not told:
                broke(f"{error.code().name}: {error.details()}")
                told = True
        await asyncio.sleep(0.5)
