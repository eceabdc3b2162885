"""JSON Schemas of the event contract, generated from the models in `events.py`.

Integrators validate against these without reading Python; they are committed under
`docs/schemas/` and a contract test fails when they drift from the models. Regenerate
them with:

    python -m services.kernel.schemas docs/schemas
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from services.kernel.events import DATA_MODELS, DomainEvent, EdgeEvent

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def edge_event_schemas() -> dict[str, dict[str, Any]]:
    """File name (relative to the schema folder) → JSON Schema."""
    schemas = {
        "edge-event.json": _envelope_schema(EdgeEvent),
        "domain-event.json": _envelope_schema(DomainEvent),
    }
    for event_type, model in DATA_MODELS.items():
        schemas[f"data/{event_type}.json"] = {"$schema": DIALECT, **model.model_json_schema()}
    return schemas


def _envelope_schema(model: type[BaseModel]) -> dict[str, Any]:
    # pydantic can only say that `data` is any one of the data models; JSON Schema can
    # say which one, as `type` picks it: one if/then per event type.
    schema = model.model_json_schema()
    definitions = schema["$defs"]
    schema["properties"]["data"] = {
        "type": "object",
        "title": "Data",
        "description": "type-specific, see the data schema of the event's type",
    }
    selections = []
    for event_type, data_model in DATA_MODELS.items():
        name = data_model.__name__
        if name not in definitions:
            raise LookupError(f"{model.__name__} schema has no definition of {name}")
        selections.append(
            {
                "if": {"properties": {"type": {"const": str(event_type)}}, "required": ["type"]},
                "then": {"properties": {"data": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    schema["allOf"] = selections
    return {"$schema": DIALECT, **schema}


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema file."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(dir: Path) -> None:
    """Write every schema under `dir`, and remove schema files no longer generated."""
    schemas = edge_event_schemas()
    for stale in dir.rglob("*.json"):
        if stale.relative_to(dir).as_posix() not in schemas:
            stale.unlink()
    for name, schema in schemas.items():
        path = dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    write(target)
    print(f"wrote {len(edge_event_schemas())} schemas to {target}")
