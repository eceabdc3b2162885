"""Shares of a file's people (`services/outcomes/shares.py`): a file sorted into shares,
or a pipe, reads as the file does; at most one share more than the processes is under
way; and a replay that is killed leaves no process holding its shares' files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from services.outcomes import shares as shares_module
from services.outcomes.replay import replay_file
from tests.unit.replaying import ANA, BO, KEY, RULES, UNTIL, history


@pytest.mark.timeout(60)
def test_a_file_sorted_into_shares_and_a_pipe_are_read_as_the_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [*history(ANA.ended("m1", 100), BO.referred(0), "not json"), '{"cut": ']
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines), encoding="utf-8")  # the last line has no newline
    whole = replay_file(events, UNTIL, KEY, RULES, workers=1, shares=1)
    reported = [str(problem) for problem in whole.skipped]
    assert [problem.line for problem in whole.skipped] == [5, 6]
    assert "line 1 column 9" in reported[1]  # its own line, not one a newline was added to
    monkeypatch.setattr(shares_module, "SHARE_BYTES", 1)
    for workers in (1, 2):
        shared = replay_file(events, UNTIL, KEY, RULES, workers=workers, shares=3)
        assert (shared.alerts, [str(p) for p in shared.skipped]) == (whole.alerts, reported)
    # A pipe can be read only once: with two processes it is sorted into shares too.
    pipe = tmp_path / "events.pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(events.read_bytes()))
    writer.start()
    piped = replay_file(pipe, UNTIL, KEY, RULES, workers=2)
    writer.join()
    assert (piped.alerts, [str(p) for p in piped.skipped]) == (whole.alerts, reported)


def _noted(numbered: Any, until: Any, key: str, rules: Any, part: int, parts: int) -> int:
    """A share's run that notes that it ran (in the file `LOS_TEST_NOTES` names)."""
    with Path(os.environ["LOS_TEST_NOTES"]).open("a") as notes:
        notes.write(f"{part}\n")
    return part


def test_shares_under_way_are_at_most_one_more_than_the_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # So results wait for no slow consumer, and one that stops early waits for no more.
    notes = tmp_path / "notes"
    monkeypatch.setenv("LOS_TEST_NOTES", str(notes))
    events = tmp_path / "events.jsonl"
    events.write_text(ANA.referred(0) + "\n", encoding="utf-8")
    results = shares_module.in_parts(_noted, events, UNTIL, KEY, RULES, 2, 8)
    assert next(results) == 0
    results.close()
    assert 1 <= len(notes.read_text().split()) <= 4  # three before the first result, one after


def _sleepy(numbered: Any, until: Any, key: str, rules: Any, part: int, parts: int) -> int:
    """A share's run that notes its process and then takes its time."""
    with Path(os.environ["LOS_TEST_NOTES"]).open("a") as notes:
        notes.write(f"{os.getpid()}\n")
    time.sleep(60)
    return part


KILLED_REPLAY = """
import sys
from pathlib import Path
from services.outcomes import shares
from tests.unit.test_shares import KEY, RULES, UNTIL, _sleepy
shares.SHARE_BYTES = 1
list(shares.in_parts(_sleepy, Path(sys.argv[1]), UNTIL, KEY, RULES, 2, 4))
"""


@pytest.mark.timeout(60)
def test_a_killed_replay_leaves_no_process_holding_its_shares(tmp_path: Path) -> None:
    # Its processes would otherwise wait for work forever, the nameless files still open.
    notes = tmp_path / "notes"
    events = tmp_path / "events.jsonl"
    events.write_text("".join(f"{line}\n" for line in history(ANA.referred(0), BO.referred(0))))
    replaying = subprocess.Popen(
        [sys.executable, "-c", KILLED_REPLAY, str(events)],
        cwd=Path(__file__).parents[2],
        env=os.environ | {"LOS_TEST_NOTES": str(notes)},
    )
    try:
        while len(workers := _noted_pids(notes)) < 2:
            time.sleep(0.05)
        shared = {os.readlink(f) for pid in workers for f in Path(f"/proc/{pid}/fd").iterdir()}
        assert any(name.endswith("(deleted)") for name in shared), shared
    finally:
        replaying.kill()
        replaying.wait()
    deadline = time.monotonic() + 20
    while (alive := [pid for pid in workers if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)  # not to outlive the failing test
    assert not alive, "the replay's processes outlived it"


def _noted_pids(notes: Path) -> list[int]:
    return [int(pid) for pid in notes.read_text().split()] if notes.exists() else []


def _alive(pid: int) -> bool:
    """Whether the process is there and not a zombie left for its new parent to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
