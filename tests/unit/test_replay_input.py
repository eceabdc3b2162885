"""`los replay` (CONTRACT §5) and the lines it skips: each invalid line (it breaks the
contract), refused one (it breaks the lifecycle checks of the source service that owns
its type) or one still held at `until` (an end whose start has not come) is reported with
its line number and skipped, as the live services reject, refuse or hold it; duplicates
are counted, not reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from services.outcomes.replay import NO_RECORDED_AT, Replay, replay
from tests.unit.replaying import ANA, BO, KEY, RULES, UNTIL, alerts, day, history, outline, run, z


def test_invalid_lines_are_reported_with_line_and_reason_and_skipped() -> None:
    bad_check_digit = json.loads(ANA.started("m1", 1))
    bad_check_digit["person"] = ANA.national_id[:10] + str((int(ANA.national_id[10]) + 1) % 10)
    no_recorded_at = json.loads(ANA.started("m2", 1))
    del no_recorded_at["recorded_at"]
    lines = [
        ANA.referred(0),
        "not json",
        json.dumps(bad_check_digit),
        "",
        json.dumps(no_recorded_at),
        ANA.started("m1", 1),
        ANA.ended("m1", 100),
    ]
    found = run(lines)
    assert found.events == 6
    assert [outline(json.loads(line)) for line in found.alerts] == [
        ("m1", z(114), "open", None, None)
    ]
    reported = [str(problem) for problem in found.skipped]
    assert reported[0].startswith("line 2: invalid: event without a valid event_id: not valid JSON")
    assert reported[1:] == [
        f"line 3: invalid: event {bad_check_digit['event_id']}: person: check digit k2 invalid",
        f"line 5: invalid: event {no_recorded_at['event_id']}: recorded_at: {NO_RECORDED_AT}",
    ]
    assert (found.invalid, found.refused) == (3, 0)


# What the source services hold or refuse: each case's extra lines (after `history`), and
# how the last of them is reported.
SKIPPED: dict[str, tuple[Callable[[], list[str]], str, str, str, str]] = {
    "an end without a start": (
        lambda: [ANA.ended("m9", 100)],
        "held",
        "journey",
        "data.measure_id",
        "held until the start of measure m9 comes",
    ),
    "an extension without a start": (
        lambda: [
            ANA.event("measure.extended", {"measure_id": "m9", "planned_end": "2025-09-01"}, 5)
        ],
        "held",
        "journey",
        "data.measure_id",
        "held until the start of measure m9 comes",
    ),
    "a placement end without its start": (
        lambda: [
            ANA.event("placement.ended", {"placement_id": "p1", "reason": "QUIT"}, 30),
        ],
        "held",
        "employer",
        "data.placement_id",
        "held until the start of placement p1 comes",
    ),
    "an end before its start": (
        lambda: [ANA.ended("m1", 0.5, recorded=2)],
        "refused",
        "journey",
        "occurred_at",
        "before the start of measure m1",
    ),
    "a second start": (
        lambda: [ANA.started("m1", 20)],
        "refused",
        "journey",
        "data.measure_id",
        "measure m1 has already started",
    ),
    "a second end": (
        lambda: [ANA.ended("m1", 100), ANA.ended("m1", 101, status="AVBRUTT")],
        "refused",
        "journey",
        "data.measure_id",
        "measure m1 has already ended",
    ),
}


@pytest.mark.parametrize("case", SKIPPED)
def test_what_the_source_services_hold_or_refuse_replay_reports_as_they_would(case: str) -> None:
    extra, kind, service, field, reason = SKIPPED[case]
    lines = history(*extra())
    found = run(lines)
    last = len(lines)
    event_id = json.loads(lines[-1])["event_id"]
    assert [str(p) for p in found.skipped] == [
        f"line {last}: {kind} by {service}: event {event_id}: {field}: {reason}"
    ]
    assert (found.invalid, found.refused, found.held) == (0, kind == "refused", kind == "held")


def test_a_refused_event_is_no_fact() -> None:
    # The second start of m1 would have closed the gap, had it been accepted.
    lines = history(ANA.ended("m1", 100), ANA.started("m1", 105))
    assert [outline(a) for a in alerts(lines)] == [("m1", z(114), "open", None, None)]


def test_an_end_recorded_before_its_start_is_taken_after_it_as_the_live_service_would() -> None:
    # In the file the start comes first, but the end was recorded earlier: in recorded_at
    # order, as `los import` sends a sorted file, journey holds the end until the start.
    lines = [ANA.referred(0), ANA.started("m1", 1, recorded=55), ANA.ended("m1", 50)]
    found = run(lines)
    assert found.problems == []
    # The end keeps its own recorded_at (day 50): the gap after it is due on day 64.
    assert [outline(json.loads(line)) for line in found.alerts] == [
        ("m1", z(64), "open", None, None)
    ]


def test_an_end_whose_start_was_recorded_more_than_the_hold_later_is_refused() -> None:
    lines = [ANA.referred(0), ANA.started("m1", 1, recorded=60), ANA.ended("m1", 50)]
    found = run(lines)
    event_id = json.loads(lines[2])["event_id"]
    assert [str(p) for p in found.skipped] == [
        f"line 3: refused by journey: event {event_id}:"
        " data.measure_id: its start was recorded more than P7D after it"
    ]
    assert found.alerts == []


def test_duplicates_are_counted_not_reported() -> None:
    end = ANA.ended("m1", 100)
    again_later = json.loads(end)
    again_later["recorded_at"] = day(160).isoformat()
    found = run(history(end, json.dumps(again_later), end))
    assert found.duplicates == 2
    assert found.problems == []
    assert [outline(json.loads(line)) for line in found.alerts] == [
        ("m1", z(114), "open", None, None)
    ]


def test_a_line_only_pythons_json_reads_is_judged_with_its_persons_other_lines() -> None:
    # With a byte order mark a line is JSON to `json` but not to pydantic's reader; it
    # still goes to its person's part, where the end finds its start.
    lines = [
        line.encode()
        for line in history(ANA.ended("m1", 100), ANA.started("m2", 130), BO.referred(0))
    ]
    lines[-3] = b"\xef\xbb\xbf" + lines[-3]
    lines[-2] = b"\xef\xbb\xbf" + lines[-2]
    whole = replay(lines, UNTIL, KEY, RULES)
    assert [outline(json.loads(line)) for line in whole.alerts] == [
        ("m1", z(114), "resolved", z(130), "engagement_started")
    ]
    for parts in (2, 3, 4):
        shared = Replay.merge(
            replay(lines, UNTIL, KEY, RULES, part, parts) for part in range(parts)
        )
        assert (shared.alerts, shared.skipped) == (whole.alerts, whole.skipped)


def test_two_people_s_ends_held_under_one_event_id_are_each_their_own() -> None:
    # CONTRACT §1 wants event ids unique; the source services keep each person's own, so
    # one reused for another person is that person's event, here as live.
    same = "00000000-0000-4000-8000-00000000beef"
    ends = [
        ANA.event("measure.ended", {"measure_id": "m1", "status": "FULLFORT", "reason": "FERDIG"},
                  10, 10, event_id=same),
        BO.event("measure.ended", {"measure_id": "m1", "status": "FULLFORT", "reason": "FERDIG"},
                 10, 10, event_id=same),
    ]  # fmt: skip
    still_held = run(ends)
    assert [(p.line, p.kind) for p in still_held.skipped] == [(1, "held"), (2, "held")]
    assert still_held.duplicates == 0
    started = run([*ends, ANA.started("m1", 1, 11), BO.started("m1", 1, 11)])
    assert (started.skipped, started.duplicates) == ([], 0)
    for lines in (ends, [*ends, ANA.started("m1", 1, 11)]):
        one = run(lines)
        shared = Replay.merge(replay(lines, UNTIL, KEY, RULES, part, 2) for part in range(2))
        assert (shared.alerts, shared.skipped, shared.duplicates) == (
            one.alerts, one.skipped, one.duplicates,
        )  # fmt: skip
