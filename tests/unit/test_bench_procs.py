"""`bench.procs.server_pids`: the embedded servers found by the folder of their data."""

import subprocess
import sys
from pathlib import Path

from bench.procs import server_pids


def test_a_server_not_found_is_left_out_rather_than_counted_as_idle(tmp_path: Path) -> None:
    # A process whose command line reads like an embedded nats-server's under tmp_path.
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "nats-server", str(tmp_path)]
    )
    try:
        assert server_pids(tmp_path) == {"nats-server": [stand_in.pid]}
    finally:
        stand_in.kill()
        stand_in.wait()
    assert server_pids(tmp_path) == {}
