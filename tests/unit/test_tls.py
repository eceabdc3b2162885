"""gRPC over TLS (`TlsSettings`): a server with a certificate speaks only TLS, one with a
client CA takes only clients with that CA's certificates, and the `los` side's channels
and the container health check connect as the settings say."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from services.kernel.rpc import aio_channel, start_server
from services.kernel.settings import Settings, TlsSettings
from tests.pki import NAMED, Pki, make_pki

HEALTH_CHECK = Path(__file__).parents[2] / "deploy" / "grpc_health_check.py"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _check(address: str, tls: TlsSettings) -> str:
    """The health service's answer, or the gRPC status it failed with."""
    async with aio_channel(address, tls) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[str]:
    tls = TlsSettings(cert=pki.server.cert, key=pki.server.key)
    server, port = await start_server([], "127.0.0.1", 0, tls)
    yield f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.fixture
async def mutual_tls_server(pki: Pki) -> AsyncIterator[str]:
    tls = TlsSettings(cert=pki.server.cert, key=pki.server.key, client_ca=pki.ca)
    server, port = await start_server([], "127.0.0.1", 0, tls)
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_a_renewed_certificate_is_used_for_new_connections(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "renewed").mkdir()
    renewed = make_pki(tmp_path / "renewed")  # another CA's, as after a CA rotation
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    server, port = await start_server([], "127.0.0.1", 0, TlsSettings(cert=cert, key=key))
    address = f"127.0.0.1:{port}"
    try:
        before = [await _check(address, TlsSettings(ca=ca)) for ca in (pki.ca, renewed.ca)]
        # Renewed in place, as Kubernetes does a Secret's files: a new pair, swapped in
        # one after the other. Between the two, the key is not the certificate's: the
        # server goes on with the old pair.
        (tmp_path / "new.crt").write_bytes(renewed.server.cert.read_bytes())
        (tmp_path / "new.key").write_bytes(renewed.server.key.read_bytes())
        os.replace(tmp_path / "new.key", key)
        between = [await _check(address, TlsSettings(ca=ca)) for ca in (pki.ca, renewed.ca)]
        os.replace(tmp_path / "new.crt", cert)
        after = [await _check(address, TlsSettings(ca=ca)) for ca in (pki.ca, renewed.ca)]
    finally:
        await server.stop(None)

    assert before == ["SERVING", "UNAVAILABLE"]
    assert between == before
    assert after == ["UNAVAILABLE", "SERVING"]


async def test_a_server_with_a_certificate_speaks_only_tls(tls_server: str, pki: Pki) -> None:
    assert await _check(tls_server, TlsSettings(ca=pki.ca)) == "SERVING"
    assert await _check(tls_server, TlsSettings()) == "UNAVAILABLE"  # plaintext
    # A client that trusts another CA does not trust this server.
    assert await _check(tls_server, TlsSettings(ca=pki.stranger.cert)) == "UNAVAILABLE"


async def test_with_a_client_ca_the_server_takes_only_clients_that_ca_signed(
    mutual_tls_server: str, pki: Pki
) -> None:
    trusting = TlsSettings(ca=pki.ca)
    known = trusting.model_copy(
        update={"client_cert": pki.client.cert, "client_key": pki.client.key}
    )
    stranger = trusting.model_copy(
        update={"client_cert": pki.stranger.cert, "client_key": pki.stranger.key}
    )
    assert await _check(mutual_tls_server, known) == "SERVING"
    assert await _check(mutual_tls_server, trusting) == "UNAVAILABLE"  # no certificate
    assert await _check(mutual_tls_server, stranger) == "UNAVAILABLE"


@pytest.fixture
async def named_server(pki: Pki) -> AsyncIterator[str]:
    """A server whose certificate names it by a DNS name alone, reached at 127.0.0.1."""
    server, port = await start_server([], "127.0.0.1", 0, TlsSettings(**asdict(pki.named)))
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_a_client_checks_the_certificate_for_the_server_name_it_is_given(
    named_server: str, pki: Pki
) -> None:
    assert await _check(named_server, TlsSettings(ca=pki.ca)) == "UNAVAILABLE"
    assert await _check(named_server, TlsSettings(ca=pki.ca, server_name=NAMED)) == "SERVING"
    assert await _check(named_server, TlsSettings(ca=pki.ca, server_name="other")) == (
        "UNAVAILABLE"
    )


def _health_check(address: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTH_CHECK), address],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(HEALTH_CHECK.parents[1]), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_container_health_check_speaks_tls_as_the_settings_say(
    mutual_tls_server: str, named_server: str, pki: Pki
) -> None:
    mutual = {
        "LOS_TLS__CA": str(pki.ca),
        "LOS_TLS__CLIENT_CERT": str(pki.client.cert),
        "LOS_TLS__CLIENT_KEY": str(pki.client.key),
    }
    passed = await asyncio.to_thread(_health_check, mutual_tls_server, mutual)
    assert passed.returncode == 0, passed.stderr
    plaintext = await asyncio.to_thread(_health_check, mutual_tls_server, {})
    assert (plaintext.returncode, plaintext.stderr.strip()) == (
        1,
        f"{mutual_tls_server}: UNAVAILABLE",
    )
    # In a container it asks 127.0.0.1, which a certificate for a DNS name does not name.
    named = {"LOS_TLS__CA": str(pki.ca), "LOS_TLS__SERVER_NAME": NAMED}
    passed = await asyncio.to_thread(_health_check, named_server, named)
    assert passed.returncode == 0, passed.stderr


def test_tls_settings_are_read_from_the_environment(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOS_TLS__CERT", str(pki.server.cert))
    monkeypatch.setenv("LOS_TLS__KEY", str(pki.server.key))
    monkeypatch.setenv("LOS_TLS__CLIENT_CA", str(pki.ca))
    tls = Settings().tls
    assert (tls.cert, tls.key, tls.client_ca, tls.ca) == (
        pki.server.cert,
        pki.server.key,
        pki.ca,
        None,
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"cert": "s.crt"}, "tls.cert and tls.key go together"),
        ({"key": "s.key"}, "tls.cert and tls.key go together"),
        ({"ca": "ca.crt", "client_key": "c.key"}, "tls.client_cert and tls.client_key go"),
        ({"client_ca": "ca.crt"}, "tls.client_ca needs tls.cert and tls.key"),
        ({"client_cert": "c.crt", "client_key": "c.key"}, "tls.client_cert needs tls.ca"),
        ({"server_name": "intake"}, "tls.server_name needs tls.ca"),
    ],
)
def test_tls_settings_that_cannot_work_are_refused(given: dict[str, str], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        TlsSettings.model_validate(given)
