"""The journey as known at a time: facts, their two times, engagements and journeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from typing import Any

import pytest

from services.outcomes.application import to_fact
from services.outcomes.domain import Engagement, Fact, JourneySpan
from services.outcomes.journey import Journey, KnownJourney

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_ids = count()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def fact(
    type_: str,
    occurred: datetime,
    recorded: datetime | None = None,
    *,
    event_id: str | None = None,
    seq: int = 0,
    **data: Any,
) -> Fact:
    return Fact(
        event_id=event_id or f"e{next(_ids)}",
        type=type_,
        occurred_at=occurred,
        recorded_at=recorded or occurred,
        data=data,
        seq=seq,
    )


def started(m: str, at: datetime, recorded: datetime | None = None) -> Fact:
    return fact("measure.started", at, recorded, measure_id=m, measure_code="OPPFOLGING")


def ended(m: str, at: datetime, status: str = "FULLFORT", reason: str = "FERDIG") -> Fact:
    return fact("measure.ended", at, measure_id=m, status=status, reason=reason)


# --- facts and the journey ---------------------------------------------------------------


def test_the_same_event_twice_is_one_fact() -> None:
    first = started("m1", day(0))
    journey = Journey("p1", [first])

    assert journey.add(first) is False
    assert journey.add(started("m2", day(1))) is True
    assert len(journey) == 2


def test_of_two_copies_of_an_event_the_one_known_first_is_kept_whatever_the_order() -> None:
    early = fact("measure.started", day(0), day(1), event_id="e", measure_id="m1")
    late = fact("measure.started", day(0), day(3), event_id="e", measure_id="m1")

    assert Journey("p1", [late, early]).facts == (early,)
    assert Journey("p1", [early, late]).facts == (early,)


def test_facts_are_kept_in_knowledge_order_with_arrival_breaking_ties() -> None:
    a = fact("participant.referred", day(5), day(2), seq=7, channel="nav")
    b = fact("participant.referred", day(0), day(2), seq=3, channel="nav")
    c = fact("participant.referred", day(1), day(1), seq=9, channel="nav")

    assert Journey("p1", [a, b, c]).facts == (c, b, a)


def test_known_at_holds_what_was_recorded_at_or_before_the_knowledge_time() -> None:
    a = started("m1", day(0), day(0))
    b = ended("m1", day(3))
    journey = Journey("p1", [b, a])

    assert journey.known_at(day(2)) == (a,)
    assert journey.known_at(day(3)) == (a, b)
    assert journey.known_at(day(-1)) == ()


def test_times_compare_as_instants_across_offsets() -> None:
    oslo = timezone(timedelta(hours=1))
    a = fact("measure.started", day(0), datetime(2025, 3, 3, 10, 30, tzinfo=oslo), measure_id="m")
    b = fact("measure.started", day(0), datetime(2025, 3, 3, 9, 45, tzinfo=UTC), measure_id="n")

    # 10:30+01:00 is 09:30 UTC, before 09:45 UTC.
    assert Journey("p1", [b, a]).facts == (a, b)


def test_a_naive_time_is_refused_naming_the_event_and_field() -> None:
    with pytest.raises(ValueError, match="fact e-naive: recorded_at"):
        Fact("e-naive", "measure.started", T0, datetime(2025, 3, 3), {"measure_id": "m"})


def test_a_stored_event_is_read_back_as_the_same_instants_in_utc() -> None:
    stored = {
        "event_id": "e-stored",
        "type": "measure.started",
        "occurred_at": "2025-03-03T10:30:00+01:00",
        "recorded_at": "2025-03-03T09:45:00Z",
        "source": {"system": "kommune", "org": "0301"},
        "data": {"measure_id": "m"},
    }
    read = to_fact(stored, seq=4)
    assert read.system == "kommune"
    assert read.occurred_at == datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
    assert read.occurred_at.tzinfo is UTC
    assert read.recorded_at.tzinfo is UTC
    assert (read.recorded_at, read.seq) == (datetime(2025, 3, 3, 9, 45, tzinfo=UTC), 4)
    with pytest.raises(ValueError, match="fact e-stored: occurred_at"):
        to_fact({**stored, "occurred_at": "2025-03-03T10:30:00"}, seq=4)


# --- engagements -------------------------------------------------------------------------


def test_a_measure_is_known_by_its_source_system_and_id() -> None:
    # CONTRACT §2: measure_id is unique per source; NAV's m1 and the municipality's m1
    # are two measures, and only the one whose source ended it has ended.
    def by(system: str, type_: str, at: datetime) -> Fact:
        return Fact(f"e{next(_ids)}", type_, at, at, {"measure_id": "m1"}, 0, system)

    known = KnownJourney(
        [
            by("nav", "measure.started", day(0)),
            by("kommune", "measure.started", day(2)),
            by("kommune", "measure.ended", day(5)),
        ]
    )

    assert known.engagements() == (
        Engagement("measure", "m1", day(0), None, unplanned=False, system="nav"),
        Engagement("measure", "m1", day(2), day(5), unplanned=False, system="kommune"),
    )


def test_a_measure_is_an_engagement_active_from_start_until_end() -> None:
    known = KnownJourney([started("m1", day(0)), ended("m1", day(10))])

    (m1,) = known.engagements()
    assert m1 == Engagement("measure", "m1", day(0), day(10), unplanned=False)
    assert m1.active_at(day(0))
    assert m1.active_at(day(9.99))
    assert not m1.active_at(day(10))
    assert not m1.active_at(day(-0.01))


def test_an_engagement_with_no_end_is_active_however_old() -> None:
    (m1,) = KnownJourney([started("m1", day(0))]).engagements()

    assert m1.end is None
    assert m1.active_at(day(4000))


@pytest.mark.parametrize(
    ("status", "reason", "unplanned"),
    [
        ("FULLFORT", "FERDIG", False),
        ("HAR_SLUTTET", "FATT_JOBB", False),
        ("IKKE_AKTUELL", "FIKK_IKKE_PLASS", False),
        ("AVBRUTT", "ANNET", True),
        ("HAR_SLUTTET", "IKKE_MOTT", True),
    ],
)
def test_measure_ends_are_unplanned_when_avbrutt_or_ikke_mott(
    status: str, reason: str, unplanned: bool
) -> None:
    known = KnownJourney([started("m1", day(0)), ended("m1", day(10), status, reason)])

    assert known.engagements()[0].unplanned is unplanned


@pytest.mark.parametrize(
    ("reason", "unplanned"),
    [
        ("CONTRACT_ENDED", False),
        ("CONVERTED", False),
        ("OTHER", False),
        ("QUIT", True),
        ("DISMISSED", True),
    ],
)
def test_placement_ends_are_unplanned_when_quit_or_dismissed(reason: str, unplanned: bool) -> None:
    known = KnownJourney(
        [
            fact("placement.started", day(0), placement_id="p-1", kind="PERMANENT", hours_pct=100),
            fact("placement.ended", day(30), placement_id="p-1", reason=reason),
        ]
    )

    assert known.engagements() == (
        Engagement("placement", "p-1", day(0), day(30), unplanned=unplanned),
    )


def test_a_dropout_ends_every_engagement_active_at_it_and_no_other() -> None:
    known = KnownJourney(
        [
            started("before", day(0)),
            ended("before", day(5)),
            started("a", day(1)),
            started("b", day(2)),
            ended("b", day(30)),
            fact("participant.dropped_out", day(10), reason="LOST_CONTACT"),
            started("after", day(12)),
        ]
    )

    assert known.engagements() == (
        Engagement("measure", "before", day(0), day(5), unplanned=False),
        Engagement("measure", "a", day(1), day(10), unplanned=True),
        Engagement("measure", "b", day(2), day(10), unplanned=True),
        Engagement("measure", "after", day(12), None, unplanned=False),
    )


def test_an_end_at_the_same_instant_as_a_dropout_stands_as_the_end() -> None:
    known = KnownJourney(
        [started("m1", day(0)), ended("m1", day(10)), fact("participant.dropped_out", day(10))]
    )

    assert known.engagements()[0].unplanned is False


def test_an_end_with_no_known_start_is_no_engagement() -> None:
    assert KnownJourney([ended("m1", day(10))]).engagements() == ()


def test_a_start_planned_ahead_is_active_from_when_it_occurs() -> None:
    journey = Journey("p1", [started("m1", at=day(20), recorded=day(2))])

    (m1,) = journey.as_known_at(day(3)).engagements()
    assert m1.start == day(20)
    assert not m1.active_at(day(3))
    assert m1.active_at(day(20))


def test_two_starts_of_one_engagement_count_from_the_earliest() -> None:
    known = KnownJourney([started("m1", day(4)), started("m1", day(1), recorded=day(6))])

    assert known.engagements()[0].start == day(1)


# --- journeys ----------------------------------------------------------------------------


def test_a_referral_opens_a_journey_and_a_closing_closes_it() -> None:
    referred = fact("participant.referred", day(0), channel="nav", org_unit="0301")
    closed = fact("journey.closed", day(40), reason="GOAL_REACHED")
    journey = Journey("p1", [referred, closed])

    assert journey.as_known_at(day(39)).closed_at is None
    assert journey.as_known_at(day(40)).closed_at == day(40)
    assert journey.as_known_at(day(40)).spans() == (JourneySpan(day(0), day(40)),)


def test_a_closing_counts_only_once_it_is_recorded() -> None:
    closed = fact("journey.closed", day(10), day(25), reason="MOVED")
    journey = Journey("p1", [fact("participant.triaged", day(0), need_group="X"), closed])

    assert journey.as_known_at(day(24)).closed_at is None
    assert journey.as_known_at(day(25)).closed_at == day(10)


def test_a_later_referral_opens_a_new_journey() -> None:
    known = KnownJourney(
        [
            fact("participant.referred", day(0), channel="nav"),
            fact("participant.triaged", day(2), need_group="GODE_MULIGHETER"),
            fact("journey.closed", day(40), reason="OTHER"),
            fact("participant.referred", day(60), channel="kommune"),
        ]
    )

    assert known.spans() == (JourneySpan(day(0), day(40)), JourneySpan(day(60), None))
    assert known.closed_at is None
    assert known.journey_at(day(-5)) == JourneySpan(day(0), day(40))
    assert known.journey_at(day(50)) == JourneySpan(day(0), day(40))
    assert known.journey_at(day(60)) == JourneySpan(day(60), None)


def test_a_closing_with_no_known_opening_closes_the_journey_of_what_came_before() -> None:
    known = KnownJourney(
        [fact("journey.closed", day(5)), fact("participant.referred", day(9), channel="self")]
    )

    assert known.journey_at(day(1)) == JourneySpan(None, day(5))
    assert known.journey_at(day(9)) == JourneySpan(day(9), None)


def test_with_no_journey_facts_there_is_no_journey() -> None:
    known = KnownJourney([started("m1", day(0))])

    assert known.spans() == ()
    assert known.journey_at(day(0)) is None
    assert known.closed_at is None
