"""The `data` of each event type (CONTRACT §2): one model per type, picked by `type`.

Unknown fields are kept (a source may already speak a later version of the contract),
but not nested without end, nor holding a number JSON cannot write back. At the edge, no
field may hold a national identity number (`naming_someone`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.kernel.ids import holds_national_id
from services.kernel.vocabulary import (
    Channel,
    CheckStatus,
    ClosingReason,
    Day,
    DropoutReason,
    EventType,
    EvidenceSource,
    Identifier,
    MainGoal,
    MeasureCode,
    MeasureEndReason,
    MeasureStatus,
    NeedGroup,
    OrgNumber,
    PlacementEndReason,
    PlacementKind,
)

# How deep a field the contract does not know may nest: deeper ones would not be stored.
MAX_UNKNOWN_DEPTH = 32


class _Data(BaseModel):
    # Unknown fields are kept, not rejected (CONTRACT §1): a source may already speak
    # a later version of the contract, which only ever adds fields.
    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _can_be_stored(self) -> Self:
        for name, value in (self.__pydantic_extra__ or {}).items():
            shown = "a field" if holds_national_id(name) else name  # never echo an id
            if _nests_deeper(value, MAX_UNKNOWN_DEPTH):
                raise ValueError(f"{shown}: nests deeper than {MAX_UNKNOWN_DEPTH} levels")
            if not _finite(value):
                # NaN and Infinity are not JSON, nor is 1e400 once read: the stores would
                # write each as null.
                raise ValueError(f"{shown}: holds a number that is not finite")
        return self


def naming_someone(data: BaseModel) -> str | None:
    """Why `data` cannot be taken if a field of it, or a field's name, reads as a national
    identity number; None if none does. A person is named in `person` only, which becomes
    a pseudonym: anywhere else their id would be stored and published as sent (DESIGN.md,
    privacy). Checked at the edge only, so what was stored stays readable."""
    extra = data.__pydantic_extra__
    if extra and holds_national_id(list(extra)):  # the name is not repeated in the reason
        return "a field's name reads as a national identity number"
    for fields in (data.__dict__, extra or {}):
        for name, value in fields.items():
            if holds_national_id(value):
                return f"{name}: holds what reads as a national identity number; {_ONLY_PERSON}"
    return None


_ONLY_PERSON = "a person is named only in `person`"


def _nests_deeper(value: object, levels: int) -> bool:
    """Whether `value` nests more than `levels` deep (looking no deeper than that)."""
    children: Iterable[object]
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    return levels == 0 or any(_nests_deeper(child, levels - 1) for child in children)


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    if isinstance(value, list):
        return all(map(_finite, value))
    return True


class ParticipantReferred(_Data):
    """participant.referred: a person is referred; this opens a journey."""

    channel: Channel
    org_unit: Identifier = Field(
        description="the team that owns the case until a coordinator is assigned"
    )


class ParticipantTriaged(_Data):
    """participant.triaged: the person's needs are assessed."""

    need_group: NeedGroup
    main_goal: MainGoal
    # Strict: only JSON true or false, not 1, "yes" or "on" as pydantic would read.
    needs_coordinator: bool = Field(strict=True)
    org_unit: Identifier


class CoordinatorAssigned(_Data):
    """coordinator.assigned: replaces any current coordinator."""

    coordinator_id: Identifier
    org_unit: Identifier


class CoordinatorUnassigned(_Data):
    """coordinator.unassigned: the person no longer has this coordinator."""

    coordinator_id: Identifier
    reason: str


class MeasureStarted(_Data):
    """measure.started: the person starts a measure (tiltak)."""

    measure_id: Identifier = Field(description="unique per source")
    measure_code: MeasureCode = Field(
        description="NAV tiltakskode or the adult-education/municipal equivalent; the list is open"
    )
    provider: OrgNumber
    planned_end: Day | None = None


class MeasureExtended(_Data):
    """measure.extended: the measure's planned end moves."""

    measure_id: Identifier
    planned_end: Day


class MeasureEnded(_Data):
    """measure.ended: the measure ends, with NAV's deltakerstatus and årsak."""

    measure_id: Identifier
    status: MeasureStatus
    # Optional, as NAV's own årsak is: a completed measure often has none.
    reason: MeasureEndReason | None = None


class PlacementStarted(_Data):
    """placement.started: the person starts work with an employer."""

    placement_id: Identifier
    employer: OrgNumber
    kind: PlacementKind
    # Strict: a JSON number (60 or 37.5), not "50", nor true read as 1.
    hours_pct: float = Field(ge=1, le=100, allow_inf_nan=False, strict=True)


class PlacementEnded(_Data):
    """placement.ended: the work ends."""

    placement_id: Identifier
    reason: PlacementEndReason


class ParticipantDroppedOut(_Data):
    """participant.dropped_out: ends every active engagement of the person."""

    reason: DropoutReason


class Evidence(_Data):
    """Where a six-month check's finding comes from, and when it was obtained."""

    source: EvidenceSource
    obtained_at: Day


class SixMonthChecked(_Data):
    """followup.six_month_checked: where the person is six months into a placement."""

    placement_id: Identifier
    status: CheckStatus
    evidence: Evidence


class JourneyClosed(_Data):
    """journey.closed: the follow-up ends."""

    reason: ClosingReason


EventData: TypeAlias = (
    ParticipantReferred
    | ParticipantTriaged
    | CoordinatorAssigned
    | CoordinatorUnassigned
    | MeasureStarted
    | MeasureExtended
    | MeasureEnded
    | PlacementStarted
    | PlacementEnded
    | ParticipantDroppedOut
    | SixMonthChecked
    | JourneyClosed
)

DATA_MODELS: Mapping[EventType, type[EventData]] = MappingProxyType(
    {
        EventType.PARTICIPANT_REFERRED: ParticipantReferred,
        EventType.PARTICIPANT_TRIAGED: ParticipantTriaged,
        EventType.COORDINATOR_ASSIGNED: CoordinatorAssigned,
        EventType.COORDINATOR_UNASSIGNED: CoordinatorUnassigned,
        EventType.MEASURE_STARTED: MeasureStarted,
        EventType.MEASURE_EXTENDED: MeasureExtended,
        EventType.MEASURE_ENDED: MeasureEnded,
        EventType.PLACEMENT_STARTED: PlacementStarted,
        EventType.PLACEMENT_ENDED: PlacementEnded,
        EventType.PARTICIPANT_DROPPED_OUT: ParticipantDroppedOut,
        EventType.SIX_MONTH_CHECKED: SixMonthChecked,
        EventType.JOURNEY_CLOSED: JourneyClosed,
    }
)
