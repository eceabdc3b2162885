"""The `Sources` gRPC API that intake, journey and employer each serve (proto/los/v1).

It reads a batch of edge events, rejects each bad one with the field at fault, replaces
the national id by the pseudonymous participant id, and hands the rest to the service's
store in one transaction, which accepts them, holds an end until its start comes, or
refuses them by their lifecycle. Nothing valid is lost because a neighbour was bad.
`CheckEvents` tells a source what became of events it sent, held ones above all; who
asked about whom is recorded first (`checks.py`).

Every call carries a source system's bearer token (`services/kernel/tokens.py`). An event
for a `source.system`, or a `source.org`, that the token does not name is rejected by
that field, like any other invalid event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from services.kernel.checks import Checks
from services.kernel.events import (
    EMITTED_BY,
    DomainEvent,
    InvalidEvent,
    check_recorded_at,
    parse_edge_event,
)
from services.kernel.ids import Pseudonyms, validate_national_id
from services.kernel.outbox import OutboxRelay
from services.kernel.settings import Settings
from services.kernel.source import ACCEPTED, DUPLICATE, Refused, SourceApplication, Verdict, Waiting
from services.kernel.store import Worker
from services.kernel.telemetry import current_traceparent, tracer
from services.kernel.tokens import SourceClient, authenticated, source_client_from
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc


def _raw_request_type() -> Any:
    """`SubmitEventsRequest` with its events read as bytes, not text: the same wire format,
    but an event that is not UTF-8 no longer fails the whole request as it is decoded
    (proto3 text must be UTF-8); `parse_edge_event` rejects it alone."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="los/v1/sources_raw.proto", package="los.v1.raw", syntax="proto3"
    )
    fields = proto.message_type.add(name="SubmitEventsRequest").field
    fields.add(
        name="events",
        number=sources_pb2.SubmitEventsRequest.EVENTS_FIELD_NUMBER,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("los.v1.raw.SubmitEventsRequest")
    )


RawSubmitEventsRequest = _raw_request_type()
EventState = sources_pb2.EventState
SERVICE = "los.v1.Sources"
CHECK_AT_MOST = 1000  # events a CheckEvents request may ask about


def register(servicer: SourcesServicer, server: grpc.aio.Server) -> None:
    """As the generated `add_SourcesServicer_to_server`, reading requests as raw events."""
    handlers = {
        "SubmitEvents": grpc.unary_unary_rpc_method_handler(
            servicer.SubmitEvents,
            request_deserializer=RawSubmitEventsRequest.FromString,
            response_serializer=sources_pb2.SubmitEventsResponse.SerializeToString,
        ),
        "CheckEvents": grpc.unary_unary_rpc_method_handler(
            servicer.CheckEvents,
            request_deserializer=sources_pb2.CheckEventsRequest.FromString,
            response_serializer=sources_pb2.CheckEventsResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class SourcesServicer(sources_pb2_grpc.SourcesServicer):
    def __init__(
        self,
        app: SourceApplication,
        worker: Worker,
        settings: Settings,
        relay: OutboxRelay,
        checks: Checks,
    ) -> None:
        self._app = app
        self._worker = worker
        self._settings = settings
        # A person's national id is checked on their first event, not on each; it
        # remembers as many people as the store's cache holds.
        self._pseudonyms = Pseudonyms(
            settings.pseudonym_key.get_secret_value(), settings.aggregate_cache_size
        )
        self._relay = relay
        self._checks = checks

    async def _client(self, context: grpc.aio.ServicerContext[Any, Any]) -> SourceClient:
        key = self._settings.source_token_key.get_secret_value()
        limit = self._settings.token_max_lifetime
        return await authenticated(context, lambda header: source_client_from(header, key, limit))

    def _read(
        self,
        raw: bytes | str,
        client: SourceClient,
        received_at: datetime,
        identities: dict[str, str],
    ) -> DomainEvent:
        edge = parse_edge_event(raw, self._pseudonyms)
        if not client.covers_system(edge.source.system):
            raise InvalidEvent(
                str(edge.event_id),
                "source.system",
                f"{client.name} may send for {', '.join(sorted(client.systems))} only",
            )
        if not client.covers_org(edge.source.org):
            raise InvalidEvent(
                str(edge.event_id),
                "source.org",
                f"{client.name} may send as {', '.join(sorted(client.orgs))} only",
            )
        service = self._app.service
        if service not in EMITTED_BY[edge.type]:
            owners = " or ".join(sorted(EMITTED_BY[edge.type]))
            raise InvalidEvent(
                str(edge.event_id), "type", f"{service} does not take {edge.type}; send to {owners}"
            )
        check_recorded_at(edge, received_at, self._settings.max_future_recorded_at)
        participant = self._pseudonyms.of(edge.person)
        identities[participant] = edge.person
        return edge.to_domain(participant, service, received_at)

    async def SubmitEvents(
        self,
        request: sources_pb2.SubmitEventsRequest | Any,  # served: `RawSubmitEventsRequest`
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sources_pb2.SubmitEventsResponse:
        client = await self._client(context)
        received_at = datetime.now(UTC)
        response = sources_pb2.SubmitEventsResponse()
        with tracer(__name__).start_as_current_span(f"{self._app.service}.submit") as span:
            identities: dict[str, str] = {}
            batch: list[tuple[DomainEvent, dict[str, str]]] = []
            positions: list[int] = []
            trace = current_traceparent()
            for index, raw in enumerate(request.events):
                try:
                    batch.append((self._read(raw, client, received_at, identities), trace))
                    positions.append(index)
                except InvalidEvent as invalid:
                    response.rejected.add(
                        index=index,
                        event_id=invalid.event_id or "",
                        field=invalid.field,
                        reason=invalid.reason,
                    )
            with self._relay.arrivals.receiving(received_at):
                verdicts = await self._worker.run(self._store, batch, identities)
            for index, (domain_event, _), verdict in zip(positions, batch, verdicts, strict=True):
                if verdict == ACCEPTED:
                    response.accepted += 1
                elif verdict == DUPLICATE:
                    response.duplicates += 1
                elif isinstance(verdict, Refused | Waiting):
                    into = response.rejected if isinstance(verdict, Refused) else response.held
                    into.add(
                        index=index,
                        event_id=str(domain_event.event_id),
                        field=verdict.field,
                        reason=verdict.reason,
                    )
            response.rejected.sort(key=lambda rejection: rejection.index)
            span.set_attribute("los.accepted", response.accepted)
            span.set_attribute("los.rejected", len(response.rejected))
            span.set_attribute("los.held", len(response.held))
        if response.accepted:
            self._relay.wake.set()
        return response

    async def CheckEvents(
        self,
        request: sources_pb2.CheckEventsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sources_pb2.CheckEventsResponse:
        client = await self._client(context)
        if len(request.events) > CHECK_AT_MOST:
            # It shares the store's one worker thread with SubmitEvents.
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"at most {CHECK_AT_MOST} events a request"
            )
        states = [EventState() for _ in request.events]  # ids echoed only once read as UUIDs
        asked: list[tuple[str, str]] = []
        positions: list[int] = []
        for index, sent in enumerate(request.events):
            try:
                event_id = states[index].event_id = str(UUID(sent.event_id))
            except ValueError:
                _invalid(states[index], "event_id", "must be a UUID")
                continue
            try:
                validate_national_id(sent.person)
            except ValueError as error:
                _invalid(states[index], "person", f"not a national identity number: {error}")
                continue
            asked.append((self._pseudonyms.of(sent.person), event_id))
            positions.append(index)
        found = await self._worker.run(self._checked, asked, client.name)
        for index, verdict in zip(positions, found, strict=True):
            state = states[index]
            if verdict == ACCEPTED:
                state.state = EventState.ACCEPTED
            elif isinstance(verdict, Refused | Waiting):
                state.state = (
                    EventState.HELD if isinstance(verdict, Waiting) else EventState.REFUSED
                )
                state.field, state.reason = verdict.field, verdict.reason
            else:
                state.state = EventState.NOT_KNOWN
        return sources_pb2.CheckEventsResponse(events=states)

    def _checked(self, asked: list[tuple[str, str]], reader: str) -> list[Verdict | None]:
        """What became of the events asked about, once the question is recorded."""
        self._checks.record(datetime.now(UTC), reader, {participant for participant, _ in asked})
        return self._app.states(asked)

    def _store(
        self, batch: list[tuple[DomainEvent, dict[str, str]]], identities: dict[str, str]
    ) -> list[Verdict]:
        return self._app.accept_batch(batch, self._settings.rules.lifecycle_hold, identities)


def _invalid(state: EventState, field: str, reason: str) -> None:
    state.state = EventState.INVALID
    state.field, state.reason = field, reason
