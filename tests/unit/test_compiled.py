"""The rule engine as it runs: compiled by mypyc (`make compiled`), giving what the plain
Python sources give, and never standing in for a source it was not built from."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import pytest

from services.cohort import generate_cohort
from services.outcomes.build import COMPILED, RECORD, ROOT, check, compiled, plain_copy, remove
from services.outcomes.domain import Engagement, Fact, JourneySpan
from services.outcomes.rules import Alert

# One replay, and which file the rules' walk was imported from.
_REPLAY = """
import sys
from datetime import datetime
from pathlib import Path
from services.kernel.settings import RuleSettings
from services.outcomes.replay import replay_file
print(sys.modules["services.outcomes.rules.walk"].__file__)
for until in sys.argv[2:]:
    found = replay_file(Path(sys.argv[1]), datetime.fromisoformat(until), "k" * 32, RuleSettings())
    print("\\n".join(found.alerts))
"""


def test_the_rules_run_compiled() -> None:
    assert compiled() == list(COMPILED), "run `make compiled`"
    for source in COMPILED:
        module = importlib.import_module(source.removesuffix(".py").replace("/", "."))
        assert str(module.__file__).endswith(tuple(EXTENSION_SUFFIXES)), source


def test_compiled_and_plain_python_rules_replay_a_cohort_alike(tmp_path: Path) -> None:
    plain = plain_copy(tmp_path / "plain")
    cohort = generate_cohort(
        1500, seed=11, start=date(2024, 1, 1), end=date(2025, 6, 30), invalid_share=0.02
    )
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in cohort.events), encoding="utf-8")
    untils = [(cohort.until - timedelta(days=200)).isoformat(), cohort.until.isoformat()]

    def replay(cwd: Path) -> tuple[str, list[str]]:
        # `-c` puts the working folder first on the path: `services` is imported from there.
        done = subprocess.run(
            [sys.executable, "-c", _REPLAY, str(events), *untils],
            cwd=cwd, check=True, capture_output=True, text=True,
        )  # fmt: skip
        walk, *alerts = done.stdout.splitlines()
        return walk, alerts

    compiled_walk, compiled_alerts = replay(ROOT)
    plain_walk, plain_alerts = replay(plain)
    assert compiled_walk.endswith(tuple(EXTENSION_SUFFIXES))
    assert plain_walk.endswith(".py")
    assert len(plain_alerts) > 500
    assert compiled_alerts == plain_alerts


_AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "field", "copy_with"),
    [
        (Fact("e1", "measure.started", _AT, _AT, {}), "recorded_at", {"seq": 2}),
        (Engagement("measure", "m1", _AT, None, False), "end", {"end": _AT}),
        (JourneySpan(_AT, None), "closed_at", {"closed_at": _AT}),
        (Alert("HANDOVER_GAP", "m1", "k", _AT, "open", None, None), "status", {"status": "x"}),
    ],
    ids=["Fact", "Engagement", "JourneySpan", "Alert"],
)
def test_compiled_value_objects_cannot_be_changed(
    value: Any, field: str, copy_with: dict[str, object]
) -> None:
    # `Final` fields: mypy refuses the assignment, and compiled so does Python.
    with pytest.raises(AttributeError, match="not writable"):
        setattr(value, field, _AT)
    changed = replace(value, **copy_with)
    assert changed != value
    assert replace(value) == value


def _built_tree(root: Path) -> None:
    """Sources, a stand-in extension for each and mypyc's library, and the build's record."""
    for source in COMPILED:
        (root / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / source, root / source)
        Path(f"{(root / source).with_suffix('')}{EXTENSION_SUFFIXES[0]}").touch()
    (root / f"services/outcomes/rules__mypyc{EXTENSION_SUFFIXES[0]}").touch()
    shutil.copy(ROOT / RECORD, root / RECORD)


def test_a_source_changed_after_the_build_is_refused_by_name(tmp_path: Path) -> None:
    _built_tree(tmp_path)
    check(tmp_path)  # as built: fine
    walk = tmp_path / "services/outcomes/rules/walk.py"
    walk.write_text(walk.read_text() + "\n# edited\n")
    with pytest.raises(ImportError, match=r"services/outcomes/rules/walk\.py changed") as raised:
        check(tmp_path)
    assert "gaps.py" not in str(raised.value)


def test_compiled_modules_without_the_build_record_are_refused(tmp_path: Path) -> None:
    _built_tree(tmp_path)
    (tmp_path / RECORD).unlink()  # a build that stopped half-way
    with pytest.raises(ImportError, match="make compiled"):
        check(tmp_path)


def test_removing_the_build_leaves_plain_python(tmp_path: Path) -> None:
    _built_tree(tmp_path)
    remove(tmp_path)
    assert compiled(tmp_path) == []
    assert not (tmp_path / RECORD).exists()
    assert list(tmp_path.rglob("*.so")) == []
    assert all((tmp_path / source).exists() for source in COMPILED)
    check(tmp_path)
