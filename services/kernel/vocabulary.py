"""The words of the event contract (CONTRACT §1 and §2): its closed vocabularies as
enums, and the shapes of its values (timestamps, dates, identifiers) as annotated types.

Enum values are the contract's strings, which mirror NAV's own codes (deltakerstatus,
årsak, innsatsgruppe), so that people who work with those systems recognise them.
Measure codes (tiltakskoder) are a pattern, not an enum: the contract's list is open.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from services.kernel.ids import KnownIds, validate_national_id, validate_org, validate_orgnr


class EventType(StrEnum):
    PARTICIPANT_REFERRED = "participant.referred"
    PARTICIPANT_TRIAGED = "participant.triaged"
    COORDINATOR_ASSIGNED = "coordinator.assigned"
    COORDINATOR_UNASSIGNED = "coordinator.unassigned"
    MEASURE_STARTED = "measure.started"
    MEASURE_EXTENDED = "measure.extended"
    MEASURE_ENDED = "measure.ended"
    PLACEMENT_STARTED = "placement.started"
    PLACEMENT_ENDED = "placement.ended"
    PARTICIPANT_DROPPED_OUT = "participant.dropped_out"
    SIX_MONTH_CHECKED = "followup.six_month_checked"
    JOURNEY_CLOSED = "journey.closed"


class SourceSystem(StrEnum):
    """`source.system`: the kind of organisation that sent the event."""

    NAV = "nav"
    KOMMUNE = "kommune"
    VO = "vo"  # voksenopplæring, adult education
    EMPLOYER = "employer"
    FYLKE = "fylke"  # county: oppfølgingstjenesten, apprenticeships


class Channel(StrEnum):
    """How a participant was referred."""

    NAV = "nav"
    KOMMUNE = "kommune"
    VO = "vo"
    SELF = "self"
    OTHER = "other"


class NeedGroup(StrEnum):
    """NAV's innsatsgruppe, as assessed at triage."""

    GODE_MULIGHETER = "GODE_MULIGHETER"
    TRENGER_VEILEDNING = "TRENGER_VEILEDNING"
    TRENGER_VEILEDNING_NEDSATT_ARBEIDSEVNE = "TRENGER_VEILEDNING_NEDSATT_ARBEIDSEVNE"
    JOBBE_DELVIS = "JOBBE_DELVIS"
    LITEN_MULIGHET_TIL_A_JOBBE = "LITEN_MULIGHET_TIL_A_JOBBE"


class MainGoal(StrEnum):
    """NAV's hovedmål."""

    SKAFFE_ARBEID = "SKAFFE_ARBEID"
    BEHOLDE_ARBEID = "BEHOLDE_ARBEID"
    OKE_DELTAKELSE = "OKE_DELTAKELSE"


class MeasureStatus(StrEnum):
    """NAV's deltakerstatus at the end of a measure."""

    FULLFORT = "FULLFORT"
    HAR_SLUTTET = "HAR_SLUTTET"
    AVBRUTT = "AVBRUTT"
    IKKE_AKTUELL = "IKKE_AKTUELL"


class MeasureEndReason(StrEnum):
    """NAV's årsak for a measure's end."""

    FATT_JOBB = "FATT_JOBB"
    SYK = "SYK"
    TRENGER_ANNEN_STOTTE = "TRENGER_ANNEN_STOTTE"
    FIKK_IKKE_PLASS = "FIKK_IKKE_PLASS"
    IKKE_MOTT = "IKKE_MOTT"
    UTDANNING = "UTDANNING"
    ANNET = "ANNET"
    AVLYST_KONTRAKT = "AVLYST_KONTRAKT"
    KRAV_IKKE_OPPFYLT = "KRAV_IKKE_OPPFYLT"
    FERDIG = "FERDIG"


class PlacementKind(StrEnum):
    PERMANENT = "PERMANENT"
    TEMPORARY = "TEMPORARY"
    SUBSIDISED = "SUBSIDISED"
    APPRENTICESHIP = "APPRENTICESHIP"


class PlacementEndReason(StrEnum):
    CONTRACT_ENDED = "CONTRACT_ENDED"
    QUIT = "QUIT"
    DISMISSED = "DISMISSED"
    CONVERTED = "CONVERTED"
    OTHER = "OTHER"


class DropoutReason(StrEnum):
    LOST_CONTACT = "LOST_CONTACT"
    DECLINED = "DECLINED"
    OTHER = "OTHER"


class CheckStatus(StrEnum):
    """What the six-month follow-up found."""

    EMPLOYED_SAME = "EMPLOYED_SAME"
    EMPLOYED_OTHER = "EMPLOYED_OTHER"
    IN_EDUCATION = "IN_EDUCATION"
    NOT_EMPLOYED = "NOT_EMPLOYED"
    UNREACHABLE = "UNREACHABLE"


class EvidenceSource(StrEnum):
    """Where the six-month follow-up's finding comes from."""

    REGISTER = "register"
    PARTICIPANT = "participant"
    EMPLOYER = "employer"


class ClosingReason(StrEnum):
    """Why a journey closed."""

    GOAL_REACHED = "GOAL_REACHED"
    MOVED = "MOVED"
    DECEASED = "DECEASED"
    TRANSFERRED_OUT = "TRANSFERRED_OUT"
    OTHER = "OTHER"


# pydantic also reads Unix seconds (a number, or digits in a string) as a timestamp, and
# text that RFC 3339 does not allow (no seconds, `+0100`, `,5`, a space for the `T`), and
# datetimes as dates; the contract says RFC 3339 and dates, and anything else is more
# likely a mistake than a convenience. The pattern is RFC 3339's `date-time` (§5.6): "T"
# and "Z" may be lower case, as its ABNF strings are; a space, which it leaves to
# applications, is refused. The offset is optional here only so that a missing one is
# reported as such, by `AwareDatetime`; whether the digits make a real date and time is
# pydantic's to say. A fraction may have any number of digits, as RFC 3339 allows (Go and
# Java write nanoseconds); the platform keeps microseconds and cuts off the rest.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The years the rules can reckon in: a deadline a year past 9999-12-31 (a common "no end"
# placeholder) or an offset before year 1 is no datetime Python can hold.
_YEARS = re.compile(r"(?:19|2[01])[0-9]{2}-")
_OUT_OF_YEARS = "must be in the years 1900 to 2199"


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise PydanticCustomError("rfc3339", "RFC 3339 timestamp expected")
    return _in_years(value)


def _iso_date_text(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise PydanticCustomError("iso_date", "date expected as YYYY-MM-DD")
    return _in_years(value)


def _in_years(text: str) -> str:
    if not _YEARS.match(text):
        raise PydanticCustomError("years", _OUT_OF_YEARS)
    return text


def _identifier(value: str) -> str:
    if value.isspace():
        raise PydanticCustomError("string_blank", "must not be blank")
    if "\x00" in value:  # PostgreSQL's text cannot hold it: the alert naming it would fail
        raise PydanticCustomError("string_nul", "must not contain the NUL character")
    return value


def _timestamp_schema(_source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    # Read from JSON, as on the ingest path (two timestamps an event), the text is matched
    # by pydantic's own regex before it is parsed, with no call into Python on the way.
    # Read from Python, a datetime is taken as it is, and text goes through
    # `_rfc3339_text`; `parse_edge_event` reads an event from Python to say what is wrong
    # with it.
    aware = handler(AwareDatetime)
    text = core_schema.custom_error_schema(
        core_schema.str_schema(pattern=f"^{_RFC3339.pattern}$"),
        custom_error_type="rfc3339",
        custom_error_message="RFC 3339 timestamp expected",
    )
    years = core_schema.custom_error_schema(
        core_schema.str_schema(pattern=f"^{_YEARS.pattern}"),
        custom_error_type="years",
        custom_error_message=_OUT_OF_YEARS,
    )
    return core_schema.json_or_python_schema(
        json_schema=core_schema.chain_schema([text, years, aware]),
        python_schema=core_schema.no_info_before_validator_function(_rfc3339_text, aware),
    )


Timestamp = Annotated[
    datetime,
    GetPydanticSchema(_timestamp_schema),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Day = Annotated[date, BeforeValidator(_iso_date_text)]
# Not empty ("must not be empty"), not only whitespace, and no NUL.
Identifier = Annotated[
    str,
    StringConstraints(min_length=1),
    AfterValidator(_identifier),
    WithJsonSchema({"type": "string", "minLength": 1, "pattern": "\\S"}),
]
MeasureCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]+$")]
OrgNumber = Annotated[
    str,
    AfterValidator(validate_orgnr),
    WithJsonSchema(
        {"type": "string", "pattern": "^[0-9]{9}$", "description": "organisasjonsnummer"}
    ),
]
Org = Annotated[
    str,
    AfterValidator(validate_org),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^([0-9]{9}|[0-9]{4})$",
            "description": "organisasjonsnummer or kommunenummer",
        }
    ),
]
# The validation context key under which a reader of many events may pass the national ids
# it has already found valid (`KnownIds`), to check each person's id once rather than on
# every event: `los replay` passes a set, as it keeps them for their pseudonyms anyway;
# the source services pass their `Pseudonyms`, which keep none.
KNOWN_NATIONAL_IDS = "known_national_ids"


def _national_id(value: str, info: ValidationInfo) -> str:
    known: KnownIds | None = info.context.get(KNOWN_NATIONAL_IDS) if info.context else None
    if known is None:
        return validate_national_id(value)
    if value not in known:
        known.add(validate_national_id(value))
    return value


NationalId = Annotated[
    str,
    AfterValidator(_national_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{11}$",
            "description": "fødselsnummer, D-number or synthetic test number (month +40/+80)",
        }
    ),
]
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
