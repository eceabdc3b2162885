"""A message outcomes cannot process is parked on the dead-letter subject with the reason,
and the stream goes on behind it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from services.kernel.bus import DEAD_REASON, subject_for
from services.kernel.embedded import Servers
from services.kernel.ids import pseudonym
from services.kernel.keys import StoredKeys, seal
from tests.integration.test_exactly_once import journey_facts, wait_for
from tests.integration.test_handover_gap_live import KEY, submit
from tests.support import Person, bus_settings, los


@pytest.mark.servers
async def test_unreadable_and_misaddressed_messages_are_parked_and_the_stream_goes_on(
    real_servers: Servers, tmp_path: Path
) -> None:
    with los(real_servers, tmp_path) as running:
        env = running.env
        settings = bus_settings(env)
        person = Person.make(31)
        participant = pseudonym(person.national_id, KEY)
        connection = await nats.connect(env["NATS_URL"])
        try:
            js = connection.jetstream()
            subject = subject_for(settings, "journey", participant, "measure.started")
            await js.publish(subject, b"{not json", headers={"Nats-Msg-Id": "garbage"})
            # A well-formed event whose body claims another service than its subject.
            started = json.loads(person.measure_started("m-1", datetime.now(UTC)))
            forged = {
                **{k: v for k, v in started.items() if k != "person"},
                "participant": participant,
                "service": "employer",
            }
            await js.publish(subject, json.dumps(forged).encode(), headers={"Nats-Msg-Id": "f"})
            # Sealed as for someone else than the event names, and with someone else's key.
            other = pseudonym(Person.make(32).national_id, KEY)
            keys = StoredKeys(env["DATABASE_URL"])
            try:
                made = keys.for_writing([participant, other])
            finally:
                keys.close()
            inner = json.dumps({**forged, "service": "journey"}).encode()
            swapped = {"participant": other, "sealed": seal(made[other], other, inner)}
            wrong_key = {
                "participant": participant,
                "sealed": seal(made[other], participant, inner),
            }
            for n, body in enumerate((swapped, wrong_key)):
                await js.publish(
                    subject, json.dumps(body).encode(), headers={"Nats-Msg-Id": f"s{n}"}
                )
            reply = await submit(
                running.address("journey"), [person.measure_started("m-2", datetime.now(UTC))]
            )
            assert reply.accepted == 1

            await wait_for(lambda: len(journey_facts(running, participant)) == 1)
            parked = await js.pull_subscribe(env["LOS_DEAD_LETTER_SUBJECT"], durable="check")
            messages = await parked.fetch(4, timeout=10)
        finally:
            await connection.close()

        reasons = {m.data: m.headers[DEAD_REASON] for m in messages if m.headers}
        assert reasons[b"{not json"].startswith("not a domain event")
        assert "body says" in reasons[json.dumps(forged).encode()]
        assert (
            reasons[json.dumps(swapped).encode()] == "sealed for another participant than it names"
        )
        assert reasons[json.dumps(wrong_key).encode()] == "sealed: not with its participant's key"
