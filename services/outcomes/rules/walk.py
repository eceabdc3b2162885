"""How every rule is judged on knowledge (CONTRACT §3), whatever the rule.

A rule says, for one state of knowledge, which `Condition`s hold: what would be alerted,
from when, and what would resolve it. `walk` replays the knowledge times in order and
turns that into alerts with their lifecycle: raised at the deadline, or at once when the
facts that complete the condition were recorded after it; resolved at the first knowledge
time it stops holding. The live service and `los replay` call the very same functions, so
a backfill, a restart and a replay give the same alerts.

Readings of the contract taken here (written down in docs/contract-readings.md):
- one condition raises one alert: once resolved, an alert stays resolved and its
  condition is never raised again;
- a condition completed only after what resolves it already happened (a late end after
  the successor started) is raised and resolved at the same knowledge time, so evaluators
  still see it;
- a condition that still holds but whose deadline later facts move keeps its open alert;
- several resolutions at one knowledge time: `late_information` wins, then the rule's own
  resolution, then `journey_closed`;
- facts recorded at the same instant are judged together: knowledge time t includes every
  fact recorded at t, so their arrival order does not matter;
- a rule with `one_open` raises a new alert only while none of its alerts is open; a
  condition passed over for that is raised once the open one is resolved, if it still
  holds then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final, Literal, NamedTuple

from services.kernel.settings import RuleSettings
from services.outcomes.domain import Fact, JourneySpan
from services.outcomes.journey import Journey, KnownJourney

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


@dataclass(init=False, unsafe_hash=True, slots=True)
class Alert:
    """An alert a rule raised, with its state as of the clock it was evaluated at.
    (Immutable as `domain.Fact` is: `Final` fields, `__init__` written out.)"""

    rule: Final[str]
    subject: Final[str]
    condition_key: Final[str]
    raised_at: Final[datetime]
    status: Final[Status]
    resolved_at: Final[datetime | None]
    resolution: Final[Resolution | None]

    def __init__(
        self,
        rule: str,
        subject: str,
        condition_key: str,
        raised_at: datetime,
        status: Status,
        resolved_at: datetime | None,
        resolution: Resolution | None,
    ) -> None:
        self.rule = rule
        self.subject = subject
        self.condition_key = condition_key
        self.raised_at = raised_at
        self.status = status
        self.resolved_at = resolved_at
        self.resolution = resolution


class Condition(NamedTuple):
    """What a rule sees on one state of knowledge: an alert-worthy condition.

    `key` is the condition's identity, stable across re-evaluations: the rule, the subject
    and, where one subject can have several, the instant that defines it. The alert is due
    at `due` and raised at the first knowledge time at or after it at which the condition
    holds. `settled_at` is when, on this knowledge, what the rule waits for happens
    (resolving with `settled_by`); `closed_at` when the journey it belongs to closes.
    Rules resolved only by a person (`acknowledged`) leave `settled_at` None. (A tuple:
    rules make many of them, and the walk compares them.)
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
    """A rule: its name, the event types it reads, and how it judges a state of knowledge.

    `judge` must depend only on facts of the types in `reads`: the walk judges a rule again
    only at knowledge times that add one of them. `requires`, some of those types: the
    rule finds nothing until a fact of one of them is known, so the walk does not judge it
    before (most people never have a placement end, say). `one_open`: at most one open
    alert of the rule per person.
    """

    name: str
    reads: frozenset[str]
    judge: Callable[[KnownJourney, RuleSettings], list[Condition]]
    requires: frozenset[str] = frozenset()
    one_open: bool = False

    def __post_init__(self) -> None:
        if not self.requires <= self.reads:
            raise ValueError(f"rule {self.name}: requires {set(self.requires - self.reads)} unread")


@lru_cache(maxsize=1 << 16)
def iso(instant: datetime) -> str:
    """An instant as it appears in condition keys and subjects: UTC, ISO 8601."""
    return instant.astimezone(UTC).isoformat()


def journey_subject(span: JourneySpan) -> str:
    """The subject of an alert about a journey as a whole: `journey:` and its opening."""
    return f"journey:{iso(span.opened_at)}" if span.opened_at else "journey"


def closed_at(known: KnownJourney, instant: datetime) -> datetime | None:
    """When the journey that `instant` belongs to closes (None while it is open)."""
    span = known.journey_at(instant)
    return span.closed_at if span else None


class _Judged:
    """One rule's state in a walk: its conditions on the knowledge so far, its alerts, and
    the next instant after the last visit at which they change on unchanged knowledge."""

    __slots__ = ("alerts", "conditions", "fresh", "judged", "ready", "rule", "upcoming")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.ready = not rule.requires  # a fact the rule requires is known
        self.judged: list[Condition] = []
        self.conditions: dict[str, Condition] = {}
        self.alerts: dict[str, Alert] = {}
        self.upcoming: datetime | None = None
        self.fresh = False  # judged on new knowledge, not visited since

    def visit(self, t: datetime) -> None:
        """Resolve what stopped holding and raise what became due, at knowledge time t;
        then note the next instant at which, on unchanged knowledge, that happens again."""
        conditions, alerts, name = self.conditions, self.alerts, self.rule.name
        times: list[datetime] = []  # instants after t at which this may happen again
        is_open = False
        for key, alert in alerts.items():
            if alert.status != "open":
                continue
            condition = conditions.get(key)
            resolution: Resolution
            if condition is None:
                resolution = "late_information"
            elif condition.settled_at is not None and condition.settled_at <= t:
                resolution = condition.settled_by
            elif condition.closed_at is not None and condition.closed_at <= t:
                resolution = "journey_closed"
            else:
                is_open = True
                _extend_instants(times, condition)
                continue
            alerts[key] = Alert(
                name, alert.subject, key, alert.raised_at, "resolved", t, resolution
            )
        due: list[Condition] = []
        dues: list[datetime] = []
        for key, condition in conditions.items():
            if key in alerts:
                continue
            # No alert is raised for a closed journey (CONTRACT §3): not once it is closed,
            # and never if it is closed by the deadline.
            if condition.due <= t:
                if not condition.closed_by(t):
                    due.append(condition)
            elif not condition.closed_by(condition.due):
                dues.append(condition.due)
        one_open = self.rule.one_open
        if one_open:
            due.sort(key=lambda c: (c.due, c.subject, c.key))
        for condition in due:
            if one_open and is_open:
                break  # passed over while another alert is open: it waits for that one
            if condition.settled_at is not None and condition.settled_at <= t:
                alerts[condition.key] = Alert(
                    name, condition.subject, condition.key, t, "resolved", t, condition.settled_by
                )
            else:
                alerts[condition.key] = Alert(
                    name, condition.subject, condition.key, t, "open", None, None
                )
                is_open = True
                _extend_instants(times, condition)
        if not (one_open and is_open):
            times.extend(dues)
        self.upcoming = min(times, default=None)
        self.fresh = False


def _extend_instants(times: list[datetime], condition: Condition) -> None:
    """The instants at which an open alert's condition resolves it, as far as known."""
    if condition.settled_at is not None:
        times.append(condition.settled_at)
    if condition.closed_at is not None:
        times.append(condition.closed_at)


def walk(
    rules: Iterable[Rule], journey: Journey, clock: datetime, settings: RuleSettings
) -> tuple[list[Alert], datetime | None]:
    """Replay the knowledge times up to `clock`: the alerts of `rules` as of `clock`, and
    the next instant after it at which they can change.

    Knowledge changes only at a recorded_at; between two, the conditions stay the same and
    only time moves, so the instants to visit are each recorded_at plus the deadlines,
    settlements and closings that fall before the next one. All rules share one
    `KnownJourney`; a rule is judged again only when a fact it reads was added.
    """
    states = [_Judged(rule) for rule in rules]
    reads: frozenset[str] = frozenset().union(*(state.rule.reads for state in states))
    times = _knowledge_times(f for f in journey.facts if f.type in reads)
    known = KnownJourney()
    upcoming: datetime | None = None
    later_fact: datetime | None = None
    for k, (recorded_at, facts) in enumerate(times):
        if recorded_at > clock:
            later_fact = recorded_at
            break
        for fact in facts:
            known.add(fact)
        types = {fact.type for fact in facts}
        for state in states:
            if state.rule.reads.isdisjoint(types):
                continue
            if not state.ready:
                if state.rule.requires.isdisjoint(types):
                    continue
                state.ready = True
            judged = state.rule.judge(known, settings)
            if judged != state.judged:
                state.judged = judged
                state.conditions = {c.key: c for c in judged}
                state.fresh = True
        next_recorded = times[k + 1][0] if k + 1 < len(times) else None
        t = recorded_at
        while True:
            upcoming = None
            for state in states:
                at = state.upcoming
                if state.fresh or (at is not None and at <= t):
                    state.visit(t)
                    at = state.upcoming
                if at is not None and (upcoming is None or at < upcoming):
                    upcoming = at
            if upcoming is None or upcoming > clock:
                break
            if next_recorded is not None and upcoming >= next_recorded:
                break  # the next recorded_at is visited with what it adds
            t = upcoming
    changes = [at for at in (upcoming, later_fact) if at is not None and at > clock]
    alerts = [alert for state in states for alert in state.alerts.values()]
    alerts.sort(key=lambda a: (a.raised_at, a.rule, a.subject, a.condition_key))
    return alerts, min(changes, default=None)


def _knowledge_times(facts: Iterable[Fact]) -> list[tuple[datetime, list[Fact]]]:
    """Facts in knowledge order, grouped by the recorded_at they share."""
    times: list[tuple[datetime, list[Fact]]] = []
    for fact in facts:
        if times and times[-1][0] == fact.recorded_at:
            times[-1][1].append(fact)
        else:
            times.append((fact.recorded_at, [fact]))
    return times
