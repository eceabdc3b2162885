"""One participant's timeline for a coordinator: engagements, the gaps between them, and
the alerts raised, as known now. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.outcomes.alerts import StoredAlert
from services.outcomes.domain import Engagement
from services.outcomes.journey import Journey
from services.outcomes.recipients import Recipient, addressed_at


@dataclass(frozen=True)
class Timeline:
    participant: str
    recipient: Recipient
    engagements: tuple[Engagement, ...]
    gaps: tuple[tuple[datetime, datetime | None], ...]
    alerts: tuple[StoredAlert, ...]


def gaps_between(
    engagements: Sequence[Engagement], now: datetime
) -> list[tuple[datetime, datetime | None]]:
    """The stretches after the first start with no active engagement; the last may be open."""
    gaps: list[tuple[datetime, datetime | None]] = []
    seen_any = False
    reach: datetime | None = None  # how far the engagements so far cover; None: no end yet
    for engagement in sorted(engagements, key=lambda e: e.start):
        if engagement.start > now:
            break
        if seen_any and reach is not None and engagement.start > reach:
            gaps.append((reach, engagement.start))
        if not seen_any:
            reach = engagement.end
        elif reach is not None:
            reach = None if engagement.end is None else max(reach, engagement.end)
        seen_any = True
    if seen_any and reach is not None and reach <= now:
        gaps.append((reach, None))
    return gaps


def standing(engagements: Sequence[Engagement], now: datetime) -> tuple[str, datetime | None]:
    """Where a person stands at `now`, and since when: "not_started" before their first
    measure or placement starts, "between" once the last one ended with none active,
    "engaged" while one is (since the end of the last gap, or the first start)."""
    starts = [e.start for e in engagements if e.start <= now]
    if not starts:
        return "not_started", None
    gaps = gaps_between(engagements, now)
    if not gaps:
        return "engaged", min(starts)
    gap_start, gap_end = gaps[-1]
    return ("between", gap_start) if gap_end is None else ("engaged", gap_end)


def standing_in_journey(journey: Journey, now: datetime) -> tuple[str, datetime | None]:
    """`standing` in the journey the person is in at `now`: what ended before it opened
    (a journey closed and opened again) does not count."""
    known = journey.as_known_at(now)
    span = known.journey_at(now)
    opened = span.opened_at if span is not None else None
    engagements = [
        e for e in known.engagements() if opened is None or e.end is None or e.end > opened
    ]
    return standing(engagements, now)


def timeline(journey: Journey, alerts: Sequence[StoredAlert], now: datetime) -> Timeline:
    known = journey.as_known_at(now)
    engagements = known.engagements()
    return Timeline(
        participant=journey.participant,
        recipient=addressed_at(journey, now),
        engagements=engagements,
        gaps=tuple(gaps_between(engagements, now)),
        alerts=tuple(alerts),
    )
