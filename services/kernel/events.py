"""The events of the public contract (CONTRACT §1 and §2) and the one way to read them.

`parse_edge_event` turns what a source system sent into an `EdgeEvent`, or raises
`InvalidEvent` naming the event, the field and what was expected. A person's national id
never goes further than the edge: `EdgeEvent.to_domain` swaps it for their pseudonym,
giving the `DomainEvent` that travels on the bus and is stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from services.kernel.event_data import (
    DATA_MODELS,
    CoordinatorAssigned,
    CoordinatorUnassigned,
    EventData,
    Evidence,
    JourneyClosed,
    MeasureEnded,
    MeasureExtended,
    MeasureStarted,
    ParticipantDroppedOut,
    ParticipantReferred,
    ParticipantTriaged,
    PlacementEnded,
    PlacementStarted,
    SixMonthChecked,
    naming_someone,
)
from services.kernel.ids import KnownIds
from services.kernel.vocabulary import (
    KNOWN_NATIONAL_IDS,
    Channel,
    CheckStatus,
    ClosingReason,
    DropoutReason,
    EventType,
    EvidenceSource,
    Identifier,
    MainGoal,
    MeasureEndReason,
    MeasureStatus,
    NationalId,
    NeedGroup,
    Org,
    PlacementEndReason,
    PlacementKind,
    Pseudonym,
    SourceSystem,
    Timestamp,
)

__all__ = [
    "DATA_MODELS",
    "EMITTED_BY",
    "SOURCE_SERVICES",
    "Channel",
    "CheckStatus",
    "ClosingReason",
    "CoordinatorAssigned",
    "CoordinatorUnassigned",
    "DomainEvent",
    "DropoutReason",
    "EdgeEvent",
    "EventData",
    "EventType",
    "Evidence",
    "EvidenceSource",
    "InvalidEvent",
    "JourneyClosed",
    "MainGoal",
    "MeasureEndReason",
    "MeasureEnded",
    "MeasureExtended",
    "MeasureStarted",
    "MeasureStatus",
    "NeedGroup",
    "ParticipantDroppedOut",
    "ParticipantReferred",
    "ParticipantTriaged",
    "PlacementEndReason",
    "PlacementEnded",
    "PlacementKind",
    "PlacementStarted",
    "SixMonthChecked",
    "Source",
    "SourceSystem",
    "check_recorded_at",
    "parse_edge_event",
]


# Which source service may accept which type: the "emitted by" column of CONTRACT §2.
_INTAKE = frozenset({"intake"})
_JOURNEY = frozenset({"journey"})
_EMPLOYER = frozenset({"employer"})
SOURCE_SERVICES = _INTAKE | _JOURNEY | _EMPLOYER
EMITTED_BY: Mapping[EventType, frozenset[str]] = MappingProxyType(
    {
        EventType.PARTICIPANT_REFERRED: _INTAKE,
        EventType.PARTICIPANT_TRIAGED: _INTAKE,
        EventType.COORDINATOR_ASSIGNED: _INTAKE,
        EventType.COORDINATOR_UNASSIGNED: _INTAKE,
        EventType.MEASURE_STARTED: _JOURNEY,
        EventType.MEASURE_EXTENDED: _JOURNEY,
        EventType.MEASURE_ENDED: _JOURNEY,
        EventType.PLACEMENT_STARTED: _EMPLOYER,
        EventType.PLACEMENT_ENDED: _EMPLOYER,
        EventType.PARTICIPANT_DROPPED_OUT: _JOURNEY | _INTAKE,
        EventType.SIX_MONTH_CHECKED: _EMPLOYER,
        EventType.JOURNEY_CLOSED: _INTAKE,
    }
)


def owner(event_type: str) -> str:
    """The source service an event type is sent to: the one that emits it (§2); dropouts,
    which journey and intake both take, go to journey."""
    owners = EMITTED_BY[EventType(event_type)]
    return "journey" if "journey" in owners else min(owners)


def _data_for_type(value: object, info: ValidationInfo) -> object:
    # `type` is validated before `data`, so the data model can be picked by it and its
    # errors come out as `data.measure_id` rather than one per member of the union.
    event_type = info.data.get("type")
    if event_type is None:  # `type` itself was invalid: that is the error reported
        return value
    model = DATA_MODELS[event_type]
    return value if isinstance(value, model) else model.model_validate(value)


# The model `type` picks validates `data`, and nothing else does: as a validator before
# the union, pydantic then also matched the model against each member of the union
# (~5 µs an event). Written as whatever model it is; the JSON Schema is the union's.
TypedData = SerializeAsAny[
    Annotated[EventData, PlainValidator(_data_for_type, json_schema_input_type=EventData)]
]


class Source(BaseModel):
    """Who sent the event: the kind of system and the organisation behind it."""

    model_config = ConfigDict(frozen=True)

    system: SourceSystem
    org: Org


class _Envelope(BaseModel):
    # Unknown top-level fields are dropped rather than carried onto the bus: only `data`
    # is open by contract, and anything else could hold personal data.
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    type: EventType
    occurred_at: Timestamp


class DomainEvent(_Envelope):
    """An event inside the platform: the person is a pseudonym, `recorded_at` is always
    set, and `service` names the source service that accepted it."""

    recorded_at: Timestamp
    source: Source
    participant: Pseudonym
    service: Identifier
    data: TypedData


class SealedEvent(BaseModel):
    """A domain event as the stream carries it: its JSON sealed for its person with their
    key (AES-256-GCM, the pseudonym as associated data; nonce and ciphertext in base64),
    which erasing them deletes (`services/kernel/keys.py`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    participant: Pseudonym
    sealed: str


class EdgeEvent(_Envelope):
    """An event as a source system sends it (CONTRACT §1)."""

    recorded_at: Timestamp | None = None
    source: Source
    # Kept out of repr() so that logging an event does not log who it is about.
    person: NationalId = Field(repr=False)
    data: TypedData

    @field_validator("data")
    @classmethod
    def _names_no_one(cls, data: EventData) -> EventData:
        # Not a model when `type` was invalid: that is the error reported (`_data_for_type`).
        if isinstance(data, BaseModel) and (why := naming_someone(data)) is not None:
            raise ValueError(why)
        return data

    def to_domain(self, participant: str, service: str, received_at: datetime) -> DomainEvent:
        """The event with `person` replaced by their pseudonym `participant`, as accepted
        by `service`; a missing `recorded_at` becomes the platform's receive time. Not
        validated again: every field is this validated event's, `participant` an HMAC
        digest and `service` the platform's own."""
        return DomainEvent.model_construct(
            event_id=self.event_id,
            type=self.type,
            occurred_at=self.occurred_at,
            recorded_at=received_at if self.recorded_at is None else self.recorded_at,
            source=self.source,
            participant=participant,
            service=service,
            data=self.data,
        )


class InvalidEvent(Exception):
    """An event that breaks the contract: which event, which field, what was expected.

    `field` is a dotted path such as `data.hours_pct`, or "" when the event as a whole
    is unreadable. The reason never quotes the offending value.
    """

    def __init__(self, event_id: str | None, field: str, reason: str) -> None:
        super().__init__(event_id, field, reason)
        self.event_id = event_id
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        which = f"event {self.event_id}" if self.event_id else "event without a valid event_id"
        return ": ".join(part for part in (which, self.field, self.reason) if part)


def parse_edge_event(
    raw: bytes | str | Mapping[str, Any], known_national_ids: KnownIds | None = None
) -> EdgeEvent:
    """Read one event from a source system, or raise `InvalidEvent` for its first error.

    A reader of many events may pass the `known_national_ids` (a set, or `Pseudonyms`):
    the ids found valid are added to it, and are not checked again when they come back.
    """
    context = None if known_national_ids is None else {KNOWN_NATIONAL_IDS: known_national_ids}
    if isinstance(raw, bytes | str):
        try:
            # pydantic's own JSON reader validates as it reads: one pass for a valid event.
            return EdgeEvent.model_validate_json(raw, context=context)
        except ValidationError:
            pass  # read again as below, which says what is wrong in the words of `_reason`
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise InvalidEvent(None, "", f"not valid JSON: {error}") from None
        except RecursionError:
            raise InvalidEvent(None, "", "not valid JSON: nested too deeply") from None
    if not isinstance(raw, Mapping):
        raise InvalidEvent(None, "", "an event must be a JSON object")
    if (where := _lone_surrogate(raw)) is not None:
        # Python's reader takes an escaped half of a surrogate pair (an emoji cut in two by
        # a substring); no store can write it, and the whole batch would fail there.
        raise InvalidEvent(readable_event_id(raw), where, "not valid Unicode: half an emoji")
    try:
        return EdgeEvent.model_validate(dict(raw), context=context)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        # `from None`: the ValidationError's own text quotes the input, national id included.
        raise InvalidEvent(readable_event_id(raw), field, _reason(first)) from None


def _lone_surrogate(raw: Mapping[str, Any]) -> str | None:
    """The dotted path of a key or text in `raw` with a lone surrogate, if there is one."""
    stack: list[tuple[str, object]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and not _encodes(value):
                return path
        elif isinstance(value, Mapping | list):
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for key, item in items:
                inner = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not _encodes(key):
                    return path
                stack.append((inner, item))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def readable_event_id(raw: Mapping[str, Any]) -> str | None:
    """The event's `event_id` if it is a well-formed UUID. Nothing else is echoed back: the
    field could hold anything, even a national id."""
    value = raw.get("event_id")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(UUID(value))
        except ValueError:
            return None
    return None


_REASONS = {
    "missing": "is required",
    "timezone_aware": "timestamp needs a UTC offset",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
}


def _reason(error: ErrorDetails) -> str:
    """A reason built from the kind of error, never from the input it was about."""
    kind = error["type"]
    context = error.get("ctx", {})
    if kind == "value_error":  # raised by our own validators, which never quote the value
        return str(context["error"])
    if kind in _REASONS:
        return _REASONS[kind]
    if kind == "greater_than_equal":
        return f"must be at least {_number(context['ge'])}"
    if kind == "less_than_equal":
        return f"must be at most {_number(context['le'])}"
    if kind == "enum":
        return f"must be one of {context['expected']}"
    if kind == "string_pattern_mismatch":
        return f"must match {context['pattern']}"
    if kind.startswith("datetime"):
        return "not a valid RFC 3339 timestamp"
    if kind.startswith("date"):
        return "not a valid date (YYYY-MM-DD)"
    return error["msg"]  # pydantic's messages state the rule, not the input


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_recorded_at(
    event: EdgeEvent | DomainEvent, received_at: datetime, max_future: timedelta
) -> None:
    """Reject a `recorded_at` more than `max_future` after the platform's (aware) receive
    time: clocks drift a little, but the future does not report (CONTRACT §1)."""
    if event.recorded_at is not None and event.recorded_at > received_at + max_future:
        raise InvalidEvent(
            str(event.event_id),
            "recorded_at",
            f"more than {_duration(max_future)} after the platform's receive time",
        )


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} seconds"
