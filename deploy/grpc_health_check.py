"""Container health check: exit 0 when a Los gRPC server reports SERVING.

Asks the standard gRPC health service (grpc.health.v1), which every Los server runs
(services/kernel/rpc.py). Used by deploy/compose.yaml; Kubernetes uses its built-in
`grpc:` probe instead, which speaks no TLS: with TLS on, use this as an `exec` probe.
Over TLS when the container's settings name a CA to trust (`LOS_TLS__CA`; with mutual
TLS also `LOS_TLS__CLIENT_CERT` and `LOS_TLS__CLIENT_KEY`), as the `los` commands do.

    python grpc_health_check.py 127.0.0.1:50061 [service-name]
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kernel.rpc import sync_channel
from services.kernel.settings import Settings


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else "127.0.0.1:50061"
    service = argv[2] if len(argv) > 2 else ""
    with sync_channel(target, Settings().tls) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=3
            )
        except grpc.RpcError as error:
            print(f"{target}: {error.code().name}", file=sys.stderr)
            return 1
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
