"""What the e2e tests share."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """LOS_DATA_DIR for one test, outside pytest's tmp folder: when root runs the tests,
    pgserver runs PostgreSQL as the user `pgserver`, which must traverse the path, and
    every pytest session that starts meanwhile makes /tmp/pytest-of-root private again
    (then initdb fails). Short, too, for the Unix socket of PostgreSQL in it. The service
    logs are kept in tmp_path."""
    folder = Path(tempfile.mkdtemp(prefix="los-e2e-"))
    try:
        yield folder
    finally:
        if (folder / "logs").is_dir():
            shutil.copytree(folder / "logs", tmp_path / "los-logs", dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
