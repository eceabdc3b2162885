"""Certificates for tests of gRPC over TLS: a CA, a server certificate for localhost and
127.0.0.1 and one for a name alone, a client certificate the CA signed, and one another CA
signed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
NAMED = "intake.los.example"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: Issued
    named: Issued  # for NAMED alone, not 127.0.0.1, as a certificate for a DNS name is
    client: Issued
    stranger: Issued  # a client certificate another CA signed


def make_pki(folder: Path) -> Pki:
    ca, ca_signs = _issue(folder, "los-test-ca", None)
    _, other_signs = _issue(folder, "other-ca", None)
    return Pki(
        ca=ca.cert,
        server=_issue(folder, "localhost", ca_signs)[0],
        named=_issue(folder, NAMED, ca_signs, at_loopback=False)[0],
        client=_issue(folder, "coordinator-client", ca_signs)[0],
        stranger=_issue(folder, "stranger", other_signs)[0],
    )


def _issue(
    folder: Path, name: str, issuer: Issuer | None, *, at_loopback: bool = True
) -> tuple[Issued, Issuer]:
    """A certificate for `name` (and 127.0.0.1 unless not `at_loopback`) that `issuer`
    signed; a CA if none."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        names: list[x509.GeneralName] = [x509.DNSName(name)]
        if at_loopback:
            names.append(x509.IPAddress(IPv4Address("127.0.0.1")))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    files = Issued(folder / f"{name}.crt", folder / f"{name}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files, (cert, key)
