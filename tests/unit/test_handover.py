"""`Handover`: batches committed by a store's worker thread, taken by one reader."""

from services.kernel.store import Handover


def test_nothing_is_handed_over_until_the_reader_opens_it() -> None:
    handover = Handover[str](limit=4)
    handover.committed([(1, "a")])
    handover.open()
    handover.committed([(2, "b"), (3, "c")])
    assert handover.take(after=0) == [(2, "b"), (3, "c")]
    assert handover.take(after=3) == []


def test_what_the_reader_read_from_the_store_is_left_out() -> None:
    # Committed while the reader read the store: both in what it read and handed over.
    handover = Handover[str](limit=4)
    handover.open()
    handover.committed([(1, "a"), (2, "b")])
    handover.committed([(3, "c")])
    assert handover.take(after=2) == [(3, "c")]


def test_a_reader_too_far_behind_finds_it_closed_and_emptied() -> None:
    handover = Handover[str](limit=2)
    handover.open()
    handover.committed([(1, "a")])
    handover.committed([(2, "b")])
    handover.committed([(3, "c")])
    assert not handover.is_open
    assert handover.take(after=0) == []
    handover.committed([(4, "d")])  # closed: the reader reads the store for it
    handover.open()
    assert handover.take(after=0) == []
