"""`los up` with its gRPC over mutual TLS, as an operator runs it (deploy/README.md, Known
gaps, item 4): the services speak only TLS, and let in only clients with a certificate
of the CA they were given."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.kernel.embedded import Servers
from tests.e2e.operator import (
    SERVICE_LINE,
    assert_stops_cleanly,
    generate,
    import_file,
    los,
    los_up,
    operator_env,
    succeeded,
)
from tests.pki import make_pki
from tests.support import isolated_env


@pytest.mark.servers
def test_los_up_serves_over_mutual_tls(
    real_servers: Servers, data_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    # The services' certificate and the CA their clients must show certificates of; the
    # `los` commands' CA to trust and their own certificate.
    tls = {
        "LOS_TLS__CERT": str(pki.server.cert),
        "LOS_TLS__KEY": str(pki.server.key),
        "LOS_TLS__CLIENT_CA": str(pki.ca),
        "LOS_TLS__CA": str(pki.ca),
        "LOS_TLS__CLIENT_CERT": str(pki.client.cert),
        "LOS_TLS__CLIENT_KEY": str(pki.client.key),
    }
    env = operator_env(data_dir, isolated_env(real_servers)) | tls
    with los_up(env, tmp_path) as up:
        lines = generate(tmp_path / "cohort.jsonl", 60, 3, env, tmp_path)
        up.wait_ready()  # its health checks go over TLS too
        schemes = {m["scheme"] for line in up.lines() if (m := SERVICE_LINE.match(line))}
        assert schemes == {"grpcs"}, "`los up` does not say its services speak TLS only"
        summary, _ = import_file(tmp_path / "cohort.jsonl", tmp_path / "rejects.jsonl", up)
        assert (summary.lines, summary.accepted, summary.rejected) == (len(lines), len(lines), 0)
        token = succeeded(
            los("token", "--coordinator", "c-001", env=env, cwd=tmp_path, timeout=60)
        ).stdout.strip()

        def caseload(with_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return los(
                "caseload", "--token", token, "--outcomes", up.addresses["outcomes"],
                env=with_env, cwd=tmp_path, timeout=60,
            )  # fmt: skip

        assert "The caseload of the token's coordinator" in succeeded(caseload(env)).stdout
        # Without a certificate of the CA, or in plaintext, a client is not let in.
        no_certificate = {k: v for k, v in env.items() if "__CLIENT_" not in k}
        plaintext = {k: v for k, v in env.items() if k not in tls}
        for refused in (caseload(no_certificate), caseload(plaintext)):
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert refused.stderr.startswith("UNAVAILABLE"), refused.stderr
        assert_stops_cleanly(up)
