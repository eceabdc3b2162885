"""The committed JSON Schemas in docs/schemas are the ones the models generate, and the
contract's own example is valid against both the models and the schemas."""

import copy
import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.kernel.events import DATA_MODELS, EdgeEvent, parse_edge_event
from services.kernel.ids import synthetic_national_id
from services.kernel.schemas import edge_event_schemas, render, write

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
REGENERATE = "run `python -m services.kernel.schemas docs/schemas` and commit the result"

# CONTRACT §1, verbatim but for `person`, whose example value is no valid national id.
CONTRACT_EXAMPLE = """
{
  "event_id": "6f1c0d8e-6a4b-4c57-9e53-3f2b1f0b7a11",
  "type": "measure.ended",
  "occurred_at": "2025-03-14T09:00:00+01:00",
  "recorded_at": "2025-03-15T16:20:00+01:00",
  "source": {"system": "nav", "org": "974760673"},
  "person": "01017012345",
  "data": {"measure_id": "m-123", "status": "HAR_SLUTTET", "reason": "IKKE_MOTT"}
}
"""


def contract_example() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(CONTRACT_EXAMPLE)
    event["person"] = synthetic_national_id(random.Random(1), date(1970, 1, 1))
    return event


def committed() -> set[str]:
    return {path.relative_to(SCHEMA_DIR).as_posix() for path in SCHEMA_DIR.rglob("*.json")}


@pytest.mark.parametrize(("name", "schema"), sorted(edge_event_schemas().items()))
def test_committed_schema_is_the_generated_one(name, schema):
    path = SCHEMA_DIR / name
    assert path.exists(), f"docs/schemas/{name} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == render(schema), (
        f"docs/schemas/{name} differs from the models: {REGENERATE}"
    )


def test_no_schema_is_committed_that_the_models_no_longer_generate():
    extra = committed() - set(edge_event_schemas())
    assert not extra, f"docs/schemas has files no model generates, {sorted(extra)}: {REGENERATE}"


def test_there_is_a_schema_for_the_envelopes_and_every_event_type():
    expected = {"edge-event.json", "domain-event.json"} | {
        f"data/{event_type}.json" for event_type in DATA_MODELS
    }
    assert set(edge_event_schemas()) == expected


def test_write_regenerates_exactly_and_clears_stale_files(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "measure.cancelled.json").write_text("{}\n")
    write(tmp_path)
    written = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.json")}
    assert written == set(edge_event_schemas())
    for name, schema in edge_event_schemas().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == render(schema)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.mark.parametrize(("name", "schema"), sorted(edge_event_schemas().items()))
def test_every_reference_resolves(name, schema):
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/")
        assert ref.removeprefix("#/$defs/") in schema.get("$defs", {}), f"{name}: {ref} undefined"


@pytest.mark.parametrize("name", ["edge-event.json", "domain-event.json"])
def test_the_envelope_schema_picks_the_data_model_by_type(name):
    schema = edge_event_schemas()[name]
    picked = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["properties"]["data"]["$ref"]
        for rule in schema["allOf"]
    }
    assert picked == {
        str(event_type): f"#/$defs/{model.__name__}" for event_type, model in DATA_MODELS.items()
    }


def test_the_contracts_example_is_a_valid_event():
    event = parse_edge_event(json.dumps(contract_example()))
    assert event == EdgeEvent.model_validate(contract_example())
    assert str(event.event_id) == "6f1c0d8e-6a4b-4c57-9e53-3f2b1f0b7a11"


def test_the_contracts_example_is_valid_against_the_json_schema():
    validator = jsonschema.Draft202012Validator(edge_event_schemas()["edge-event.json"])
    validator.validate(contract_example())
    wrong_data = copy.deepcopy(contract_example())
    del wrong_data["data"]["measure_id"]
    assert not validator.is_valid(wrong_data)
