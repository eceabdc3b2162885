"""What an event's `data` may hold (CONTRACT §1, §2): unknown fields are kept as long as a
store can keep them, and no field may name a person, whose national id belongs in
`person` alone."""

import json
import random
from datetime import date
from typing import Any

import pytest

from services.kernel.events import DomainEvent, parse_edge_event
from services.kernel.ids import pseudonym, synthetic_national_id
from tests.unit.edge_examples import DATA_EXAMPLES, PERSON, RECEIVED, edge, rejection

ANOTHER_PERSON = synthetic_national_id(random.Random(3), date(2039, 3, 15))


def nested(levels: int) -> Any:
    value: Any = "bunn"
    for level in range(levels):
        value = {"inn": value} if level % 2 else [value]
    return value


def test_an_unknown_data_field_may_nest_32_levels_and_is_kept_whole() -> None:
    data = {**DATA_EXAMPLES["measure.ended"], "history": nested(32)}
    event = parse_edge_event(json.dumps(edge(data=data)))
    domain = event.to_domain(pseudonym(PERSON, "k"), "journey", RECEIVED)
    assert json.loads(domain.model_dump_json())["data"]["history"] == nested(32)


@pytest.mark.parametrize("data_path", [("history",), ("evidence", "history")])
def test_an_unknown_data_field_nested_deeper_is_rejected_by_name(data_path) -> None:
    # Deeper ones cannot be stored: accepting them would fail the whole batch later.
    data = json.loads(json.dumps(DATA_EXAMPLES["followup.six_month_checked"]))
    *parents, name = data_path
    parent = data
    for key in parents:
        parent = parent[key]
    parent[name] = nested(40)
    error = rejection(json.dumps(edge("followup.six_month_checked", data=data)))
    assert error.field == ".".join(["data", *parents])
    assert error.reason == "history: nests deeper than 32 levels"


def _with_unknown_field(text: str) -> str:
    """A valid measure.started with `"note": <text>` added to its data, as JSON text."""
    line = json.dumps(edge("measure.started", data=DATA_EXAMPLES["measure.started"]))
    return line.replace('"data": {', f'"data": {{"note": {text}, ', 1)


@pytest.mark.parametrize(
    ("note", "field", "reason"),
    [
        # Half an emoji, cut by a substring: Python's `json` reads it, no store writes it.
        ('"\\ud83d"', "data.note", "not valid Unicode: half an emoji"),
        ('{"x\\udc00": 1}', "data.note", "not valid Unicode: half an emoji"),
        ('["a", "\\udc00"]', "data.note.1", "not valid Unicode: half an emoji"),
        ("[" * 600 + "]" * 600, "data", "note: nests deeper than 32 levels"),
        ("9" * 5000, "", "not valid JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_what_python_reads_but_no_store_could_keep_is_rejected(note, field, reason):
    # Each was accepted by the source services, or raised, and failed its whole batch.
    error = rejection(_with_unknown_field(note))
    assert error.field == field
    assert error.reason.startswith(reason)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", '[1, {"x": NaN}]'])
def test_an_unknown_field_holding_a_number_json_cannot_write_is_rejected_by_name(number):
    # The stores would have written each as null.
    error = rejection(_with_unknown_field(number))
    assert (error.field, error.reason) == ("data", "note: holds a number that is not finite")


EARLY_IN_A_MONTH = synthetic_national_id(random.Random(2), date(1990, 5, 7))  # "07..."
assert EARLY_IN_A_MONTH.startswith("0")
NATIONAL_ID_ELSEWHERE = (
    "holds what reads as a national identity number; a person is named only in `person`"
)


@pytest.mark.parametrize(
    "note",
    [
        f'"ring tilbake, fnr {PERSON}"',
        f'"{PERSON[:6]} {PERSON[6:]}"',  # with a space after the birth date
        f'"{PERSON[:6]}-{PERSON[6:]}"',  # or a hyphen
        str(int(EARLY_IN_A_MONTH)),  # a JSON number, its leading zero lost
        f"{int(PERSON)}.0",
        f'{{"history": [1, "{ANOTHER_PERSON}"]}}',
        f'{{"{PERSON}": true}}',  # a key
    ],
)
def test_a_national_id_outside_person_is_rejected_by_field(note):
    # It would be stored and published as sent: only `person` is replaced by a pseudonym.
    error = rejection(_with_unknown_field(note))
    assert (error.field, error.reason) == ("data", f"note: {NATIONAL_ID_ELSEWHERE}")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("true", "a field's name reads as a national identity number"),
        ("NaN", "a field: holds a number that is not finite"),
    ],
)
def test_a_field_named_by_a_national_id_is_rejected_without_repeating_it(value, reason):
    error = rejection(_with_unknown_field(value).replace('"note"', f'"{PERSON}"'))
    assert (error.field, error.reason) == ("data", reason)


def test_what_was_stored_is_read_back_whatever_its_data_holds():
    # The edge refuses it; a stored event that holds one (stored before the edge did) must
    # still be read, or its person's record could not be loaded again.
    event = parse_edge_event(json.dumps(edge()))
    stored = event.to_domain(pseudonym(PERSON, "k"), "journey", RECEIVED).model_dump_json()
    holding = stored.replace('"data":{', f'"data":{{"note":"{PERSON}",', 1)
    assert DomainEvent.model_validate_json(holding).data.model_extra == {"note": PERSON}


def test_a_national_id_in_a_field_the_contract_names_is_rejected_too():
    data = {"coordinator_id": "c-1", "reason": f"flyttet, se {PERSON}"}
    error = rejection(edge("coordinator.unassigned", data=data))
    assert (error.field, error.reason) == ("data", f"reason: {NATIONAL_ID_ELSEWHERE}")
    started = {**DATA_EXAMPLES["measure.started"], "measure_id": PERSON}
    error = rejection(edge("measure.started", data=started))
    assert (error.field, error.reason) == ("data", f"measure_id: {NATIONAL_ID_ELSEWHERE}")


@pytest.mark.parametrize(
    "note",
    [
        f'"{PERSON[:10]}{(int(PERSON[10]) + 1) % 10}"',  # its check digit wrong
        f'"1{PERSON}"',  # inside a longer number
        '"konto 12345678903"',  # eleven digits that are no birth date
        "12345678903",
        f'"{PERSON[:3]}"',
    ],
)
def test_numbers_that_are_no_national_id_are_kept(note):
    line = _with_unknown_field(note)
    assert parse_edge_event(line).data.model_extra == {"note": json.loads(note)}
