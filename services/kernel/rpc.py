"""The gRPC server every service runs: its own servicers plus health checking and reflection;
and the channels the `los` commands call them on. Both speak TLS when the settings give
certificates (`TlsSettings`), plaintext otherwise."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.kernel.settings import TlsSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """A servicer, the generated function that registers it, and its full proto name."""

    servicer: Any
    register: Callable[[Any, grpc.aio.Server], None]
    name: str


async def start_server(
    services: Sequence[Service], host: str, port: int, tls: TlsSettings | None = None
) -> tuple[grpc.aio.Server, int]:
    """Start serving on host:port (0 for a free port), over TLS if `tls` gives a
    certificate; returns the server and its port."""
    server = grpc.aio.server()
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for service in services:
        service.register(service.servicer, server)
    names = [s.name for s in services]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    if tls is not None and tls.cert is not None and tls.key is not None:
        files = CertificateFiles(tls.cert, tls.key, tls.client_ca)  # ValueError if no pair
        credentials = grpc.dynamic_ssl_server_credentials(
            files.configuration(),
            files.renewed,  # type: ignore[arg-type]  # None keeps it as is (gRPC's docs)
            require_client_authentication=tls.client_ca is not None,
        )
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    for name in ["", *names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound


class CertificateFiles:
    """The server's certificate, key and client CA as files, read again when one of them
    changes (cert-manager and Kubernetes renew a Secret's files in place): each new
    connection is made with what the files hold then, and the connections already open
    keep theirs. A change that cannot be read, or whose key is not the certificate's (a
    renewal half done), is passed over until the files change again."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._paths = [path for path in (cert, key, client_ca) if path is not None]
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._read_at = self._tried_at = self._stamps()

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        """What the files hold; ValueError if the key is not the certificate's."""
        cert, key = self._cert.read_bytes(), self._key.read_bytes()
        client_ca = _read(self._client_ca)
        if _public(x509.load_pem_x509_certificate(cert).public_key()) != _public(
            load_pem_private_key(key, None).public_key()
        ):
            raise ValueError(f"{self._key} is not the key of {self._cert}")
        if client_ca is not None:
            x509.load_pem_x509_certificates(client_ca)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=client_ca)

    def renewed(self) -> grpc.ServerCertificateConfiguration | None:
        """What the files hold, if they changed since last read; None to keep it as is.
        (gRPC asks at the start of every handshake.)"""
        try:
            stamps = self._stamps()
            if stamps in (self._read_at, self._tried_at):
                return None
            self._tried_at = stamps
            renewed = self.configuration()
        except (OSError, ValueError) as error:
            log.warning("TLS files changed but cannot be used (yet): %s", error)
            return None
        self._read_at = stamps
        log.info("TLS certificate read again from %s", self._cert)
        return renewed

    def _stamps(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in map(os.stat, self._paths))


def _public(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def aio_channel(address: str, tls: TlsSettings) -> grpc.aio.Channel:
    """An asyncio channel to a Los server, over TLS if `tls` names a CA to trust."""
    credentials = _channel_credentials(tls)
    if credentials is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, credentials, _options(tls))


def sync_channel(address: str, tls: TlsSettings) -> grpc.Channel:
    """`aio_channel` for blocking code."""
    credentials = _channel_credentials(tls)
    if credentials is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, credentials, _options(tls))


def _options(tls: TlsSettings) -> list[tuple[str, str]]:
    """The name to check the server's certificate for, if not the address's host."""
    if tls.server_name is None:
        return []
    return [("grpc.ssl_target_name_override", tls.server_name)]


def _channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials | None:
    if tls.ca is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        private_key=_read(tls.client_key),
        certificate_chain=_read(tls.client_cert),
    )


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()
