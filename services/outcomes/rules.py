"""The rules of CONTRACT §4 as pure functions of a journey's facts and the clock.

Every rule is judged the same way (CONTRACT §3): at a knowledge time t, on the facts
recorded at or before t and nothing recorded after. A rule says, for one state of
knowledge, which `Condition`s hold (what would be alerted, from when, and what would
resolve it); `_walk` replays the knowledge times in order and turns that into alerts with
their lifecycle: raised at the deadline, or at once when the facts that complete the
condition were recorded after it; resolved at the first knowledge time it stops holding.
The live service and `los replay` call the very same functions, so a backfill, a restart
and a replay give the same alerts.

Readings of the contract taken here (write them into the contract when it is next edited):
- one condition raises one alert: once resolved, an alert stays resolved and its
  condition is never raised again;
- an alert whose condition is completed only after a successor already started (a late
  end) is raised and resolved at the same knowledge time, so evaluators still see the gap;
- a condition that still holds but whose deadline later facts move later (an end first
  known as a dropout turns out to be the measure's own planned end) keeps its open alert:
  the gap is still there, and what ends the alert is still a start or a closing;
- several resolutions at one knowledge time: `late_information` wins (there was no gap),
  then the rule's own resolution, then `journey_closed`;
- facts recorded at the same instant are judged together: knowledge time t includes every
  fact recorded at t, so their arrival order does not matter.

Only HANDOVER_GAP is here so far; each further rule is one more `Rule` in `RULES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from services.kernel.settings import RuleSettings
from services.outcomes.domain import (
    DROPPED_OUT,
    JOURNEY_CLOSED,
    MEASURE_ENDED,
    MEASURE_STARTED,
    PLACEMENT_ENDED,
    PLACEMENT_STARTED,
    REFERRED,
    TRIAGED,
    Engagement,
    Journey,
    KnownJourney,
)

Status = Literal["open", "resolved"]
Resolution = Literal[
    "late_information",
    "engagement_started",
    "coordinator_assigned",
    "check_recorded",
    "updated",
    "journey_closed",
    "acknowledged",
]


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert a rule raised, with its state as of the clock it was evaluated at."""

    rule: str
    subject: str
    condition_key: str
    raised_at: datetime
    status: Status
    resolved_at: datetime | None
    resolution: Resolution | None


@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule sees on one state of knowledge: an alert-worthy condition.

    `key` is the condition's identity, stable across re-evaluations. The alert is due at
    `due`. `settled_at` is when, on this knowledge, what the rule waits for happens
    (resolving with `settled_by`); `closed_at` when the journey it belongs to closes.
    """

    key: str
    subject: str
    due: datetime
    settled_at: datetime | None
    settled_by: Resolution
    closed_at: datetime | None

    def closed_by(self, t: datetime) -> bool:
        return self.closed_at is not None and self.closed_at <= t


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: its name, the event types it reads, and how it judges a state of knowledge."""

    name: str
    reads: frozenset[str]
    judge: Callable[[KnownJourney, RuleSettings], Iterable[Condition]]


def _handover_gap_conditions(known: KnownJourney, rules: RuleSettings) -> Iterable[Condition]:
    """HANDOVER_GAP: the number of active engagements drops to zero at E and no engagement
    is active in (E, E+14d] (7d when the last end was unplanned).

    Merging the engagements' [start, end) intervals gives the stretches in which at least
    one is active; each finite stretch end is a drop to zero. The window is empty exactly
    when the next stretch starts after the deadline, and that start is what resolves the
    alert with `engagement_started`: at the later of its occurred_at and recorded_at,
    because that is the first knowledge time at which the engagement has both begun and
    is known (never before raised_at: a start known before the gap was raises and
    resolves at once). Several ends at E (a dropout ending several engagements): the
    window is the unplanned one if any of them ended unplanned, and the subject is the
    one that started last, then the smallest id. The condition key is the rule, the
    subject and E, so a gap whose end moves under later facts is a new condition.
    """
    stretches = _stretches(known.engagements())
    for i, (_, last_end, ending) in enumerate(stretches):
        if last_end is None:
            continue  # still active: nothing has dropped to zero
        unplanned = any(e.unplanned for e in ending)
        due = last_end + (rules.handover_gap_unplanned if unplanned else rules.handover_gap)
        next_start = stretches[i + 1][0] if i + 1 < len(stretches) else None
        if next_start is not None and next_start <= due:
            continue  # handed over in time
        latest_start = max(e.start for e in ending)
        subject = min(e.id for e in ending if e.start == latest_start)
        journey = known.journey_at(last_end)
        yield Condition(
            key=f"HANDOVER_GAP:{subject}:{last_end.astimezone(UTC).isoformat()}",
            subject=subject,
            due=due,
            settled_at=next_start,
            settled_by="engagement_started",
            closed_at=journey.closed_at if journey else None,
        )


def _stretches(
    engagements: Iterable[Engagement],
) -> list[tuple[datetime, datetime | None, list[Engagement]]]:
    """The stretches of time in which at least one engagement is active, as (start, end,
    the engagements that end it), in order. Takes engagements ordered by start."""
    stretches: list[tuple[datetime, datetime | None, list[Engagement]]] = []
    for engagement in engagements:
        if engagement.end is not None and engagement.end <= engagement.start:
            continue  # ended at (or before) its start, e.g. by a dropout: never active
        if stretches:
            start, end, ending = stretches[-1]
            # Touching intervals ([a, b) then [b, c)) never leave the count at zero.
            if end is None or engagement.start <= end:
                if end is not None and (engagement.end is None or engagement.end > end):
                    stretches[-1] = (start, engagement.end, [engagement])
                elif end is not None and engagement.end == end:
                    ending.append(engagement)
                continue
        stretches.append((engagement.start, engagement.end, [engagement]))
    return stretches


HANDOVER_GAP = Rule(
    name="HANDOVER_GAP",
    reads=frozenset(
        {
            MEASURE_STARTED,
            MEASURE_ENDED,
            PLACEMENT_STARTED,
            PLACEMENT_ENDED,
            DROPPED_OUT,
            REFERRED,
            TRIAGED,
            JOURNEY_CLOSED,
        }
    ),
    judge=_handover_gap_conditions,
)

RULES: tuple[Rule, ...] = (HANDOVER_GAP,)


def handover_gaps(journey: Journey, clock: datetime, rules: RuleSettings) -> list[Alert]:
    """Every HANDOVER_GAP alert the journey has raised up to `clock`, as of `clock`."""
    return _walk(HANDOVER_GAP, journey, clock, rules)[0]


def evaluate(
    journey: Journey, clock: datetime, rules: RuleSettings
) -> tuple[list[Alert], datetime | None]:
    """Every rule at once: the alerts raised up to `clock` with their state as of `clock`
    (ordered by raised_at, rule, subject), and `next_change`."""
    alerts: list[Alert] = []
    upcoming: list[datetime] = []
    for rule in RULES:
        raised, at = _walk(rule, journey, clock, rules)
        alerts.extend(raised)
        if at is not None:
            upcoming.append(at)
    alerts.sort(key=lambda a: (a.raised_at, a.rule, a.subject))
    return alerts, min(upcoming, default=None)


def next_change(journey: Journey, clock: datetime, rules: RuleSettings) -> datetime | None:
    """The earliest instant after `clock` at which any rule's alerts can change without a
    new fact: a deadline not yet due, a planned start or closing that has not happened
    yet, or a fact already in the journey but recorded after `clock`. None if nothing
    is pending."""
    return evaluate(journey, clock, rules)[1]


def _walk(
    rule: Rule, journey: Journey, clock: datetime, rules: RuleSettings
) -> tuple[list[Alert], datetime | None]:
    """Replay the knowledge times up to `clock`: the alerts as of `clock`, and the next
    instant after it at which they can change.

    Knowledge changes only at a recorded_at; between two, the conditions stay the same and
    only time moves, so the instants to visit are each recorded_at plus the deadlines,
    settlements and closings that fall before the next one.
    """
    facts = [f for f in journey.facts if f.type in rule.reads]
    known = KnownJourney()
    alerts: dict[str, Alert] = {}
    conditions: dict[str, Condition] = {}
    upcoming: datetime | None = None
    i = 0
    while i < len(facts) and facts[i].recorded_at <= clock:
        recorded_at = facts[i].recorded_at
        while i < len(facts) and facts[i].recorded_at == recorded_at:
            known.add(facts[i])
            i += 1
        conditions = {c.key: c for c in rule.judge(known, rules)}
        next_recorded = facts[i].recorded_at if i < len(facts) else None
        t = recorded_at
        while True:
            _judge_at(rule, t, conditions, alerts)
            upcoming = _upcoming(conditions, alerts, t)
            if upcoming is None or upcoming > clock:
                break
            if next_recorded is not None and upcoming >= next_recorded:
                break  # the next recorded_at is visited with what it adds
            t = upcoming
    later_fact = facts[i].recorded_at if i < len(facts) else None
    changes = [at for at in (upcoming, later_fact) if at is not None and at > clock]
    ordered = sorted(
        alerts.values(), key=lambda a: (a.raised_at, a.rule, a.subject, a.condition_key)
    )
    return ordered, min(changes, default=None)


def _judge_at(
    rule: Rule, t: datetime, conditions: dict[str, Condition], alerts: dict[str, Alert]
) -> None:
    """Resolve what stopped holding and raise what became due, at knowledge time t."""
    for key, alert in list(alerts.items()):
        if alert.status != "open":
            continue
        condition = conditions.get(key)
        resolution: Resolution | None = None
        if condition is None:
            resolution = "late_information"
        elif condition.settled_at is not None and condition.settled_at <= t:
            resolution = condition.settled_by
        elif condition.closed_by(t):
            resolution = "journey_closed"
        if resolution is not None:
            alerts[key] = replace(alert, status="resolved", resolved_at=t, resolution=resolution)
    for key, condition in conditions.items():
        # No alert is raised for a closed journey (CONTRACT §3).
        if key in alerts or condition.due > t or condition.closed_by(t):
            continue
        settled = condition.settled_at is not None and condition.settled_at <= t
        alerts[key] = Alert(
            rule=rule.name,
            subject=condition.subject,
            condition_key=key,
            raised_at=t,
            status="resolved" if settled else "open",
            resolved_at=t if settled else None,
            resolution=condition.settled_by if settled else None,
        )


def _upcoming(
    conditions: dict[str, Condition], alerts: dict[str, Alert], after: datetime
) -> datetime | None:
    """The next instant after `after` at which, on unchanged knowledge, an alert is raised
    or resolved."""
    times: list[datetime] = []
    for key, condition in conditions.items():
        alert = alerts.get(key)
        if alert is None:
            if not condition.closed_by(condition.due):
                times.append(condition.due)
        elif alert.status == "open":
            times.extend(t for t in (condition.settled_at, condition.closed_at) if t is not None)
    return min((t for t in times if t > after), default=None)
