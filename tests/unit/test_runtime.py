"""`run`, which every service process is started by."""

import gc
import logging
from collections.abc import Iterator

import pytest

from services.kernel import runtime
from services.kernel.settings import Settings, get_settings


@pytest.fixture
def servers_named(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings that name both servers (the service never connects here)."""
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    for key in ("LOS_PSEUDONYM_KEY", "LOS_VAULT_KEY", "LOS_TOKEN_KEY"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_service_collects_its_youngest_objects_less_often_than_python_does(
    servers_named: None,
) -> None:
    seen: list[tuple[int, int, int]] = []

    async def main(settings: Settings) -> None:
        seen.append(gc.get_threshold())

    before = gc.get_threshold()
    try:
        runtime.run(main, keys=())
    finally:
        gc.set_threshold(*before)
    assert seen == [(runtime.YOUNG_COLLECTION, *before[1:])]
    assert before[0] < runtime.YOUNG_COLLECTION


def test_a_service_warns_of_the_keys_it_uses_left_at_their_public_defaults(
    servers_named: None, caplog: pytest.LogCaptureFixture
) -> None:
    async def main(settings: Settings) -> None:
        pass

    with caplog.at_level(logging.WARNING, logger=runtime.__name__):
        runtime.run(main, keys=("token_key",))
    assert [r.getMessage() for r in caplog.records] == [
        "LOS_TOKEN_KEY is the public development default: fit for synthetic data only"
    ]


def test_a_service_without_its_servers_says_which_and_does_not_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    get_settings.cache_clear()
    started: list[Settings] = []

    async def main(settings: Settings) -> None:
        started.append(settings)

    try:
        with pytest.raises(SystemExit) as exit_code:
            runtime.run(main, keys=())
    finally:
        get_settings.cache_clear()
    assert exit_code.value.code == 2
    assert started == []
    assert "NATS_URL not set" in caplog.text
