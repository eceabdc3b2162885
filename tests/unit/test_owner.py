"""Outcomes instances share the stream's partitions: each partition has one owner, and a
new owner of a partition starts where its earlier owners got."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.kernel.bus import subject_for
from services.kernel.settings import Settings
from services.outcomes.owner import EVERYTHING, Owner, partitions_named, reached


def owners(instances: int, partitions: int = 16) -> list[Owner]:
    return [
        Owner.of(
            Settings(
                partitions=partitions, outcomes_instances=instances, outcomes_instance=instance
            )
        )
        for instance in range(instances)
    ]


@pytest.mark.parametrize("instances", range(1, 17))
def test_every_partition_has_exactly_one_owner(instances: int) -> None:
    shared = owners(instances)
    assert sorted(p for owner in shared for p in owner.partitions) == list(range(16))
    assert len({owner.consumer for owner in shared}) == instances


def test_one_instance_owns_everything_under_the_names_it_had_before_scale_out() -> None:
    [alone] = owners(1)
    assert (alone.name, alone.consumer) == (EVERYTHING, "outcomes")
    assert alone.everything
    assert alone.subjects(Settings()) == ["los.v1.events.*.*.>"]


def test_an_instance_of_several_reads_the_subjects_of_its_partitions_only() -> None:
    second = owners(4)[1]
    assert (second.name, second.consumer) == ("outcomes:1,5,9,13", "outcomes-1")
    assert second.subjects(Settings()) == [f"los.v1.events.*.p{p:03d}.>" for p in (1, 5, 9, 13)]
    people = [f"{n:064x}" for n in range(200)]
    settings = Settings()
    for person in people:
        partition = int(
            subject_for(settings, "journey", person, "measure.started").split(".")[4][1:]
        )
        assert second.owns(person) == (partition in {1, 5, 9, 13})
    assert any(second.owns(person) for person in people)
    assert not all(second.owns(person) for person in people)


def test_an_owner_is_found_again_by_its_name() -> None:
    for owner in owners(3):
        assert partitions_named(owner.name, 16) == owner.partitions
    assert partitions_named(EVERYTHING, 16) == frozenset(range(16))
    for other in ("naive", "outcomes-1", "outcomes:", "outcomesx:1"):
        assert partitions_named(other, 16) == frozenset()


def test_a_new_owner_starts_where_the_earlier_owners_of_its_partitions_got() -> None:
    first, second = owners(2)
    # One instance took everything to 100; then two shared it, the first got to 150.
    positions = {EVERYTHING: 100, first.name: 150, "naive": 999}
    assert reached(first, positions) == dict.fromkeys(first.partitions, 150)
    assert reached(second, positions) == dict.fromkeys(second.partitions, 100)
    # Back to one instance: each partition from the furthest any owner of it got.
    [alone] = owners(1)
    got = reached(alone, positions | {second.name: 120})
    assert got == {p: 150 if p % 2 == 0 else 120 for p in range(16)}
    assert reached(alone, {}) == dict.fromkeys(range(16), 0)


@pytest.mark.parametrize(
    ("instances", "instance", "said"),
    [
        (0, 0, "LOS_OUTCOMES_INSTANCES must be from 1 to LOS_PARTITIONS (16)"),
        (17, 0, "LOS_OUTCOMES_INSTANCES must be from 1 to LOS_PARTITIONS (16)"),
        (2, 2, "LOS_OUTCOMES_INSTANCE must be from 0 to LOS_OUTCOMES_INSTANCES - 1 (1)"),
        (2, -1, "LOS_OUTCOMES_INSTANCE must be from 0 to LOS_OUTCOMES_INSTANCES - 1 (1)"),
    ],
)
def test_an_instance_out_of_range_is_refused_at_start(
    instances: int, instance: int, said: str
) -> None:
    with pytest.raises(ValidationError, match=said.replace("(", r"\(").replace(")", r"\)")):
        Settings(outcomes_instances=instances, outcomes_instance=instance)
