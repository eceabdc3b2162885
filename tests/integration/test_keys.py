"""People's keys in PostgreSQL: made once, shared by every service, gone for good when the
person is erased, and what sealed events are opened with."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.kernel.embedded import Servers
from services.kernel.keys import (
    ERASED,
    KEY,
    NOTHING,
    Keys,
    StoredKeys,
    create_keys,
    seal,
    unseal,
)
from tests.support import fresh_database

ANN, BO, CY = "a" * 64, "b" * 64, "c" * 64
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.fixture
def database_url(real_servers: Servers) -> str:
    url = fresh_database(real_servers.database_url)
    create_keys(url)
    create_keys(url)  # a second service's start finds it made
    return url


def _sealed_by(keys: Keys, participant: str) -> str:
    return seal(keys.for_writing([participant])[participant], participant, b"an event")


@pytest.mark.servers
def test_each_person_has_one_key_whichever_service_asks_first(database_url: str) -> None:
    intake, journey = StoredKeys(database_url), StoredKeys(database_url)
    try:
        sealed = _sealed_by(intake, ANN)
        # The other service gets the same key, and so do readers; someone no one wrote
        # about has none.
        assert unseal(journey.for_writing([ANN, BO])[ANN], ANN, sealed) == b"an event"
        read = journey.for_reading([ANN, BO, CY])
        assert sorted(read) == [ANN, BO]
        assert unseal(read[ANN], ANN, sealed) == b"an event"
        with pytest.raises(InvalidTag):  # sealed for Ann, not for Bo
            unseal(read[BO], BO, sealed)
    finally:
        intake.close()
        journey.close()


@pytest.mark.servers
def test_many_services_making_keys_at_once_agree(database_url: str) -> None:
    people = [f"{n:064x}" for n in range(2_000)]
    together = threading.Barrier(4)

    def made(seed: int) -> dict[str, bytes]:
        """What each person's key makes of the same nonce and text: the same only if
        the key is. Each service asks for the same new people in another order, all at
        once, batch after batch."""
        keys, shuffled = StoredKeys(database_url), random.Random(seed)
        found: dict[str, AESGCM] = {}
        try:
            keys.for_reading([])  # connected
            for start in range(0, len(people), 100):
                batch = people[start : start + 100]
                together.wait(timeout=30)
                found |= keys.for_writing(shuffled.sample(batch, len(batch)))
            return {p: found[p].encrypt(bytes(12), b"x", None) for p in people}
        finally:
            keys.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(made, range(4)))  # deadlocked, made in the order asked
    assert all(result == results[0] for result in results)
    assert len(set(results[0].values())) == len(people)


@pytest.mark.servers
@pytest.mark.parametrize("kind", ["memory", "stored"])
def test_an_erased_person_has_no_key_and_gets_none_again(database_url: str, kind: str) -> None:
    keys = Keys() if kind == "memory" else StoredKeys(database_url)
    try:
        _sealed_by(keys, ANN)
        _sealed_by(keys, BO)
        assert keys.erase(ANN, NOW) == KEY
        assert keys.erase(ANN, NOW) == ERASED
        assert keys.erase(CY, NOW) == NOTHING  # never written about, erased all the same
        assert sorted(keys.for_reading([ANN, BO, CY])) == [BO]
        assert sorted(keys.for_writing([ANN, BO, CY])) == [BO]
    finally:
        keys.close()
