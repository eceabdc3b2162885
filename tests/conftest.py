"""Real servers for the integration and e2e tests.

NATS_URL / DATABASE_URL name servers to use; without them the tests start the embedded
ones, exactly as `los up` does. A test that needs servers fails when they cannot be had;
it is never skipped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.kernel.embedded import Servers, servers
from tests.support import drop_what_the_run_made


@pytest.fixture(scope="session")
def real_servers() -> Iterator[Servers]:
    # Not under pytest's temporary folders: another pytest run on the same machine may
    # remove those (it keeps the last three) while these servers still use them.
    with tempfile.TemporaryDirectory(prefix="los-test-servers-") as data_dir:
        nats_url, database_url = os.environ.get("NATS_URL"), os.environ.get("DATABASE_URL")
        with servers(nats_url, database_url, Path(data_dir)) as found:
            yield found


@pytest.fixture(scope="session", autouse=True)
def _drop_what_the_run_made() -> Iterator[None]:
    """After the run, drop the databases and streams its tests made on configured
    servers (some e2e tests make theirs without `real_servers`)."""
    yield
    drop_what_the_run_made(os.environ.get("DATABASE_URL"), os.environ.get("NATS_URL"))
