"""What compiling the rules buys: the journey store's replay with the rules as plain Python.

The services run the rule engine compiled by mypyc (`make compiled`,
`services/outcomes/build.py`). For the baseline, a copy of `services/` without the
compiled modules is made in the run's scratch folder, and `bench.replay.store_replay`
runs in a process that imports `services` from that copy. The figure stands beside the
compiled replay of the same run, and the run records whether both found the same alerts.
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
from services.outcomes.build import plain_copy

ROOT = BENCH_DIR.parent

_REPLAY = """
import json, sys
from datetime import datetime
from bench.replay import store_replay
events, seconds, alerts = store_replay(sys.argv[1], datetime.fromisoformat(sys.argv[2]))
print(json.dumps({"events": events, "seconds": seconds, "alerts": alerts,
                  "walk": sys.modules["services.outcomes.rules.walk"].__file__}))
"""


def plain_tree(work_dir: Path) -> Path:
    """A copy of the tree with none of the rule engine compiled; returns its root."""
    tree = work_dir / "plain"
    shutil.rmtree(tree, ignore_errors=True)
    return plain_copy(tree)


def store_replay_plain(tree: Path, database_url: str, until: datetime) -> Replayed:
    """`store_replay` in one process with `services` imported from the plain copy:
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
    if not found["walk"].endswith(".py"):
        raise RuntimeError(f"the rules were not imported as plain Python: {found['walk']}")
    return int(found["events"]), float(found["seconds"]), int(found["alerts"])
