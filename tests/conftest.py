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
from tests.support import drop_fresh_databases


@pytest.fixture(scope="session")
def real_servers() -> Iterator[Servers]:
    # Not under pytest's temporary folders: another pytest run on the same machine may
    # remove those (it keeps the last three) while these servers still use them.
    with tempfile.TemporaryDirectory(prefix="los-test-servers-") as data_dir:
        nats_url, database_url = os.environ.get("NATS_URL"), os.environ.get("DATABASE_URL")
        with servers(nats_url, database_url, Path(data_dir)) as found:
            try:
                yield found
            finally:
                if database_url is not None:  # embedded servers go with their folder
                    drop_fresh_databases(found.database_url)
