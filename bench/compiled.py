"""What if the rules were compiled: the journey store's replay with mypyc-compiled rules.

Not how the services run. A copy of `services/` is made in the run's scratch folder, the
rule engine's modules are compiled there with mypyc (the `mypy` of the dev dependencies;
it needs a C compiler), and `bench.replay.store_replay` runs in a process that imports
`services` from that copy. The figure stands beside the same replay in pure Python from
the same run, and the run records whether both found the same alerts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench.common import BENCH_DIR, Replayed

ROOT = BENCH_DIR.parent
COMPILED = (
    "services/outcomes/domain.py",
    "services/outcomes/journey.py",
    "services/outcomes/rules/walk.py",
    "services/outcomes/rules/gaps.py",
    "services/outcomes/rules/coordination.py",
    "services/outcomes/rules/employment.py",
    "services/outcomes/rules/measures.py",
)

_REPLAY = """
import json, sys
from datetime import datetime
from bench.replay import store_replay
events, seconds, alerts = store_replay(sys.argv[1], datetime.fromisoformat(sys.argv[2]))
print(json.dumps({"events": events, "seconds": seconds, "alerts": alerts,
                  "walk": sys.modules["services.outcomes.rules.walk"].__file__}))
"""


def compile_rules(work_dir: Path) -> Path:
    """A copy of the tree with the rule engine compiled; returns its root."""
    tree = work_dir / "mypyc"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(
        ROOT / "services", tree / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tree)  # mypy's settings
    subprocess.run(
        [sys.executable, "-m", "mypyc", *COMPILED], cwd=tree, check=True, capture_output=True
    )
    return tree


def store_replay_compiled(tree: Path, database_url: str, until: datetime) -> Replayed:
    """`store_replay` in one process with `services` imported from the compiled copy:
    (events, seconds, alerts)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", _REPLAY, database_url, until.isoformat()],
        cwd=tree,  # `-c` puts the working folder first on the path
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(done.stdout.splitlines()[-1])
    if not found["walk"].endswith(".so"):
        raise RuntimeError(f"the rules were not imported compiled: {found['walk']}")
    return int(found["events"]), float(found["seconds"]), int(found["alerts"])
