"""``audit-server``: the AuditService on an inference node, with gRPC health and reflection.

Listens on loopback unless told otherwise; TLS (optionally mutual) and a bearer token protect a
server that listens further. SIGTERM/SIGINT: health turns NOT_SERVING, running audits get a grace
period, then whatever is left is stopped and stored as interrupted.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shiftaudit.server.engine.errors import OptionError
from shiftaudit.server.engine.render.cpu import CpuRenderer
from shiftaudit.server.engine.runners import EngineOptions, activations
from shiftaudit.server.flags import add_flags, flags_of, given, with_flags
from shiftaudit.server.service import logs
from shiftaudit.server.service.audits import Audits
from shiftaudit.server.service.auth import Token
from shiftaudit.server.service.catalog import ModelCatalog
from shiftaudit.server.service.datasets import Datasets
from shiftaudit.server.service.gate import Gate
from shiftaudit.server.service.health import watch_store
from shiftaudit.server.service.limits import OPTIONS, ServerLimits
from shiftaudit.server.service.retention import keep_for
from shiftaudit.server.service.servicer import AuditService
from shiftaudit.server.service.state import StateDir, StateDirInUse
from shiftaudit.server.service.store import AuditStore, StoreError
from shiftaudit.v1 import audit_service_pb2 as pb
from shiftaudit.v1 import audit_service_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["AuditService"].full_name
MAX_RECEIVE = 8 << 20  # upload chunks are 1 MiB; anything near this is a mistake or an attack
MAX_SEND = 256 << 20  # a report with per-image records of a large audit
ENGINE_FLAGS = ("allow_engine_host_code", "onnx_tensorrt")  # the server decides the device itself


def default_state_dir() -> Path:
    """Where a server keeps its state unless told: the XDG state home's ``shiftaudit``, which any user can
    make (a system path such as /var/lib needs root; a relative one would follow the working directory)."""
    home = os.environ.get("XDG_STATE_HOME")
    return (Path(home) if home and Path(home).is_absolute() else Path.home() / ".local" / "state") / "shiftaudit"


def parser() -> argparse.ArgumentParser:
    """The server's own flags by hand; its limits' and the engine's from their option dataclasses."""
    ap = argparse.ArgumentParser(prog="audit-server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-root", type=Path, required=True, help="models are named relative to this directory")
    ap.add_argument("--data-root", type=Path, help="images may be named relative to this directory")
    ap.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT (default 127.0.0.1:50051; port 0 picks one)")
    ap.add_argument("--state-dir", type=Path, default=default_state_dir(),
                    help="audit store and uploads (default: shiftaudit under the user's state home, "
                    "$XDG_STATE_HOME or ~/.local/state; made if missing)")
    groups = {OPTIONS: ap, "model": ap}  # listed with the flags above, as argparse's "options"
    add_flags(ap, ServerLimits, groups)
    ap.add_argument("--tls-cert", type=Path)
    ap.add_argument("--tls-key", type=Path)
    ap.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mTLS)")
    ap.add_argument("--token-file", type=Path, help="require 'authorization: Bearer <token>' with this token")
    ap.add_argument("--metrics-listen", metavar="HOST:PORT",
                    help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks one; default: off)")
    add_flags(ap, EngineOptions, groups, only=ENGINE_FLAGS)
    return ap


def _credentials(args) -> grpc.ServerCredentials | None:
    if not (args.tls_cert or args.tls_key or args.tls_client_ca):
        return None
    if not (args.tls_cert and args.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    try:  # gRPC would only say it cannot bind the port
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.tls_cert, args.tls_key)
    except ssl.SSLError as e:
        raise ValueError(f"--tls-cert {args.tls_cert} and --tls-key {args.tls_key} are not a certificate and its "
                         f"private key ({e.reason or e})") from None
    ca = args.tls_client_ca.read_bytes() if args.tls_client_ca else None
    return grpc.ssl_server_credentials([(args.tls_key.read_bytes(), args.tls_cert.read_bytes())],
                                       root_certificates=ca, require_client_auth=ca is not None)


async def serve(args: argparse.Namespace) -> None:
    """Start (or refuse to: a limit out of range, a root or state directory that is not usable...), serve
    until SIGTERM/SIGINT, then stop."""
    limits = ServerLimits(**given(args, ServerLimits))
    catalog = ModelCatalog(args.model_root, limits.max_loaded_models, EngineOptions(**given(args, EngineOptions)))
    if args.data_root and not args.data_root.is_dir():
        raise FileNotFoundError(f"data root {args.data_root} is not a directory")
    token = args.token_file.read_text().strip() if args.token_file else None
    if args.token_file and not token:
        raise ValueError(f"token file {args.token_file} is empty")
    credentials = _credentials(args)
    state = StateDir(args.state_dir)  # before anything in it is read or written
    try:
        store = AuditStore(state.database, disks=(state.uploads,))
        interrupted = store.interrupt_unfinished()
        datasets = Datasets(args.data_root, state.uploads, store, limits)
        datasets.reconcile()
        service = AuditService(catalog, datasets, Audits(store, limits), store, limits)
        await _serve(args, service, token, credentials, interrupted)
    finally:
        state.close()


async def _serve(args: argparse.Namespace, service: AuditService, token: str | None,
                 credentials: grpc.ServerCredentials | None, interrupted: int) -> None:
    """Serve until SIGTERM/SIGINT, with health, reflection and, when asked, retention; then `_stop`."""
    limits = service.limits
    gate = Gate(service.errors, Token(token) if token else None, limits.max_concurrent_rpcs, limits.max_health_watches)
    server = grpc.aio.server(
        interceptors=[gate],
        options=[("grpc.max_receive_message_length", MAX_RECEIVE), ("grpc.max_send_message_length", MAX_SEND),
                 ("grpc.so_reuseport", 0)])
    pb_grpc.add_AuditServiceServicer_to_server(service, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = server.add_secure_port(args.listen, credentials) if credentials else server.add_insecure_port(args.listen)
    except RuntimeError as e:  # grpc's answer to a port in use or an unusable address
        raise OSError(f"cannot listen on {args.listen}: {e}") from None
    await server.start()
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    background = [asyncio.create_task(watch_store(service.store, health_servicer, ("", SERVICE)))]
    if limits.retain_days:
        background.append(asyncio.create_task(keep_for(service.store, limits.retain_days, service.datasets)))
    _announce(args, port, service, token, credentials, interrupted)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await _stop(server, health_servicer, service, background)


def _announce(args: argparse.Namespace, port: int, service: AuditService, token: str | None,
              credentials: grpc.ServerCredentials | None, interrupted: int) -> None:
    """The start line on standard output (the ports actually bound) and its log event; a warning when
    anyone who reaches the port can run audits."""
    host = args.listen.rsplit(":", 1)[0]
    loopback = host in ("127.0.0.1", "localhost", "[::1]", "::1")
    security = ("TLS" + (" with client certificates" if args.tls_client_ca else "")) if credentials else "plaintext"
    metrics = ""
    if args.metrics_listen:
        metrics_host = args.metrics_listen.rpartition(":")[0] or "127.0.0.1"
        metrics = f"; metrics on http://{metrics_host}:{service.metrics.serve(args.metrics_listen)}/metrics"
    # The test harness and operators read this line: the ports actually bound (with --listen ...:0).
    print(f"audit-server listening on {host}:{port} ({security}{', token required' if token else ''}); "
          f"model root {service.catalog.root}" + (f"; {interrupted} audit(s) marked interrupted" if interrupted else "")
          + metrics, flush=True)
    cpu = CpuRenderer()  # built (or loaded) now, not by the first audit; a fallback is worth a warning
    logs.event("listening", listen=f"{host}:{port}", security=security, token=bool(token),
               model_root=str(service.catalog.root), interrupted=interrupted,
               metrics=metrics.removeprefix("; metrics on ") or None, cpu_renderer=cpu.name)
    if cpu.host is None:
        logs.event("cpu_renderer_fallback", level=logging.WARNING, message=f"audits rendered on the CPU use {cpu.name}: "
                   "slower; install a C++ compiler (or use the container image, which ships the build)")
    if not loopback and not (credentials or token):
        logs.event("insecure_listen", level=logging.WARNING, listen=args.listen,
                   message="listening beyond loopback without TLS or token; anyone who can reach this port can "
                           "run audits")


async def _stop(server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, service: AuditService,
                background: list[asyncio.Task]) -> None:
    """Health turns NOT_SERVING and new calls are refused; audits and uploads get the grace period; what
    is left is stopped and stored as interrupted, and its work awaited before the models close."""
    grace = service.limits.grace
    logs.event("shutting_down", grace_seconds=grace)
    service.audits.shutting_down = True  # audits cut short from now on are stored as interrupted
    for task in background:
        task.cancel()
    await health_servicer.enter_graceful_shutdown()
    stopped = asyncio.ensure_future(server.stop(grace))  # refuses new RPCs, gives running ones the grace
    await service.audits.idle(grace, lambda: service.datasets.uploads)  # ...which only audits and uploads need
    await server.stop(0)  # cancels what is left
    await stopped
    service.audits.stop_all()
    await service.audits.drain(timeout=30)
    service.catalog.close()
    service.store.close()
    logs.event("stopped")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    try:
        asyncio.run(serve(args))
    except OptionError as e:  # the operator reads the flags typed, not the fields
        return _refused(with_flags(e.marked, flags_of(ServerLimits, EngineOptions)))
    except (OSError, ValueError, StoreError, StateDirInUse) as e:
        return _refused(str(e))
    finally:
        activations.close()  # before the log: it writes to the relay's pipe too
        logs.close()
    return 0


def _refused(why: str) -> int:
    """A start refused: one log line that says why; exit status 2."""
    logs.event("start_refused", level=logging.ERROR, message=f"audit-server: error: {why}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
