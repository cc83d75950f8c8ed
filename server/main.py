"""``audit-server``: the AuditService on an inference node, with gRPC health and reflection.

Listens on loopback unless told otherwise; TLS (optionally mutual) and a bearer token protect a
server that listens further. SIGTERM/SIGINT: health turns NOT_SERVING, running audits get a grace
period, then whatever is left is stopped and stored as interrupted.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shiftaudit.server.engine.budget import MemoryBudget
from shiftaudit.server.engine.runners import EngineOptions
from shiftaudit.server.service import logs
from shiftaudit.server.service.auth import TokenAuth
from shiftaudit.server.service.catalog import ModelCatalog
from shiftaudit.server.service.datasets import Datasets, UploadLimits
from shiftaudit.server.service.health import watch_store
from shiftaudit.server.service.retention import keep_for
from shiftaudit.server.service.servicer import AuditService, Limits
from shiftaudit.server.service.state import StateDir, StateDirInUse
from shiftaudit.server.service.store import AuditStore, StoreError
from shiftaudit.v1 import audit_service_pb2 as pb
from shiftaudit.v1 import audit_service_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["AuditService"].full_name
MAX_RECEIVE = 8 << 20  # upload chunks are 1 MiB; anything near this is a mistake or an attack
MAX_SEND = 256 << 20  # a report with per-image records of a large audit


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="audit-server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-root", type=Path, required=True, help="models are named relative to this directory")
    ap.add_argument("--data-root", type=Path, help="images may be named relative to this directory")
    ap.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT (default 127.0.0.1:50051; port 0 picks one)")
    ap.add_argument("--state-dir", type=Path, default=Path("shiftaudit-state"), help="audit store and uploads")
    ap.add_argument("--max-concurrent-audits", type=int, default=1,
                    help="audits that run at once, each on a thread of its own (default %(default)s)")
    ap.add_argument("--max-queued-audits", type=int, default=8,
                    help="audits that may wait for one to end; more are refused at once (default %(default)s)")
    g = ap.add_argument_group("what the node keeps (an upload over a limit is refused with RESOURCE_EXHAUSTED)")
    g.add_argument("--max-upload-bytes", type=int, default=UploadLimits.max_bytes,
                   help="bytes of one upload (default %(default)s)")
    g.add_argument("--max-upload-files", type=int, default=UploadLimits.max_files,
                   help="files of one upload (default %(default)s)")
    g.add_argument("--max-state-bytes", type=int, default=UploadLimits.max_state_bytes,
                   help="bytes of reports and uploads the node keeps; an upload that would go over is refused "
                        "(default %(default)s)")
    g.add_argument("--retain-days", type=float, default=Limits.retain_days,
                   help="finished audits and datasets unused for this long are removed; 0 keeps them until "
                        "DeleteAudit/DeleteDataset (default %(default)s)")
    g = ap.add_argument_group("memory (a request over a limit is refused with RESOURCE_EXHAUSTED, naming it)")
    g.add_argument("--max-batch", type=int, default=Limits.budget.max_batch,
                   help="frames per engine call an audit may ask for: the engine's activations grow with it "
                        "(default %(default)s)")
    g.add_argument("--max-audit-memory-mb", type=int, default=Limits.budget.audit_bytes >> 20,
                   help="what one audit's frames may hold: its batches in flight (four batches in the engine's "
                        "dtype, plus float32 canvases of one), and as much again for decoded images waiting for "
                        "their batch (default %(default)s)")
    g.add_argument("--max-loaded-models", type=int, default=4,
                   help="models kept open; opening another closes the least recently used one no audit holds "
                        "(default %(default)s)")
    ap.add_argument("--tls-cert", type=Path)
    ap.add_argument("--tls-key", type=Path)
    ap.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mTLS)")
    ap.add_argument("--token-file", type=Path, help="require 'authorization: Bearer <token>' with this token")
    ap.add_argument("--max-concurrent-rpcs", type=int,
                    help="calls of any kind in progress at once, streams included; more are refused with "
                         "RESOURCE_EXHAUSTED by gRPC itself (default: no limit)")
    ap.add_argument("--metrics-listen", metavar="HOST:PORT",
                    help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks one; default: off)")
    ap.add_argument("--grace", type=float, default=30.0, help="seconds running audits get at shutdown")
    ap.add_argument("--allow-engine-host-code", action="store_true",
                    help="let TensorRT engines that carry host code load (deserialising runs it: only for engines "
                         "you trust, e.g. version-compatible ones)")
    ap.add_argument("--onnx-tensorrt", action="store_true",
                    help="run ONNX models through ONNX Runtime's TensorRT execution provider (onnxruntime-gpu with "
                         "TensorRT; an error if it does not load)")
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


async def serve(args) -> None:
    if args.max_batch < 1 or args.max_audit_memory_mb < 1:
        raise ValueError("--max-batch and --max-audit-memory-mb must be >= 1")
    limits = Limits(args.max_concurrent_audits, args.max_queued_audits,
                    MemoryBudget(args.max_audit_memory_mb << 20, args.max_batch), args.retain_days)
    uploads = UploadLimits(args.max_upload_bytes, args.max_upload_files, args.max_state_bytes)
    if limits.max_concurrent_audits < 1 or limits.max_queued_audits < 0:
        raise ValueError("--max-concurrent-audits must be >= 1 and --max-queued-audits >= 0")
    if min(uploads.max_bytes, uploads.max_files, uploads.max_state_bytes) < 1:
        raise ValueError("--max-upload-bytes, --max-upload-files and --max-state-bytes must be >= 1")
    if not args.grace >= 0 or not limits.retain_days >= 0:
        raise ValueError("--grace and --retain-days must be >= 0")
    if args.max_concurrent_rpcs is not None and args.max_concurrent_rpcs < 1:
        raise ValueError("--max-concurrent-rpcs must be >= 1")
    catalog = ModelCatalog(args.model_root, EngineOptions(allow_engine_host_code=args.allow_engine_host_code,
                                                          onnx_tensorrt=args.onnx_tensorrt), args.max_loaded_models)
    if args.data_root and not args.data_root.is_dir():
        raise FileNotFoundError(f"data root {args.data_root} is not a directory")
    token = args.token_file.read_text().strip() if args.token_file else None
    if args.token_file and not token:
        raise ValueError(f"token file {args.token_file} is empty")
    credentials = _credentials(args)
    state = StateDir(args.state_dir)  # before anything in it is read or written
    try:
        store = AuditStore(state.database)
        interrupted = store.interrupt_unfinished()
        datasets = Datasets(args.data_root, state.uploads, uploads)
        _account_for_datasets(store, datasets)
        await _serve(args, limits, catalog, store, datasets, token, credentials, interrupted)
    finally:
        state.close()


def _account_for_datasets(store: AuditStore, datasets: Datasets) -> None:
    """The store's datasets are the ones on disk: rows for datasets an earlier version kept without one
    (they count against the limits, and retention sees them), no rows for datasets gone from disk."""
    disk = datasets.on_disk()
    rows = {row.dataset_id for row in store.datasets()}
    for dataset_id in rows - disk.keys():
        store.remove_dataset(dataset_id)
    for dataset_id in disk.keys() - rows:
        files, size, modified = disk[dataset_id]
        store.add_dataset(dataset_id, files, size, created_at=modified)
    datasets.kept = sum(row.bytes for row in store.datasets())


async def _serve(args, limits: Limits, catalog: ModelCatalog, store: AuditStore, datasets: Datasets,
                 token: str | None, credentials: grpc.ServerCredentials | None, interrupted: int) -> None:

    server = grpc.aio.server(
        interceptors=[TokenAuth(token)] if token else [], maximum_concurrent_rpcs=args.max_concurrent_rpcs,
        options=[("grpc.max_receive_message_length", MAX_RECEIVE), ("grpc.max_send_message_length", MAX_SEND),
                 ("grpc.so_reuseport", 0)])
    service = AuditService(catalog, datasets, store, limits)
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
    background = [asyncio.create_task(watch_store(store, health_servicer, ("", SERVICE)))]
    if limits.retain_days:
        background.append(asyncio.create_task(keep_for(store, limits.retain_days, service.delete_dataset)))
    host = args.listen.rsplit(":", 1)[0]
    loopback = host in ("127.0.0.1", "localhost", "[::1]", "::1")
    security = ("TLS" + (" with client certificates" if args.tls_client_ca else "")) if credentials else "plaintext"
    metrics = ""
    if args.metrics_listen:
        metrics_host = args.metrics_listen.rpartition(":")[0] or "127.0.0.1"
        metrics = f"; metrics on http://{metrics_host}:{service.metrics.serve(args.metrics_listen)}/metrics"
    # The test harness and operators read this line: the ports actually bound (with --listen ...:0).
    print(f"audit-server listening on {host}:{port} ({security}{', token required' if token else ''}); "
          f"model root {catalog.root}" + (f"; {interrupted} audit(s) marked interrupted" if interrupted else "")
          + metrics, flush=True)
    logs.event("listening", listen=f"{host}:{port}", security=security, token=bool(token),
               model_root=str(catalog.root), interrupted=interrupted, metrics=metrics.removeprefix("; metrics on ") or None)
    if not loopback and not (credentials or token):
        logs.event("insecure_listen", level=logging.WARNING, listen=args.listen,
                   message="listening beyond loopback without TLS or token; anyone who can reach this port can "
                           "run audits")

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    logs.event("shutting_down", grace_seconds=args.grace)
    service.shutting_down = True  # audits cut short from now on are stored as interrupted
    for task in background:
        task.cancel()
    await health_servicer.enter_graceful_shutdown()
    stopped = asyncio.ensure_future(server.stop(args.grace))  # refuses new RPCs, gives running ones the grace
    await service.idle(args.grace)  # ...which only audits and uploads need: an open Health.Watch does not
    await server.stop(0)  # cancels what is left
    await stopped
    service.stop_all()
    await service.drain(timeout=30)
    catalog.close()
    store.close()
    logs.event("stopped")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    try:
        asyncio.run(serve(args))
    except (OSError, ValueError, StoreError, StateDirInUse) as e:
        logs.event("start_refused", level=logging.ERROR, message=f"audit-server: error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
