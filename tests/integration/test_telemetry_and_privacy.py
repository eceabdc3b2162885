"""One trace from a source's submit to the alert, and no national id outside the vault.

The platform runs with the console exporter, so every process writes its spans as JSON
into its log. After the run the test follows a HANDOVER_GAP alert back through the
spans, then searches every log, every message in the stream (dead letters included) and
every column of every table for the person's national id.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from services.kernel.bus import subject_for
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.settings import Settings
from tests.integration.test_exactly_once import wait_for
from tests.integration.test_handover_gap_live import KEY, assign, next_update, submit
from tests.support import Person, bus_settings, facts_recorded, los

SCHEMAS = ("intake", "journey", "employer", "outcomes")
ASSIGNED = {"coordinator_id": "c-x", "org_unit": "nav-0301"}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    links: tuple[tuple[str, str], ...]
    attributes: dict[str, Any]
    start: str


def spans_in(log_dir: Path) -> list[Span]:
    """The spans ConsoleSpanExporter wrote into the service logs (one JSON object each,
    starting at the beginning of a line, between ordinary log lines)."""
    decoder = json.JSONDecoder()
    spans = []
    for log in sorted(log_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        at = 0
        while (at := text.find("{\n", at)) >= 0:
            if at > 0 and text[at - 1] != "\n":
                at += 1
                continue
            try:
                found, end = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                at += 1
                continue
            at = end
            if not isinstance(found, dict) or "context" not in found:
                continue
            spans.append(
                Span(
                    service=found["resource"]["attributes"]["service.name"],
                    name=found["name"],
                    trace_id=found["context"]["trace_id"],
                    span_id=found["context"]["span_id"],
                    parent_id=found["parent_id"],
                    links=tuple(
                        (link["context"]["trace_id"], link["context"]["span_id"])
                        for link in found["links"]
                    ),
                    attributes=found["attributes"],
                    start=found["start_time"],
                )
            )
    return spans


def written_forms(national_id: str) -> list[bytes]:
    """The id as sent, and as it might be written with a separator after the birth date."""
    return [
        form.encode()
        for form in (
            national_id,
            f"{national_id[:6]} {national_id[6:]}",
            f"{national_id[:6]}-{national_id[6:]}",
        )
    ]


def service_logs(log_dir: Path) -> dict[str, bytes]:
    return {log.name: log.read_bytes() for log in log_dir.glob("*.log")}


def holds(blob: bytes, forms: list[bytes]) -> bool:
    return any(form in blob for form in forms)


async def stream_messages(nats_url: str, stream: str) -> list[tuple[str, bytes, bytes]]:
    """Every message in the stream: subject, body and raw headers."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        state = (await js.stream_info(stream)).state
        found = []
        for seq in range(state.first_seq, state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            # The header block as stored (base64 in the API reply), and as parsed.
            headers = base64.b64decode(message.hdrs or "")
            headers += json.dumps(message.headers or {}).encode()
            found.append((message.subject or "", message.data or b"", headers))
        return found
    finally:
        await connection.close()


def database_values(database_url: str) -> dict[tuple[str, str, str], list[bytes]]:
    """Every value of every column of every table in the services' schemas, as bytes
    (bytea as stored, everything else as its text form)."""
    values: dict[tuple[str, str, str], list[bytes]] = {}
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " USING (table_schema, table_name)"
            " WHERE t.table_type = 'BASE TABLE' AND c.table_schema = ANY(%s)",
            (list(SCHEMAS),),
        ).fetchall()
        for schema, table, column, data_type in columns:
            column_sql: sql.Composable = sql.Identifier(column)
            if data_type != "bytea":
                column_sql = sql.SQL("{}::text").format(column_sql)
            rows = conn.execute(
                sql.SQL("SELECT {} FROM {}").format(column_sql, sql.Identifier(schema, table))
            ).fetchall()
            values[(schema, table, column)] = [
                bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                for (value,) in rows
                if value is not None
            ]
    return values


async def dead_letters(env: dict[str, str]) -> int:
    messages = await stream_messages(env["NATS_URL"], env["LOS_STREAM"])
    return sum(1 for subject, _, _ in messages if subject == env["LOS_DEAD_LETTER_SUBJECT"])


@pytest.mark.servers
async def test_an_alert_is_traced_back_to_its_submit_and_no_national_id_leaves_the_vault(
    real_servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spans are exported within 0.2 s (they are flushed at shutdown too).
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    person = Person.make(41)
    participant = pseudonym(person.national_id, KEY)
    # The same person with a wrong last check digit: rejected at the edge.
    bad_id = person.national_id[:-1] + str((int(person.national_id[-1]) + 1) % 10)
    misspelt = Person(bad_id, person.org)
    now = datetime.now(UTC)

    with los(real_servers, tmp_path, telemetry="console", rules__handover_gap="PT2S") as running:
        env = running.env
        intake, journey = running.address("intake"), running.address("journey")

        for address, event in (
            (intake, misspelt.event("coordinator.assigned", ASSIGNED, now)),
            (journey, misspelt.measure_started("m-0", now)),
        ):
            reply = await submit(address, [event])
            assert reply.accepted == 0
            assert [r.field for r in reply.rejected] == ["person"], reply
            assert not holds(reply.rejected[0].reason.encode(), written_forms(bad_id))

        await assign(intake, person, "c-tel", now - timedelta(days=20))
        # The assignment is ingested on its own, so the measure's ingest has one parent.
        await wait_for(lambda: facts_recorded(env["DATABASE_URL"]) == 1)
        reply = await submit(
            journey,
            [
                person.measure_started("m-1", now - timedelta(days=10), recorded_at=now),
                person.measure_ended("m-1", now, recorded_at=now),
            ],
        )
        assert reply.accepted == 2, reply

        update = await next_update(running.address("outcomes"), "c-tel", within=30)
        assert (update.change, update.alert.rule) == ("raised", "HANDOVER_GAP")
        assert update.alert.participant == participant

        # Something for the dead-letter subject, so that it is searched too.
        settings = bus_settings(env)
        connection = await nats.connect(env["NATS_URL"])
        try:
            js = connection.jetstream()
            subject = subject_for(settings, "journey", participant, "measure.started")
            await js.publish(subject, b"{not json", headers={"Nats-Msg-Id": "garbage"})
        finally:
            await connection.close()

        deadline = asyncio.get_running_loop().time() + 20
        while not await dead_letters(env):
            assert asyncio.get_running_loop().time() < deadline, "nothing was dead-lettered"
            await asyncio.sleep(0.2)
    # The processes have stopped: every span is in the logs.

    spans = spans_in(tmp_path)
    by_id = {span.span_id: span for span in spans}

    # submit → outbox.publish → outcomes.ingest, one trace, for both source services.
    ingested: dict[str, list[Span]] = {}
    for service, accepted in (("intake", 1), ("journey", 2)):
        [submitted] = [
            s for s in spans if s.name == f"{service}.submit" and s.attributes["los.accepted"]
        ]
        assert submitted.service == f"los-{service}"
        assert submitted.attributes["los.accepted"] == accepted
        assert submitted.parent_id is None
        in_trace = [s for s in spans if s.trace_id == submitted.trace_id]
        publishes = [s for s in in_trace if s.name == "outbox.publish"]
        assert publishes, f"no outbox.publish in the trace of {service}.submit"
        assert {(s.service, s.parent_id) for s in publishes} == {
            (f"los-{service}", submitted.span_id)
        }
        assert sum(s.attributes["los.events"] for s in publishes) == accepted
        ingests = [s for s in in_trace if s.name == "outcomes.ingest"]
        assert ingests, f"no outcomes.ingest in the trace of {service}.submit"
        assert all(s.service == "los-outcomes" for s in ingests)
        assert all(by_id[s.parent_id or ""].name == "outbox.publish" for s in ingests)
        assert sum(s.attributes["los.events"] for s in ingests) == accepted
        ingested[service] = sorted(ingests, key=lambda s: s.start)
        assert {s.name for s in in_trace} == {
            f"{service}.submit",
            "outbox.publish",
            "outcomes.ingest",
        }

    # The rules span that raised the alert links to the ingest of the deciding fact (the
    # measure's end, the person's latest fact).
    [raising] = [
        s for s in spans if s.name == "outcomes.rules" and s.attributes.get("los.alert_changes")
    ]
    assert raising.service == "los-outcomes"
    last_ingest = ingested["journey"][-1]
    assert raising.links == ((last_ingest.trace_id, last_ingest.span_id),)

    # No national id, well-formed or not, in any log (spans included) ...
    forms = written_forms(person.national_id) + written_forms(bad_id)
    logs = service_logs(tmp_path)
    assert set(logs) == {f"{s}.log" for s in SCHEMAS}
    # (Only where a leak is is reported, never the text around it.)
    assert [name for name, text in logs.items() if holds(text, forms)] == []

    # ... in any message body or header on the bus, dead letters included ...
    messages = await stream_messages(env["NATS_URL"], env["LOS_STREAM"])
    assert len(messages) == 5  # assigned, started, ended, the garbage and its dead letter
    leaks = [
        i
        for i, (subject, body, headers) in enumerate(messages)
        if holds(subject.encode() + body + headers, forms)
    ]
    assert leaks == []
    assert sum(participant.encode() in body for _, body, _ in messages) == 3

    # ... or in any table, the vault included: it holds the id encrypted.
    values = database_values(env["DATABASE_URL"])
    assert {schema for schema, _, _ in values} == set(SCHEMAS)
    leaked = [where for where, column in values.items() if any(holds(v, forms) for v in column)]
    assert leaked == []
    [ciphertext] = values[("intake", "vault", "national_id")]
    vault = Fernet(Settings().vault_key.get_secret_value().encode())
    assert vault.decrypt(ciphertext).decode() == person.national_id
    # The search looked where the person's data is: their pseudonym is in every store.
    for schema in ("intake", "journey", "outcomes"):
        assert any(
            participant.encode() in value
            for (s, _, _), column_values in values.items()
            if s == schema
            for value in column_values
        ), f"{participant} not found in {schema}: the search missed the data"
