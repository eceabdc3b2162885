"""`SubmitEvents` of a source service, called in process on the library's in-memory store:
an event the service cannot take is rejected by name and costs its batch nothing else
(CONTRACT §1: "nothing valid is lost because a neighbour was bad"); and only a source
system's token opens the API, for the systems and organisations it names."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import cast

import grpc
import pytest

from services.journey.application import JourneyApplication
from services.kernel.ids import pseudonym
from services.kernel.outbox import Arrivals, OutboxRelay
from services.kernel.rpc import Service, start_server
from services.kernel.settings import Settings
from services.kernel.sources import SERVICE, RawSubmitEventsRequest, SourcesServicer, register
from services.kernel.store import Worker
from services.kernel.tokens import bearer, mint_source
from services.outcomes.auth import mint
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc
from tests.unit.source_events import ANNE, BJORN, day, measure_ended, measure_started


class _Relay:
    """What the servicer asks of its outbox relay: the arrivals it counts, and a wake."""

    def __init__(self) -> None:
        self.arrivals = Arrivals()
        self.wake = asyncio.Event()


KEY = Settings().source_token_key.get_secret_value()
PSEUDONYM_KEY = Settings().pseudonym_key.get_secret_value()  # the servicer's
NOW = datetime.now(UTC)
NAV = bearer(mint_source(KEY, "nav-arena", ["nav"], now=NOW))


@asynccontextmanager
async def _stub(servicer: SourcesServicer) -> AsyncIterator[sources_pb2_grpc.SourcesAsyncStub]:
    """A client of `servicer`, served over gRPC on a free port while it is used."""
    server, port = await start_server([Service(servicer, register, SERVICE)], "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield sources_pb2_grpc.SourcesStub(channel)
    finally:
        await server.stop(grace=None)


class _Call:
    """What the servicer asks of a call's context: its metadata."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


class _Checks(list[tuple[str, str]]):
    """The questions recorded, as (reader, participant): `CheckLog` without its table."""

    def record(self, at: datetime, reader: str, participants: Iterable[str]) -> None:
        self.extend((reader, participant) for participant in sorted(participants))


@pytest.fixture
def checks() -> _Checks:
    return _Checks()


@pytest.fixture
def servicer(checks: _Checks) -> Iterator[SourcesServicer]:
    worker = Worker("journey")
    relay = cast(OutboxRelay, _Relay())
    try:
        yield SourcesServicer(JourneyApplication(), worker, Settings(), relay, checks)
    finally:
        worker.close()


def _with_note(line: str, note: str) -> str:
    """The event with `"note": <note>` (JSON text) added to its data."""
    return line.replace('"data": {', f'"data": {{"note": {note}, ', 1)


def _with(line: str, **changes: object) -> str:
    return json.dumps(json.loads(line) | changes)


async def test_events_no_store_could_keep_are_rejected_and_their_neighbours_stored(
    servicer: SourcesServicer,
) -> None:
    start = measure_started(ANNE, "m-1", day(0))
    bad = [
        (_with_note(measure_started(ANNE, "m-2", day(0)), '"\\ud83d"'), "data.note"),
        (_with_note(measure_started(ANNE, "m-3", day(0)), "[" * 600 + "]" * 600), "data"),
        (_with_note(measure_started(ANNE, "m-4", day(0)), "NaN"), "data"),
        (
            _with(measure_started(ANNE, "m-5", day(0)), occurred_at="9999-12-01T00:00:00Z"),
            "occurred_at",
        ),
    ]
    later = measure_started(ANNE, "m-6", day(1))
    request = sources_pb2.SubmitEventsRequest(events=[start, *(line for line, _ in bad), later])

    reply = await servicer.SubmitEvents(request, _Call(NAV))  # type: ignore[arg-type]

    assert reply.accepted == 2
    assert [(r.index, r.field) for r in reply.rejected] == [
        (index, field) for index, (_, field) in enumerate(bad, start=1)
    ]
    assert all(r.event_id and r.reason for r in reply.rejected)


async def test_an_event_that_is_not_utf_8_is_rejected_alone_over_grpc(
    servicer: SourcesServicer,
) -> None:
    # proto3 text must be UTF-8: read as text, one such event failed the whole request.
    good = measure_started(ANNE, "m-1", day(0)).encode()
    latin_1 = measure_started(ANNE, "m-2", day(0)).replace("ARBEIDSTRENING", "Ø").encode("latin-1")
    request = RawSubmitEventsRequest(events=[good, latin_1]).SerializeToString()
    server, port = await start_server([Service(servicer, register, SERVICE)], "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            submit = channel.unary_unary(
                f"/{SERVICE}/SubmitEvents",
                request_serializer=lambda raw: raw,
                response_deserializer=sources_pb2.SubmitEventsResponse.FromString,
            )
            reply = await submit(request, metadata=NAV)
    finally:
        await server.stop(grace=None)

    assert reply.accepted == 1
    assert [(r.index, r.field) for r in reply.rejected] == [(1, "")]
    assert reply.rejected[0].reason.startswith("not valid JSON")


async def test_what_became_of_a_held_event_is_asked_over_grpc(
    servicer: SourcesServicer, checks: _Checks
) -> None:
    end = measure_ended(ANNE, "m-1", day(30))
    end_id = json.loads(end)["event_id"]
    late_start = ANNE.measure_started("m-1", day(0), recorded_at=day(38))
    sent = [
        sources_pb2.SentEvent(event_id=end_id, person=ANNE.national_id),
        sources_pb2.SentEvent(event_id=end_id, person=BJORN.national_id),
        sources_pb2.SentEvent(event_id="e-1", person=ANNE.national_id),
        sources_pb2.SentEvent(event_id=end_id, person=ANNE.national_id[:10]),
    ]
    async with _stub(servicer) as stub:
        submitted = await stub.SubmitEvents(
            sources_pb2.SubmitEventsRequest(events=[end]), metadata=NAV
        )
        held = await stub.CheckEvents(sources_pb2.CheckEventsRequest(events=sent), metadata=NAV)
        await stub.SubmitEvents(sources_pb2.SubmitEventsRequest(events=[late_start]), metadata=NAV)
        refused = await stub.CheckEvents(
            sources_pb2.CheckEventsRequest(events=sent[:1]), metadata=NAV
        )

    assert [h.event_id for h in submitted.held] == [end_id]
    State = sources_pb2.EventState
    assert [(e.event_id, e.state, e.field) for e in held.events] == [
        (end_id, State.HELD, "data.measure_id"),
        (end_id, State.NOT_KNOWN, ""),  # Bjørn has no such event
        ("", State.INVALID, "event_id"),  # not echoed: it could hold anything
        (end_id, State.INVALID, "person"),
    ]
    assert ANNE.national_id[:10] not in held.events[3].reason
    # Who asked about whom, before each answer: the people of readable questions.
    anne, bjorn = (pseudonym(p.national_id, PSEUDONYM_KEY) for p in (ANNE, BJORN))
    assert checks == [*sorted([("nav-arena", anne), ("nav-arena", bjorn)]), ("nav-arena", anne)]
    [state] = refused.events
    assert (state.state, state.field, state.reason) == (
        State.REFUSED,
        "data.measure_id",
        "its start was recorded more than P7D after it",
    )


async def test_a_check_of_more_than_a_thousand_events_is_refused(servicer: SourcesServicer) -> None:
    # It shares the store's one worker thread with SubmitEvents.
    sent = [sources_pb2.SentEvent(event_id=str(n), person=ANNE.national_id) for n in range(1001)]
    async with _stub(servicer) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CheckEvents(sources_pb2.CheckEventsRequest(events=sent), metadata=NAV)
        fine = await stub.CheckEvents(
            sources_pb2.CheckEventsRequest(events=sent[:1000]), metadata=NAV
        )

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(fine.events) == 1000


async def test_events_for_a_system_or_an_organisation_the_token_does_not_name_are_rejected(
    servicer: SourcesServicer,
) -> None:
    oslo = bearer(mint_source(KEY, "oslo", ["kommune"], ["0301"], now=NOW))
    theirs = measure_started(ANNE, "m-1", day(0), system="kommune", org="0301")
    navs = measure_started(ANNE, "m-2", day(0), system="nav", org="0301")
    bergens = measure_started(ANNE, "m-3", day(0), system="kommune", org="4601")
    request = sources_pb2.SubmitEventsRequest(events=[navs, theirs, bergens])

    reply = await servicer.SubmitEvents(request, _Call(oslo))  # type: ignore[arg-type]

    assert reply.accepted == 1
    assert [(r.index, r.event_id, r.field, r.reason) for r in reply.rejected] == [
        (0, json.loads(navs)["event_id"], "source.system", "oslo may send for kommune only"),
        (2, json.loads(bergens)["event_id"], "source.org", "oslo may send as 0301 only"),
    ]
    # A token bound to no organisation sends as any organisation of its systems.
    anywhere = bearer(mint_source(KEY, "kommune-gateway", ["kommune"], now=NOW))
    again = sources_pb2.SubmitEventsRequest(events=[bergens])
    reply = await servicer.SubmitEvents(again, _Call(anywhere))  # type: ignore[arg-type]
    assert reply.accepted == 1


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        pytest.param((), "no bearer token", id="none"),
        pytest.param(
            bearer(mint(KEY, "c-1", [], now=NOW)),  # for the Alerts API, with the sources' key
            "the token is not valid: Audience doesn't match",
            id="a coordinator's",
        ),
        pytest.param(
            bearer(
                mint_source("another-token-key-of-32-bytes-or-more", "nav-arena", ["nav"], now=NOW)
            ),
            "the token is not valid",
            id="signed with another key",
        ),
        pytest.param(
            bearer(mint_source(KEY, "nav-arena", ["nav"], now=NOW - timedelta(hours=9))),
            "the token has expired",
            id="expired",
        ),
    ],
)
async def test_only_a_source_token_opens_the_api(
    servicer: SourcesServicer, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    start = measure_started(ANNE, "m-1", day(0))
    asked = [sources_pb2.SentEvent(event_id=json.loads(start)["event_id"], person=ANNE.national_id)]
    async with _stub(servicer) as stub:
        refused = []
        for call in (
            stub.SubmitEvents(sources_pb2.SubmitEventsRequest(events=[start]), metadata=metadata),
            stub.CheckEvents(sources_pb2.CheckEventsRequest(events=asked), metadata=metadata),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            refused.append((error.value.code(), error.value.details() or ""))
        [state] = (
            await stub.CheckEvents(sources_pb2.CheckEventsRequest(events=asked), metadata=NAV)
        ).events

    assert [code for code, _ in refused] == [grpc.StatusCode.UNAUTHENTICATED] * 2
    assert all(details.startswith(reason) for _, details in refused), refused
    assert state.state == sources_pb2.EventState.NOT_KNOWN  # nothing was stored


async def test_a_question_that_cannot_be_recorded_is_not_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class _Down:
        def record(self, at: datetime, reader: str, participants: Iterable[str]) -> None:
            raise ConnectionError("the database is down")

    app, read = JourneyApplication(), list[object]()
    monkeypatch.setattr(app, "states", read.append)
    worker = Worker("journey")
    servicer = SourcesServicer(app, worker, Settings(), cast(OutboxRelay, _Relay()), _Down())
    asked = [sources_pb2.SentEvent(event_id=str(uuid.uuid4()), person=ANNE.national_id)]
    try:
        async with _stub(servicer) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.CheckEvents(sources_pb2.CheckEventsRequest(events=asked), metadata=NAV)
    finally:
        worker.close()

    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    assert read == []  # the store was not asked
