"""An audit wherever its `Source` says: in this process, on a Ray cluster, on one server, or fanned out over
several; each way returns the same report, assembled where the audit ran (a server's shard is assembled
again here with what only the client knows: the listing it is a shard of)."""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.files import image_files
from shiftaudit.server.engine.labels import few, unknown_names
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.report import Report, assemble
from shiftaudit.server.engine.runners import EngineOptions

from .connection import RemoteError, read_text
from .interrupt import Interruption
from .source import Source

if TYPE_CHECKING:
    from .remote import AuditClient


@dataclass(frozen=True)
class AuditRequest:
    """One audit, as a command line asks for it."""

    model: Path  # a local file; with a server, its path under the server's model root or sha256:DIGEST
    source: Source
    options: AuditOptions = AuditOptions()
    preprocessing: Mapping[str, Any] | None = None  # overrides of the model's (`Preprocessing` fields)
    labels: Path | None = None
    engine: EngineOptions = EngineOptions()
    resume: dict | None = None  # an interrupted run's partial report, to continue (in process or on one server)


def run_audit(request: AuditRequest, progress: Callable[[Progress], None] | None = None,
              stop: Interruption | None = None) -> dict:
    """The report of ``request``, wherever its source runs it. ``stop`` (in process, on one server) ends
    the audit with a partial report when it is set; a sharded or Ray audit is not resumable."""
    source = request.source
    source.check()
    if request.resume is not None and not source.resumable:
        raise InputError("--resume continues an audit in this process or on one server (--ray and several --server "
                         "keep no partial report)")
    if source.ray:
        from .api import audit_on_ray

        return audit_on_ray(request.model, source.images, request.options, ray=source.ray,
                            preprocessing=request.preprocessing, labels=request.labels, engine_options=request.engine,
                            progress=progress)
    if not source.servers:
        from .api import audit

        return audit(request.model, source.images, request.options, preprocessing=request.preprocessing,
                     labels=request.labels, engine_options=request.engine, shard=source.shard, progress=progress,
                     should_stop=stop.is_set if stop else None, resume=request.resume)
    labels = read_text(request.labels, "labels") if request.labels else ""
    if len(source.servers) > 1:
        from .fanout import run_sharded  # gRPC: only for audits on servers

        return run_sharded(source.servers, source.connection, request.model.as_posix(), source.images,
                           request.options, preprocessing=request.preprocessing, labels_csv=labels, progress=progress)
    return _on_server(request, labels, progress, stop)


def _on_server(request: AuditRequest, labels: str, progress: Callable[[Progress], None] | None,
               stop: Interruption | None) -> dict:
    """One server's audit of the images (uploaded: all, or this client's shard of them) or of a path under
    its data root; its id is printed as soon as the server accepts it, and ``stop`` cancels it there (the
    server answers with the partial report)."""
    from .remote import DataPath, Upload

    source = request.source
    files = image_files(source.images) if source.images else None
    selected = source.shard.select(files) if source.shard else None
    if source.shard and not selected:
        raise InputError(f"shard {source.shard.index}/{source.shard.count} holds none of the {len(files)} images: a "
                         "server cannot audit nothing; write this empty part in process (without --server)")
    images = DataPath(source.data_path) if source.data_path else Upload(source.images, selected)
    with source.connection.connect(source.servers[0]) as client:
        def accepted(audit_id: str, position: int) -> None:
            print(f"audit-client: audit {audit_id} on {client.target}" + (f", queued at {position}" if position else "")
                  + f" (audit-client get {audit_id} --server {client.target} fetches it again)", file=sys.stderr,
                  flush=True)
            if stop:
                stop.when_stopped(lambda: _cancel(client, audit_id))

        report = client.run(request.model.as_posix(), request.options, images=images,
                            preprocessing=request.preprocessing, labels_csv=labels, timeout=source.connection.timeout,
                            progress=progress, on_accepted=accepted, resume=request.resume)
    report = placed(report, client.target)
    if not source.shard:
        return report
    part = Report.from_json(report)  # the server saw this shard's names only: a label of another shard's image
    names = [name for name, _ in files]  # is not unknown
    return assemble(part.made, part.result(), shard={**source.shard.to_json(), "images_listed": len(files)},
                    labels=part.labels and {**part.labels, "unknown_names": few(unknown_names(labels, names))},
                    audit=part.audit).to_json()


def placed(report: dict, server: str) -> dict:
    """A server's report as the CLI keeps it: beside the audit's id, the server as the user named it (what
    ``audit-client get ID --server S`` needs to fetch it again)."""
    return {**report, "audit": {**report.get("audit", {}), "server": server}} if "audit" in report else report


def _cancel(client: AuditClient, audit_id: str) -> None:
    """CancelAudit, on an interruption: the audit's stream then ends with its partial report. An audit
    that has just finished cannot be cancelled: its stream ends with the whole report."""
    try:
        client.cancel(audit_id)
    except RemoteError:
        pass
