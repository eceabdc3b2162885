"""`los up`: the whole platform as separate processes, on given or embedded servers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kernel.embedded import CannotStart, Servers, free_port, servers
from services.kernel.rpc import sync_channel
from services.kernel.settings import Settings, TlsSettings, get_settings

SERVICES = ("intake", "journey", "employer", "outcomes")


@dataclass(frozen=True)
class Platform:
    servers: Servers
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]
    env: dict[str, str]

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"


def service_env(found: Servers, ports: dict[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    env["NATS_URL"] = found.nats_url
    env["DATABASE_URL"] = found.database_url
    for service, port in ports.items():
        env[f"LOS_{service.upper()}_PORT"] = str(port)
    return env


def start_service(service: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{service}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{service}.main"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(
    service: str,
    address: str,
    process: subprocess.Popen[bytes],
    log_dir: Path,
    tls: TlsSettings,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"  # what the last check found: a refused TLS handshake says so
    with sync_channel(address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = (log_dir / f"{service}.log").read_text(errors="replace")[-3000:]
                raise CannotStart(f"{service} exited with {process.returncode}:\n{log}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError as error:
                last = f"{error.code().name}: {error.details()}"
            else:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            time.sleep(0.2)
    raise CannotStart(f"{service} at {address} not healthy after {timeout:.0f} s: {last}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_services(
    found: Servers,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    ports: dict[str, int] | None = None,
) -> Iterator[Platform]:
    """The four service processes on the given servers, on `ports` or free ones; asked
    whether they are ready with this process's TLS settings, which they inherit."""
    ports = ports or {service: free_port() for service in SERVICES}
    env = service_env(found, ports) | (extra_env or {})
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for service in SERVICES:
            processes[service] = start_service(service, env, log_dir)
        tls = get_settings().tls
        for service in SERVICES:
            address = f"127.0.0.1:{ports[service]}"
            wait_healthy(service, address, processes[service], log_dir, tls)
        yield Platform(found, ports, processes, env)
    finally:
        for process in processes.values():
            stop(process)


def chosen_ports(settings: Settings) -> dict[str, int]:
    """The configured port of each service; for a 0, a free one, chosen here so that
    `los up` can print it and wait on it."""
    return {service: getattr(settings, f"{service}_port") or free_port() for service in SERVICES}


@contextlib.contextmanager
def platform(settings: Settings, *, free_ports: bool = False) -> Iterator[Platform]:
    """Servers (embedded unless NATS_URL / DATABASE_URL are set) and the four services, on
    the configured ports (LOS_INTAKE_PORT, ...) or, with `free_ports`, on free ones."""
    configured = chosen_ports(settings)
    with (
        servers(settings.nats_url, settings.database_url, settings.data_dir) as found,
        running_services(
            found, settings.data_dir / "logs", ports=None if free_ports else configured
        ) as running,
    ):
        yield running
