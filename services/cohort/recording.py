"""Knowledge time: when each fact of a history reaches the platform (`recorded_at`), and
how a fact becomes an edge event (CONTRACT §1).

Most facts are recorded within hours, some a day or two later, and a few percent of
the ends, extensions and checks weeks late; a start agreed in advance is sometimes
recorded before it happens. Starts and intake's own facts are never weeks late.
Whatever the draw, a fact is recorded after the referral that made the person known,
after the facts it depends on (an end after its start), and no later than its
`record_by`.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any

from services.cohort.facts import OSLO, Fact, local_day, rfc3339

LATE_SHARE = 0.03
AHEAD_SHARE = 0.3
# The furthest ahead of its start a planned start is recorded.
MAX_AHEAD = timedelta(days=21)
_HOUR = 3600
_DAY = 24 * _HOUR


def record(facts: list[Fact], rng: random.Random, *, cap: datetime | None = None) -> None:
    """Set `recorded_at` on a person's facts (the first being their referral), none
    later than `cap`."""
    known_from: datetime | None = None
    for fact in facts:
        at = _draw(rng, fact)
        if known_from is not None:
            at = max(at, known_from)
        for cause in fact.after:
            assert cause.recorded_at is not None, "a fact is recorded after its cause"
            at = max(at, cause.recorded_at + timedelta(minutes=1))
        if fact.record_by is not None:
            at = min(at, fact.record_by)
        if cap is not None:
            at = min(at, cap)
        fact.recorded_at = at.replace(microsecond=0)
        known_from = known_from or fact.recorded_at


def _draw(rng: random.Random, fact: Fact) -> datetime:
    occurred = fact.occurred_at
    if fact.starts_engagement and rng.random() < AHEAD_SHARE:
        ahead = rng.randint(_HOUR, int(MAX_AHEAD.total_seconds()))
        return occurred - timedelta(seconds=ahead)
    if not (fact.prompt or fact.starts_engagement) and rng.random() < LATE_SHARE:
        return occurred + timedelta(seconds=rng.randint(14 * _DAY, 60 * _DAY))
    if rng.random() < 0.7:
        return occurred + timedelta(seconds=rng.randint(20 * 60, 12 * _HOUR))
    return occurred + timedelta(seconds=rng.randint(12 * _HOUR, 60 * _HOUR))


def shift(facts: list[Fact], delta: timedelta) -> None:
    """Move a history in time, business dates in its data included."""
    for fact in facts:
        fact.occurred_at += delta
        if fact.record_by is not None:
            fact.record_by += delta
        if "planned_end" in fact.data:
            fact.data["planned_end"] = _shift_day(fact.data["planned_end"], delta)
        evidence = fact.data.get("evidence")
        if isinstance(evidence, dict):
            evidence["obtained_at"] = _shift_day(evidence["obtained_at"], delta)


def _shift_day(text: str, delta: timedelta) -> str:
    noon = datetime.combine(date.fromisoformat(text), time(12), tzinfo=OSLO)
    return local_day(noon + delta).isoformat()


def edge_event(fact: Fact, person: str) -> dict[str, Any]:
    """The fact as a source system sends it: a plain, JSON-ready dict."""
    assert fact.recorded_at is not None
    return {
        "event_id": fact.event_id,
        "type": fact.type,
        "occurred_at": rfc3339(fact.occurred_at),
        "recorded_at": rfc3339(fact.recorded_at),
        "source": {"system": fact.system, "org": fact.org},
        "person": person,
        "data": fact.data,
    }
