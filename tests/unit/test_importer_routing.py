"""`los import` routing: each line goes to the service that emits its type (CONTRACT §2,
"emitted by"), and a line that cannot be routed is rejected with its line number."""

from __future__ import annotations

import io
import json
import random
from datetime import date
from typing import Any

import pytest

from services.cli.importer import Importer, ImportReport
from services.kernel.events import owner
from services.kernel.ids import synthetic_national_id, synthetic_orgnr

PERSON = synthetic_national_id(random.Random(7), date(1987, 11, 2))
ORG = synthetic_orgnr(random.Random(7))
EVENT_ID = "0b5f3c1e-2d4a-4e8b-9f60-7a1c2b3d4e5f"


@pytest.mark.parametrize(
    ("event_type", "service"),
    [
        ("participant.referred", "intake"),
        ("participant.triaged", "intake"),
        ("coordinator.assigned", "intake"),
        ("coordinator.unassigned", "intake"),
        ("measure.started", "journey"),
        ("measure.extended", "journey"),
        ("measure.ended", "journey"),
        ("placement.started", "employer"),
        ("placement.ended", "employer"),
        ("participant.dropped_out", "journey"),
        ("followup.six_month_checked", "employer"),
        ("journey.closed", "intake"),
    ],
)
def test_every_event_type_goes_to_the_service_that_emits_it(event_type: str, service: str) -> None:
    assert owner(event_type) == service


def test_a_type_outside_the_contract_has_no_owner() -> None:
    with pytest.raises(ValueError, match=r"measure\.paused"):
        owner("measure.paused")


def line(event_type: Any) -> str:
    event = {
        "event_id": EVENT_ID,
        "type": event_type,
        "occurred_at": "2025-03-14T09:00:00+01:00",
        "source": {"system": "nav", "org": ORG},
        "person": PERSON,
        "data": {},
    }
    return json.dumps(event) + "\n"


def route(
    *numbered: tuple[int, str | bytes],
) -> tuple[dict[str, list[tuple[int, str]]], ImportReport, list[dict[str, Any]]]:
    """Route one chunk, read from a file as bytes; the parts, the report, and the rejects
    file read back."""
    report = ImportReport()
    rejects = io.StringIO()
    read = [(n, text.encode() if isinstance(text, str) else text) for n, text in numbered]
    parts = Importer({})._route(read, report, rejects)
    rejected = [json.loads(row) for row in rejects.getvalue().splitlines()]
    return parts, report, rejected


def test_a_chunk_is_split_by_owning_service_keeping_line_numbers_and_file_order() -> None:
    referral = line("participant.referred")
    start = line("measure.started")
    placement = line("placement.started")
    dropout = line("participant.dropped_out")
    end = line("measure.ended")

    parts, report, rejected = route(
        (1, referral), (2, start), (4, placement), (5, dropout), (9, end)
    )

    assert parts == {
        "intake": [(1, referral)],
        "journey": [(2, start), (5, dropout), (9, end)],
        "employer": [(4, placement)],
    }
    assert report.rejected == 0
    assert rejected == []


def test_a_line_that_is_not_json_is_rejected_with_its_line_number() -> None:
    good = line("measure.started")

    parts, report, rejected = route((1, good), (2, '{"event_id": "x", "type": \n'), (3, good))

    assert parts == {"journey": [(1, good), (3, good)]}
    assert report.rejected == 1
    assert len(rejected) == 1
    assert rejected[0]["line"] == 2
    assert rejected[0]["event_id"] == ""
    assert rejected[0]["reason"].startswith("not valid JSON")


def test_a_line_of_an_unknown_type_is_rejected_on_the_type_field_with_its_event_id() -> None:
    parts, report, rejected = route((7, line("measure.paused")), (8, line("measure.ended")))

    assert list(parts) == ["journey"]
    assert [n for n, _ in parts["journey"]] == [8]
    assert report.rejected == 1
    assert rejected == [
        {
            "line": 7,
            "event_id": EVENT_ID,
            "field": "type",
            "reason": "missing or not a v1 event type",
        }
    ]


def test_a_line_without_a_type_is_rejected_on_the_type_field() -> None:
    without_type = json.dumps({"event_id": EVENT_ID, "person": PERSON})

    parts, report, rejected = route((3, without_type))

    assert parts == {}
    assert report.rejected == 1
    assert [(r["line"], r["event_id"], r["field"]) for r in rejected] == [(3, EVENT_ID, "type")]


@pytest.mark.parametrize(
    "odd_line",
    [
        '["measure.started"]',
        "null",
        '"measure.started"',
        line(None),
        line(["measure.started"]),
        line({"name": "measure.started"}),
    ],
)
def test_a_json_line_that_is_no_event_object_or_has_no_usable_type_is_rejected(
    odd_line: str,
) -> None:
    parts, report, rejected = route((12, odd_line))

    assert parts == {}
    assert report.rejected == 1
    assert [(r["line"], r["field"]) for r in rejected] == [(12, "type")]


def test_a_line_nested_too_deep_to_read_is_rejected_and_the_chunk_goes_on() -> None:
    # Valid JSON in principle, but deeper than the parser will go: a bad neighbour must
    # not cost the valid lines around it (CONTRACT §1).
    deep = "[" * 100_000 + "]" * 100_000
    good = line("measure.started")

    parts, report, rejected = route((1, deep), (2, good))

    assert parts == {"journey": [(2, good)]}
    assert report.rejected == 1
    assert [r["line"] for r in rejected] == [1]


def test_rejects_accumulate_over_chunks_in_the_same_report() -> None:
    report = ImportReport()
    rejects = io.StringIO()
    importer = Importer({})

    importer._route([(1, b"not json")], report, rejects)
    importer._route([(2001, line("measure.paused").encode())], report, rejects)

    assert report.rejected == 2
    assert [json.loads(row)["line"] for row in rejects.getvalue().splitlines()] == [1, 2001]


def test_a_line_that_is_not_utf_8_is_rejected_and_the_chunk_goes_on() -> None:
    good = line("measure.started")
    latin_1 = line("measure.started").replace("nav", "nav-\u00f8").encode("latin-1")

    parts, report, rejected = route((1, good), (2, latin_1), (3, good))

    assert parts == {"journey": [(1, good), (3, good)]}
    assert report.rejected == 1
    assert [(r["line"], r["field"]) for r in rejected] == [(2, "")]
    assert rejected[0]["reason"].startswith("not UTF-8")


@pytest.mark.parametrize("before", [[], [(1, line("measure.started"))]])
def test_a_line_with_a_number_too_long_to_read_is_rejected_as_itself(
    before: list[tuple[int, str]],
) -> None:
    # Python's `json` refuses integers of more than 4,300 digits with a plain ValueError.
    huge = line("measure.started").replace('"data": {}', '"data": {"n": ' + "9" * 5000 + "}")

    parts, _, rejected = route(*before, (7, huge))

    assert parts == ({"journey": before} if before else {})
    assert [(r["line"], r["event_id"], r["field"]) for r in rejected] == [(7, "", "")]
    assert rejected[0]["reason"].startswith("not valid JSON")


def test_only_an_event_id_that_is_a_uuid_is_written_to_the_rejects_file() -> None:
    # The field could hold anything, even a national id.
    event = json.loads(line("measure.paused")) | {"event_id": f"NID-{PERSON}"}

    _, _, rejected = route((4, json.dumps(event)))

    assert [(r["line"], r["event_id"], r["field"]) for r in rejected] == [(4, "", "type")]
    assert PERSON not in json.dumps(rejected)


def test_a_byte_order_mark_before_a_line_is_dropped() -> None:
    good = line("measure.started")

    parts, report, _ = route((1, b"\xef\xbb\xbf" + good.encode()))

    assert parts == {"journey": [(1, good)]}
    assert report.rejected == 0
