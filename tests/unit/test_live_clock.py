"""The live clock (CONTRACT §3): how far outcomes may judge, from what each service sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.outcomes.clock import LiveClock, Watermark

WALL = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = 1000.0  # monotonic seconds at WALL
QUIET = timedelta(seconds=2)
TRANSIT = timedelta(milliseconds=500)
EDGE = timedelta(milliseconds=100)
CAUGHT_UP = WALL - TRANSIT
SERVICES = ("intake", "journey", "employer")


def history(days_ago: float) -> datetime:
    return WALL - timedelta(days=days_ago)


def clock(**marks: Watermark) -> LiveClock:
    return LiveClock(SERVICES, QUIET, TRANSIT, EDGE, marks)


def sending(reached: datetime, live: bool = False) -> Watermark:
    return Watermark(reached, live, arrived=NOW - 0.5, arriving_live=live)


def gone_quiet(reached: datetime, live: bool = False) -> Watermark:
    return Watermark(reached, live, arrived=NOW - 60)


def now(live_clock: LiveClock, backlog: bool = False) -> datetime | None:
    return live_clock.now(backlog=backlog, wall=WALL, monotonic=NOW)


def test_while_history_comes_in_the_clock_is_the_slowest_services_watermark() -> None:
    live_clock = clock(
        intake=sending(history(300)), journey=sending(history(200)), employer=sending(history(250))
    )
    assert now(live_clock) == history(300)


def test_a_backlog_in_the_stream_holds_every_service_at_its_watermark() -> None:
    live_clock = clock(
        intake=gone_quiet(history(3), live=True),
        journey=gone_quiet(history(2), live=True),
        employer=gone_quiet(history(1), live=True),
    )
    assert now(live_clock, backlog=True) == history(3)


def test_once_the_whole_bus_is_quiet_every_service_is_caught_up_to_the_wall_clock() -> None:
    live_clock = clock(intake=gone_quiet(history(300)), journey=gone_quiet(history(200)))
    assert now(live_clock) == CAUGHT_UP


def test_a_live_service_gone_quiet_does_not_hold_back_one_still_sending() -> None:
    # NAV sends all day; intake sent its last live event an hour ago.
    live_clock = clock(
        intake=gone_quiet(WALL - timedelta(hours=1), live=True),
        journey=sending(WALL - timedelta(seconds=1), live=True),
        employer=gone_quiet(WALL - timedelta(days=2), live=True),
    )
    assert now(live_clock) == CAUGHT_UP


def test_services_sending_live_facts_are_caught_up_between_their_facts() -> None:
    # Employer's last placement came a second ago: with nothing pending on the bus, all it
    # recorded up to the allowance has arrived, so deadlines need not wait for its next.
    live_clock = clock(
        intake=sending(WALL - timedelta(milliseconds=100), live=True),
        journey=sending(WALL - timedelta(milliseconds=50), live=True),
        employer=sending(WALL - timedelta(seconds=1), live=True),
    )
    assert now(live_clock) == CAUGHT_UP
    assert now(live_clock, backlog=True) == WALL - timedelta(seconds=1)


def test_a_live_service_that_starts_sending_history_holds_the_clock_at_its_watermark() -> None:
    live_clock = clock(
        intake=sending(WALL - timedelta(seconds=1), live=True),
        journey=sending(WALL - timedelta(seconds=1), live=True),
        employer=sending(WALL - timedelta(seconds=1), live=True),
    )
    live_clock.saw("journey", history(400), WALL, NOW)  # a backfill begins

    assert now(live_clock) == WALL - timedelta(seconds=1)


def test_a_service_gone_quiet_in_a_backfill_holds_the_clock_while_others_send_history() -> None:
    live_clock = clock(
        intake=sending(history(100)),
        journey=sending(history(90)),
        employer=gone_quiet(history(150)),
    )
    assert now(live_clock) == history(150)


def test_a_service_never_heard_from_holds_the_clock_while_others_send_history() -> None:
    # Its first facts may be older than what the others have sent so far.
    live_clock = clock(intake=sending(history(100)), journey=sending(history(90)))
    assert now(live_clock) is None


def test_a_service_never_heard_from_counts_as_caught_up_when_the_others_are_live() -> None:
    # No employer system is connected yet: that must not stop alerts for everyone.
    live_clock = clock(
        intake=sending(WALL - timedelta(seconds=3), live=True),
        journey=sending(WALL - timedelta(seconds=2), live=True),
    )
    assert now(live_clock) == CAUGHT_UP


def test_with_nothing_heard_and_nothing_pending_the_clock_is_the_wall_clock() -> None:
    assert now(clock()) == CAUGHT_UP


def test_with_nothing_heard_and_a_backlog_there_is_no_clock_yet() -> None:
    assert now(clock(), backlog=True) is None


def test_a_backfill_after_a_quiet_spell_steps_the_clock_back() -> None:
    live_clock = clock()
    assert now(live_clock) == CAUGHT_UP
    for service in SERVICES:
        live_clock.saw(service, history(400), WALL, NOW)
    assert now(live_clock) == history(400)


def test_a_quiet_live_service_ahead_of_the_wall_clock_keeps_its_own_watermark() -> None:
    # recorded_at may be up to five minutes after the platform's receive time (CONTRACT §1).
    ahead = WALL + timedelta(minutes=3)
    live_clock = clock(
        intake=gone_quiet(ahead, live=True),
        journey=gone_quiet(ahead, live=True),
        employer=gone_quiet(ahead, live=True),
    )
    assert now(live_clock) == ahead


def test_seeing_a_fact_records_how_far_the_service_got_and_whether_it_is_live() -> None:
    live_clock = clock()
    live_clock.saw("journey", WALL - timedelta(seconds=5), WALL, NOW)
    live_clock.saw("intake", history(30), WALL, NOW)
    live_clock.saw("journey", WALL - timedelta(seconds=9), WALL, NOW)  # older: no step back

    assert live_clock.watermarks["journey"].reached == WALL - timedelta(seconds=5)
    assert live_clock.watermarks["journey"].live
    assert not live_clock.watermarks["intake"].live


def all_sending_live(reached: datetime) -> LiveClock:
    return clock(**{service: sending(reached, live=True) for service in SERVICES})


def test_an_announcement_counts_once_outcomes_has_taken_in_the_stream_up_to_it() -> None:
    live_clock = all_sending_live(WALL - timedelta(seconds=1))
    for service in SERVICES:
        live_clock.announced(service, WALL - timedelta(milliseconds=300), through=10)
        live_clock.announced(service, WALL - timedelta(milliseconds=50), through=20)

    live_clock.took_in(9)
    assert now(live_clock, backlog=True) == WALL - timedelta(seconds=1)
    live_clock.took_in(15)
    assert now(live_clock, backlog=True) == WALL - timedelta(milliseconds=300) - EDGE
    live_clock.took_in(20)
    assert now(live_clock, backlog=True) == WALL - timedelta(milliseconds=50) - EDGE


def test_announcements_spare_live_services_the_transit_allowance() -> None:
    live_clock = all_sending_live(WALL - timedelta(seconds=1))
    for service in SERVICES:
        live_clock.announced(service, WALL - timedelta(milliseconds=50), through=7)
    live_clock.took_in(7)

    assert now(live_clock) == WALL - timedelta(milliseconds=50) - EDGE


def test_a_service_sending_history_is_held_at_its_watermark_whatever_it_announces() -> None:
    # Received and published, yes; but more history may come after it.
    live_clock = all_sending_live(WALL - timedelta(seconds=1))
    live_clock.saw("journey", history(400), WALL, NOW)
    for service in SERVICES:
        live_clock.announced(service, WALL, through=3)
    live_clock.took_in(3)

    assert now(live_clock) == WALL - timedelta(seconds=1)
    assert now(live_clock, backlog=True) == WALL - timedelta(seconds=1)


def test_an_announcement_does_not_release_a_service_never_heard_from_during_a_backfill() -> None:
    live_clock = clock(intake=sending(history(100)), journey=sending(history(90)))
    live_clock.announced("employer", WALL, through=0)
    live_clock.took_in(0)

    assert now(live_clock) is None


def test_a_service_never_heard_from_but_announcing_counts_as_far_as_it_announced() -> None:
    live_clock = clock(
        intake=sending(WALL - timedelta(seconds=3), live=True),
        journey=sending(WALL - timedelta(seconds=2), live=True),
    )
    for service in SERVICES:
        live_clock.announced(service, WALL, through=0)
    live_clock.took_in(0)

    assert now(live_clock) == WALL - EDGE
