"""The committed AsyncAPI document is the one the event models generate."""

from pathlib import Path

from services.kernel.asyncapi import bus_document, render
from services.kernel.events import EMITTED_BY

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_committed_asyncapi_document_is_the_generated_one():
    assert DOCUMENT.read_text(encoding="utf-8") == render(bus_document()), (
        "docs/asyncapi.json differs from the models: run"
        " `python -m services.kernel.asyncapi docs/asyncapi.json` and commit the result"
    )


def test_every_event_type_has_a_channel_for_each_service_that_emits_it():
    channels = bus_document()["channels"]
    expected = {f"{s}:{t}" for t, services in EMITTED_BY.items() for s in services}
    clocks = {"intake:clock", "journey:clock", "employer:clock"}
    assert expected | clocks | {"dead-letter"} == set(channels)
    assert channels["intake:clock"]["address"] == "los.v1.clock.intake"
    ended = channels["journey:measure.ended"]
    assert ended["address"] == "los.v1.events.journey.{partition}.measure.ended"


def test_every_event_goes_on_the_bus_sealed_for_its_person():
    document = bus_document()
    events = [f"{s}:{t}:Message" for t, services in EMITTED_BY.items() for s in services]
    payloads = {document["components"]["messages"][name]["payload"]["$ref"] for name in events}
    assert payloads == {"#/components/schemas/SealedEvent"}
    assert document["components"]["schemas"]["SealedEvent"]["required"] == [
        "participant",
        "sealed",
    ]
