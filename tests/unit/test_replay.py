"""`los replay` (CONTRACT §5): a file of edge events in, one JSON line per alert out.

The cases are HANDOVER_GAP histories of one or two people, chosen so that no other rule
of §4 has anything to say about them (no triage, no placement, measures longer than 90
days, no planned end). Every expected value is worked out by hand from the contract: a
measure that ends on day 100 leaves a gap due on day 114 (day 107 when the end was
unplanned). Day 0 is 2025-01-06 09:00 +01:00, so day 114 reads 2025-04-30T08:00:00Z.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.cohort import generate_cohort
from services.kernel.events import parse_edge_event
from services.kernel.keys import Keys, opened
from services.kernel.settings import RuleSettings
from services.kernel.source import SourceRecord
from services.outcomes import shares as shares_module
from services.outcomes.replay import OWNERS, RECORD_TYPES, Replay, replay, replay_file
from tests.unit.replaying import (
    ANA,
    BO,
    KEY,
    RULES,
    TEAM,
    UNTIL,
    Person,
    alerts,
    day,
    history,
    outline,
    run,
    z,
)

# -- HANDOVER_GAP through replay ------------------------------------------------------


CASES: dict[str, tuple[Callable[[], list[str]], list[tuple[Any, ...]]]] = {
    "planned end: due 14 days after": (
        lambda: history(ANA.ended("m1", 100)),
        [("m1", z(114), "open", None, None)],
    ),
    "unplanned end (AVBRUTT): due 7 days after": (
        lambda: history(ANA.ended("m1", 100, status="AVBRUTT", reason="SYK")),
        [("m1", z(107), "open", None, None)],
    ),
    "unplanned end (IKKE_MOTT)": (
        lambda: history(ANA.ended("m1", 100, status="HAR_SLUTTET", reason="IKKE_MOTT")),
        [("m1", z(107), "open", None, None)],
    ),
    "a dropout ends the measure, unplanned": (
        lambda: history(ANA.dropped_out(100)),
        [("m1", z(107), "open", None, None)],
    ),
    "handed over within the window": (
        lambda: history(ANA.ended("m1", 100), ANA.started("m2", 110)),
        [],
    ),
    "a start on the deadline itself is in time": (
        lambda: history(ANA.ended("m1", 100), ANA.started("m2", 114)),
        [],
    ),
    "a start after the deadline resolves it": (
        lambda: history(ANA.ended("m1", 100), ANA.started("m2", 130)),
        [("m1", z(114), "resolved", z(130), "engagement_started")],
    ),
    "late information: a start in time, known after the deadline": (
        lambda: history(ANA.ended("m1", 100), ANA.started("m2", 105, recorded=120)),
        [("m1", z(114), "resolved", z(120), "late_information")],
    ),
    "an end known late is raised when it is known": (
        lambda: history(ANA.ended("m1", 100, recorded=120)),
        [("m1", z(120), "open", None, None)],
    ),
    "an end known after the successor started: raised and resolved at once": (
        lambda: history(ANA.ended("m1", 100, recorded=150), ANA.started("m2", 130)),
        [("m1", z(150), "resolved", z(150), "engagement_started")],
    ),
    "the journey closes after the deadline": (
        lambda: history(ANA.ended("m1", 100), ANA.closed(118)),
        [("m1", z(114), "resolved", z(118), "journey_closed")],
    ),
    "the journey closes before the deadline": (
        lambda: history(ANA.ended("m1", 100), ANA.closed(110)),
        [],
    ),
    "the municipality's m1 is not NAV's m1 (measure_id is unique per source)": (
        lambda: history(ANA.started("m1", 50, system="kommune"), ANA.ended("m1", 100)),
        [],
    ),
    "not yet due at --until": (
        lambda: history(ANA.ended("m1", 190)),
        [],
    ),
    "the same line twice is one event": (
        lambda: [*history(line := ANA.ended("m1", 100)), line],
        [("m1", z(114), "open", None, None)],
    ),
    "file order does not matter, recorded_at does": (
        lambda: list(reversed(history(ANA.ended("m1", 100), ANA.started("m2", 130)))),
        [("m1", z(114), "resolved", z(130), "engagement_started")],
    ),
    "a start recorded after --until is not part of the input": (
        lambda: history(ANA.ended("m1", 100), ANA.started("m2", 105, recorded=250)),
        [("m1", z(114), "open", None, None)],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_handover_gaps_as_the_contract_reads_them(case: str) -> None:
    lines, expected = CASES[case]
    found = run(lines())
    assert [outline(json.loads(line)) for line in found.alerts] == expected
    assert found.problems == []


RECIPIENTS: dict[str, tuple[Callable[[], list[str]], dict[str, str | None]]] = {
    "the team of the referral": (lambda: [], {"team": TEAM}),
    "the coordinator": (lambda: [ANA.assigned("c-1", 50)], {"coordinator": "c-1"}),
    "reassigned before the deadline: the new coordinator": (
        lambda: [ANA.assigned("c-1", 50), ANA.assigned("c-2", 110)],
        {"coordinator": "c-2"},
    ),
    "reassigned after the deadline: the one responsible when it was raised": (
        lambda: [ANA.assigned("c-1", 50), ANA.assigned("c-2", 120)],
        {"coordinator": "c-1"},
    ),
    "reassigned in time but known only later: as known when raised": (
        lambda: [ANA.assigned("c-1", 50), ANA.assigned("c-2", 110, recorded=130)],
        {"coordinator": "c-1"},
    ),
    "unassigned: the team of the latest assignment": (
        lambda: [ANA.assigned("c-1", 50, org_unit="nav-0301-team-b"), ANA.unassigned("c-1", 110)],
        {"team": "nav-0301-team-b"},
    ),
}


@pytest.mark.parametrize("case", RECIPIENTS)
def test_the_recipient_is_who_was_responsible_when_it_was_raised(case: str) -> None:
    lines, expected = RECIPIENTS[case]
    [alert] = alerts(history(*lines(), ANA.ended("m1", 100)))
    assert alert["raised_at"] == z(114)
    assert alert["recipient"] == expected


def test_with_no_referral_and_no_coordinator_the_team_is_null() -> None:
    [alert] = alerts([ANA.started("m1", 1), ANA.ended("m1", 100)])
    assert alert["recipient"] == {"team": None}


def test_rule_settings_apply_to_replay_as_to_the_live_service() -> None:
    shorter = RuleSettings(handover_gap=timedelta(days=10))
    found = replay(history(ANA.ended("m1", 100)), UNTIL, KEY, shorter)
    assert [json.loads(line)["raised_at"] for line in found.alerts] == [z(110)]


def test_the_clock_stops_at_until_inclusive() -> None:
    lines = history(ANA.ended("m1", 100), ANA.started("m2", 130))
    assert [outline(a) for a in alerts(lines, until=day(113))] == []
    assert [outline(a) for a in alerts(lines, until=day(114))] == [
        ("m1", z(114), "open", None, None)
    ]
    assert [outline(a) for a in alerts(lines, until=day(130))] == [
        ("m1", z(114), "resolved", z(130), "engagement_started")
    ]
    assert run(lines, until=day(129)).after_until == 1


# -- the output line ------------------------------------------------------------------


def test_one_line_per_alert_in_the_contracts_shape() -> None:
    [open_line] = run(history(ANA.ended("m1", 100))).alerts
    alert_id = json.loads(open_line)["alert_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", alert_id)
    assert open_line == (
        f'{{"alert_id": "{alert_id}", "rule": "HANDOVER_GAP", "person": "{ANA.pseudonym}",'
        f' "recipient": {{"team": "nav-0301-grorud"}}, "raised_at": "2025-04-30T08:00:00Z",'
        ' "status": "open", "resolved_at": null, "resolution": null, "subject": "m1"}'
    )
    [resolved] = run(history(ANA.ended("m1", 100), ANA.started("m2", 130))).alerts
    assert resolved == open_line.replace(
        '"status": "open", "resolved_at": null, "resolution": null',
        '"status": "resolved", "resolved_at": "2025-05-16T08:00:00Z",'
        ' "resolution": "engagement_started"',
    )


def test_person_is_the_hmac_of_the_national_id_under_the_key() -> None:
    key = "nøkkel æøå"  # the key is taken as UTF-8
    [line] = replay(history(ANA.ended("m1", 100)), UNTIL, key, RULES).alerts
    expected = hmac.new(key.encode("utf-8"), ANA.national_id.encode(), hashlib.sha256)
    assert json.loads(line)["person"] == expected.hexdigest()


def test_alert_id_follows_the_condition_not_the_file() -> None:
    alone = alerts(history(ANA.ended("m1", 100)))
    with_others = alerts(
        [BO.referred(3), BO.started("m7", 4), *history(ANA.ended("m1", 100)), BO.ended("m7", 99)]
    )
    ana = [a for a in with_others if a["person"] == ANA.pseudonym]
    assert [a["alert_id"] for a in ana] == [a["alert_id"] for a in alone]
    bo = [a for a in with_others if a["person"] == BO.pseudonym]
    assert bo[0]["alert_id"] != alone[0]["alert_id"]


def test_ordered_by_raised_at_then_rule_then_subject() -> None:
    lines = [
        ANA.started("m2", 1),
        ANA.ended("m2", 100),  # due day 114
        BO.started("m1", 1),
        BO.ended("m1", 100),  # due day 114 too: m1 before m2
        BO.started("m0", 120),
        BO.ended("m0", 220),  # due day 234
        ANA.started("m3", 120),
        ANA.ended("m3", 190, status="AVBRUTT"),  # due day 197
    ]
    found = [(a["raised_at"], a["subject"]) for a in alerts(lines, until=day(240))]
    assert found == [(z(114), "m1"), (z(114), "m2"), (z(197), "m3"), (z(234), "m0")]


# -- against a generated cohort -------------------------------------------------------


def test_a_cohort_replays_to_exactly_its_known_gaps_and_broken_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = generate_cohort(
        300, seed=9, start=date(2024, 1, 1), end=date(2025, 6, 30), invalid_share=0.03
    )
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in cohort.events), encoding="utf-8")
    found = replay_file(events, cohort.until, KEY, RULES, workers=2)
    gaps = [json.loads(line) for line in found.alerts]
    raised = {a["subject"]: a["raised_at"] for a in gaps if a["rule"] == "HANDOVER_GAP"}
    listed = {
        gap.measure_id: gap.raised_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        for gap in cohort.handover_gaps
    }
    assert raised == listed
    assert [(p.line, p.kind, p.field) for p in found.skipped] == [
        (line.line, "invalid", line.field) for line in cohort.invalid_lines
    ]
    assert found.events == len(cohort.events)
    assert replay_file(events, cohort.until, KEY, RULES, workers=1).alerts == found.alerts
    # A share of the people at a time, in one process or two: the same replay.
    for workers in (1, 2):
        shared = replay_file(events, cohort.until, KEY, RULES, workers=workers, shares=5)
        assert (shared.alerts, shared.skipped) == (found.alerts, found.skipped)
        assert (shared.events, shared.invalid) == (found.events, found.invalid)
    # A file larger than a share's bytes is replayed in shares without being asked, each
    # from a file of its own lines, which keep their numbers. The files hold national ids:
    # they have no name, so a killed replay leaves none behind.
    shares: list[list[int]] = []
    split = shares_module._split

    def sorted_out(*args: Any) -> Any:
        files = split(*args)
        assert [os.fstat(f.fileno()).st_nlink for f in files] == [0] * len(files)
        for f in files:
            f.seek(0)
            shares.append([int(line.split(b"\t", 1)[0]) for line in f])
        return files

    monkeypatch.setattr(shares_module, "SHARE_BYTES", events.stat().st_size // 3 + 1)
    monkeypatch.setattr(shares_module, "_split", sorted_out)
    for workers in (1, 2):
        shared = replay_file(events, cohort.until, KEY, RULES, workers=workers)
        assert (shared.alerts, shared.skipped) == (found.alerts, found.skipped)
        assert (shared.events, shared.invalid) == (found.events, found.invalid)
    assert len(shares) == 2 * 3
    assert sorted(n for share in shares[:3] for n in share) == list(range(1, found.events + 1))


# -- properties -----------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[str]:
    """Measures of two people, some ended (planned or not, some before their start,
    which is refused), a dropout or a closing now and then; each line recorded at its
    own instant."""
    lines: list[tuple[int, str, Person, dict[str, Any], int]] = []
    for person in (ANA, BO):
        lines.append((0, "participant.referred", person, {"channel": "nav", "org_unit": TEAM}, 0))
        for n in range(draw(st.integers(0, 4))):
            m = f"m{n}"
            start = draw(st.integers(0, 120))
            lag = draw(st.integers(0, 30))
            data = {"measure_id": m, "measure_code": "AVKLARING", "provider": person.org}
            lines.append((start, "measure.started", person, data, lag))
            if draw(st.booleans()):
                status = draw(st.sampled_from(["FULLFORT", "AVBRUTT"]))
                end = start + draw(st.integers(-3, 100))
                data = {"measure_id": m, "status": status, "reason": "ANNET"}
                lines.append((end, "measure.ended", person, data, draw(st.integers(0, 30))))
        for type_, data in (
            ("participant.dropped_out", {"reason": "OTHER"}),
            ("journey.closed", {"reason": "MOVED"}),
        ):
            if draw(st.booleans()):
                lines.append((draw(st.integers(0, 200)), type_, person, data, 0))
    built = []
    for i, (at, type_, who, what, delay) in enumerate(lines):
        event = json.loads(who.event(type_, what, at))
        # Distinct recorded_at for every line: file order then never decides anything.
        event["recorded_at"] = (day(at + delay) + timedelta(seconds=i)).isoformat()
        built.append(json.dumps(event))
    return built


def by_event(found: Replay, lines: list[str]) -> set[tuple[str, str, str]]:
    return {(json.loads(lines[p.line - 1])["event_id"], p.field, p.reason) for p in found.problems}


@settings(max_examples=60, deadline=None)
@given(lines=histories(), data=st.data())
def test_file_order_does_not_change_the_output(lines: list[str], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(lines))
    first, second = run(lines), run(shuffled)
    assert first.alerts == second.alerts
    assert by_event(first, lines) == by_event(second, shuffled)


@settings(max_examples=60, deadline=None)
@given(lines=histories(), data=st.data())
def test_duplicated_lines_do_not_change_the_output(lines: list[str], data: st.DataObject) -> None:
    copies = data.draw(st.lists(st.sampled_from(lines), max_size=5)) if lines else []
    with_copies = list(lines)
    for copy in copies:
        with_copies.insert(data.draw(st.integers(0, len(with_copies))), copy)
    assert run(with_copies).alerts == run(lines).alerts


@settings(max_examples=60, deadline=None)
@given(lines=histories(), data=st.data())
def test_a_record_takes_an_event_as_it_would_be_offered(
    lines: list[str], data: st.DataObject
) -> None:
    """Replay builds each record without its `Created` event and has it `take` an event,
    recording no aggregate event: it decides as `offer` does on a record built to be
    stored, and is left in the same state."""
    lines = [*lines, *data.draw(st.lists(st.sampled_from(lines), max_size=3))] if lines else []
    events = sorted(
        (parse_edge_event(line) for line in lines), key=lambda e: e.recorded_at or UNTIL
    )
    offered: dict[tuple[str, str], SourceRecord] = {}
    taken: dict[tuple[str, str], SourceRecord] = {}
    for edge in events:
        service = OWNERS[edge.type]
        key = (service, edge.person)
        if key not in taken:
            offered[key] = RECORD_TYPES[service](service, "p")
            taken[key] = RECORD_TYPES[service].for_replay(service, "p")
        domain_event = edge.to_domain("0" * 64, service, UNTIL)
        hold = RULES.lifecycle_hold
        with opened(Keys().for_writing(["p"])):  # what the stored record seals with
            to_store = offered[key].offer(domain_event, {}, hold)
        assert taken[key].offer(domain_event, {}, hold) == to_store
    for key, record in taken.items():
        state = {k: v for k, v in vars(record).items() if not k.startswith("_")}
        assert state == {k: v for k, v in vars(offered[key]).items() if not k.startswith("_")}
