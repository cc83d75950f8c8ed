"""``python -m shiftaudit.server.probe``: exit 0 when an audit-server answers SERVING on the standard
gRPC health service, 1 otherwise (the container's HEALTHCHECK; health needs no token)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shiftaudit.server.probe", description=__doc__)
    ap.add_argument("--target", default="127.0.0.1:50051")
    ap.add_argument("--tls-ca", type=Path, help="CA certificate of a TLS listener")
    ap.add_argument("--timeout", type=float, default=4.0)
    args = ap.parse_args(argv)
    channel = (grpc.secure_channel(args.target, grpc.ssl_channel_credentials(args.tls_ca.read_bytes()))
               if args.tls_ca else grpc.insecure_channel(args.target))
    with channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout)
        except grpc.RpcError as e:
            print(f"{args.target}: {e.code().name}", file=sys.stderr)
            return 1
    serving = status.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{args.target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)}")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
