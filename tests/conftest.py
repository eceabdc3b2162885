"""Real servers for the integration and e2e tests.

NATS_URL / DATABASE_URL name servers to use; without them the tests start the embedded
ones, exactly as `los up` does. A test that needs servers fails when they cannot be had;
it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.kernel.embedded import Servers, servers


@pytest.fixture(scope="session")
def real_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    data_dir: Path = tmp_path_factory.mktemp("servers")
    with servers(os.environ.get("NATS_URL"), os.environ.get("DATABASE_URL"), data_dir) as found:
        yield found
