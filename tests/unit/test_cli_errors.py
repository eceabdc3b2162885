"""`los` commands given wrong arguments, or with nothing to talk to, say so in a line an
operator can act on, and exit non-zero; no traceback. And settings the docs promise work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.platform import chosen_ports
from services.cli.watch import watch
from services.kernel.embedded import free_port
from services.kernel.settings import Settings, get_settings


def los(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output + result.stderr


def test_importing_a_file_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    code, said = los("import", str(tmp_path / "missing.jsonl"))
    assert code == 2
    assert "does not exist" in said


@pytest.mark.parametrize(("command", "output"), [("import", "--rejects"), ("check", "--out")])
def test_an_import_or_check_with_the_services_down_stops_with_the_reason(
    tmp_path: Path, command: str, output: str
) -> None:
    lines = tmp_path / "one.jsonl"
    lines.write_text('{"type": "participant.referred"}\n', encoding="utf-8")
    down = f"127.0.0.1:{free_port()}"
    code, said = los(command, str(lines), "--intake", down, output, str(tmp_path / "out.jsonl"))
    assert code == 1
    assert f"{command} stopped: UNAVAILABLE" in said


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((), "give --coordinator (and --team), or --source and --client (and --org)"),
        (
            ("--coordinator", "c-1", "--source", "nav", "--client", "nav-arena"),
            "give --coordinator (and --team), or --source and --client (and --org)",
        ),
        (
            ("--coordinator", "c-1", "--org", "0301"),
            "give --coordinator (and --team), or --source and --client (and --org)",
        ),
        (  # whose?
            ("--source", "kommune"),
            "give --coordinator (and --team), or --source and --client (and --org)",
        ),
        (  # --org meant
            ("--source", "kommune", "--client", "oslo", "--team", "0301"),
            "give --coordinator (and --team), or --source and --client (and --org)",
        ),
        (("--source", "skatt", "--client", "skatteetaten"), "'skatt' is not one of"),
    ],
)
def test_a_token_for_neither_api_or_for_both_is_a_usage_error(
    args: tuple[str, ...], said: str
) -> None:
    code, output = los("token", *args)
    assert code == 2, output
    assert said in " ".join(output.replace("│", " ").split())


def test_a_source_token_bound_to_an_organisation_that_is_none_is_a_usage_error() -> None:
    code, said = los("token", "--source", "kommune", "--client", "oslo", "--org", "03011")
    assert code == 2
    unboxed = " ".join(said.replace("│", " ").split())  # as rich wrapped it
    assert "--org 03011: 9-digit organisasjonsnummer or 4-digit kommunenummer expected" in unboxed


@pytest.mark.parametrize(
    "args",
    [
        (),  # neither a file nor the store
        ("--store",),  # for whose study?
        ("--store", "--pseudonym-key", "k"),  # a store holds no national id to key
        ("FILE",),  # a file's people need a key
        ("FILE", "--store", "--study-key", "s"),
    ],
)
def test_a_replay_of_a_file_and_of_the_store_are_told_apart(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    named = [str(events) if arg == "FILE" else arg for arg in args]
    code, said = los("replay", "--until", "2026-01-01T00:00:00Z", *named)
    assert code == 2
    unboxed = " ".join(said.replace("│", " ").split())
    assert "give a FILE and --pseudonym-key, or --store and --study-key" in unboxed


@pytest.mark.parametrize(
    ("args", "said"),
    [((), "give a FILE, or --store"), (("FILE", "--store"), "give a FILE, or --store")],
)
def test_an_export_of_a_file_and_of_the_store_are_told_apart(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    named = [str(events) if arg == "FILE" else arg for arg in args]
    study = ("--study-key", "a-study-key-of-32-bytes-or-more-00", "--out", str(tmp_path / "out"))
    code, output = los("export", "--until", "2026-01-01T00:00:00Z", *study, *named)
    assert code == 2
    assert said in " ".join(output.replace("│", " ").split())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["replay", "export"])
def test_a_study_of_the_store_needs_its_database_and_a_study_key_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    out = ("--out", str(tmp_path / "study")) if command == "export" else ()
    store = (command, *out, "--store", "--until", "2026-01-01T00:00:00Z", "--study-key")
    study = "a-study-key-of-32-bytes-or-more-00"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    without = los(*store, study)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    platforms = los(*store, Settings().pseudonym_key.get_secret_value())
    short = los(*store, "a-study")
    unreachable = los(*store, study)
    get_settings.cache_clear()

    assert without[0] == 2
    assert "DATABASE_URL is not set" in without[1]
    assert platforms[0] == 2
    assert "must not be LOS_PSEUDONYM_KEY" in " ".join(platforms[1].replace("│", " ").split())
    assert short[0] == 2
    assert "must be 32 bytes or more" in " ".join(short[1].replace("│", " ").split())
    assert unreachable[0] == 1
    assert unreachable[1].startswith(f"{command} stopped: ")
    assert not (tmp_path / "study").exists(), "nothing written"


def test_erasing_needs_the_database_and_ids_from_a_file_or_standard_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    people = tmp_path / "people.txt"
    people.write_text("17859006884\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    without = los("erase", str(people))
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    missing = los("erase", str(tmp_path / "missing.txt"))
    unreachable = los("erase", str(people))
    get_settings.cache_clear()

    assert without[0] == 2
    assert "DATABASE_URL is not set" in without[1]
    assert missing[0] == 2
    assert "No such file or directory" in " ".join(missing[1].replace("│", " ").split())
    assert unreachable[0] == 1
    assert unreachable[1].startswith("erase stopped: ")
    assert "17859006884" not in without[1] + missing[1] + unreachable[1]


def test_counts_below_one_are_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "cohort.jsonl")
    assert los("generate", "--people", "0", "--out", out)[0] == 2
    assert los("generate", "--years", "-1", "--out", out)[0] == 2
    assert los("token", "--coordinator", "c-1", "--hours", "0")[0] == 2


def test_a_token_for_longer_than_the_services_take_is_a_usage_error() -> None:
    assert los("token", "--coordinator", "c-1", "--hours", "24")[0] == 0
    code, said = los("token", "--coordinator", "c-1", "--hours", "25")
    assert code == 2
    assert "--hours 25: longer than LOS_TOKEN_MAX_LIFETIME (P1D)" in said


@pytest.fixture
def oslo_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is Oslo's (this machine's may be UTC)."""
    monkeypatch.setenv("TZ", "Europe/Oslo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_cohort_until_a_time_without_offset_is_the_cohort_until_that_time_in_utc(
    tmp_path: Path, oslo_time: None
) -> None:
    files = [tmp_path / "naive.jsonl", tmp_path / "utc.jsonl"]
    for out, until in zip(files, ["2025-06-01T12:00:00", "2025-06-01T12:00:00+00:00"], strict=True):
        assert los("generate", "--people", "5", "--out", str(out), "--until", until)[0] == 0
    assert files[0].read_bytes() == files[1].read_bytes()


async def test_a_watch_that_cannot_reach_outcomes_says_why_once_and_keeps_trying() -> None:
    told: list[str] = []
    updates = watch(f"127.0.0.1:{free_port()}", "token", coordinator="c-1", broke=told.append)
    with pytest.raises(TimeoutError):  # it keeps trying, every half second
        await asyncio.wait_for(anext(updates), timeout=2)
    assert len(told) == 1
    assert told[0].startswith("UNAVAILABLE")


def test_a_service_port_of_0_is_a_free_port_chosen_before_the_services_start() -> None:
    ports = chosen_ports(Settings(journey_port=0, _env_file=None))
    assert ports["intake"] == Settings().intake_port
    assert 1024 <= ports["journey"] < 65536
