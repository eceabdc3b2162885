"""The rule engine compiled with mypyc, in place, and the check that it is not stale.

`python services/outcomes/build.py` (`make compiled`) compiles the modules the rules run on
into C extensions beside their sources: `evaluate` takes about half the time. Python then
imports the extension rather than the `.py` file, so an edited source would silently not
count. To prevent that, the build records a digest of each source it compiled, and
importing `services.outcomes` checks the record (`check`): a compiled module whose source
has changed since is an ImportError that says what to run. Without any compiled module
everything runs as plain Python, with the same results (tests/unit/test_compiled.py).

Building needs the dev dependencies (mypy, setuptools) and a C compiler. Run as a script,
not as `-m`: importing the package would run the check that a rebuild is meant to answer.
`python services/outcomes/build.py remove` goes back to plain Python (`make clean-compiled`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

ROOT = Path(__file__).parents[2]  # where the `services` package is
COMPILED = (
    "services/outcomes/domain.py",
    "services/outcomes/journey.py",
    "services/outcomes/rules/walk.py",
    "services/outcomes/rules/gaps.py",
    "services/outcomes/rules/coordination.py",
    "services/outcomes/rules/employment.py",
    "services/outcomes/rules/measures.py",
)
# The digests of the sources last compiled, written once the build has succeeded.
RECORD = "services/outcomes/compiled.json"
# mypyc's shared library for the modules above: services/outcomes/rules__mypyc*.so
GROUP = "services.outcomes.rules"


def _digest(root: Path, source: str) -> str:
    return hashlib.sha256((root / source).read_bytes()).hexdigest()


def _extensions(root: Path, source: str) -> list[Path]:
    stem = (root / source).with_suffix("")
    return [path for suffix in EXTENSION_SUFFIXES if (path := Path(f"{stem}{suffix}")).exists()]


def compiled(root: Path = ROOT) -> list[str]:
    """The modules of `COMPILED` that Python imports as extensions under `root`."""
    return [source for source in COMPILED if _extensions(root, source)]


def stale(root: Path = ROOT) -> list[str]:
    """The compiled modules whose source is not the one they were compiled from."""
    record_path = root / RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    return [source for source in compiled(root) if record.get(source) != _digest(root, source)]


def check(root: Path = ROOT) -> None:
    """ImportError if a compiled module would stand in for a source it was not built from."""
    if changed := stale(root):
        raise ImportError(
            f"{', '.join(changed)} changed since mypyc compiled it: run `make compiled` to"
            " compile it again, or `make clean-compiled` to run the rules as plain Python"
        )


def remove(root: Path = ROOT) -> None:
    """Back to plain Python: the extensions, mypyc's shared library and the record gone."""
    for source in COMPILED:
        for path in _extensions(root, source):
            path.unlink()
    for path in (root / "services/outcomes").glob("rules__mypyc*"):
        path.unlink()
    (root / RECORD).unlink(missing_ok=True)


def plain_copy(into: Path) -> Path:
    """A copy of the `services` package under `into` with nothing compiled; returns `into`."""
    shutil.copytree(
        ROOT / "services",
        into / "services",
        ignore=shutil.ignore_patterns("*.so", "__pycache__", Path(RECORD).name),
    )
    return into


def build(root: Path = ROOT) -> None:
    """Compile `COMPILED` in place under `root`, unless it already is, from these sources."""
    if len(compiled(root)) == len(COMPILED) and not stale(root):
        print("the rules are compiled and up to date")
        return
    from mypyc.build import mypycify  # dev dependencies, needed only here
    from setuptools import setup

    remove(root)  # a build that fails half-way leaves plain Python, not a mixture
    os.chdir(root)  # mypyc reads mypy's settings from pyproject.toml there
    setup(
        name="los-rules",
        ext_modules=mypycify(list(COMPILED), group_name=GROUP),
        script_args=["--quiet", "build_ext", "--inplace", "--build-temp", "build/mypyc"],
    )
    digests = {source: _digest(root, source) for source in COMPILED}
    (root / RECORD).write_text(json.dumps(digests, indent=2) + "\n")
    print(f"compiled with mypyc: {', '.join(COMPILED)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["remove"]:
        remove()
    else:
        build()
