"""What an outbox may announce as published: nothing received later than a batch that is
still being stored (services/kernel/outbox.py, `Arrivals`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kernel.outbox import Arrivals

T = datetime(2020, 1, 6, 8, 0, tzinfo=UTC)


def test_with_nothing_being_stored_everything_received_until_now_is_stored() -> None:
    before = datetime.now(UTC)
    assert before <= Arrivals().stored_before() <= datetime.now(UTC)


def test_the_earliest_batch_still_being_stored_holds_the_moment_back() -> None:
    arrivals = Arrivals()
    with arrivals.receiving(T), arrivals.receiving(T + timedelta(seconds=1)):
        assert arrivals.stored_before() == T
        with arrivals.receiving(T):  # two batches received at the same instant
            pass
        assert arrivals.stored_before() == T
    assert arrivals.stored_before() > T + timedelta(seconds=1)


def test_a_batch_that_fails_to_store_no_longer_holds_it_back() -> None:
    arrivals = Arrivals()
    with pytest.raises(RuntimeError), arrivals.receiving(T):
        raise RuntimeError("the store is down")
    assert arrivals.stored_before() > T
