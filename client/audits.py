"""An audit wherever its `Source` says: in this process, on a Ray cluster, on one server, or fanned out over
several; each way returns the same report, assembled where the audit ran (a server's shard is assembled
again here with what only the client knows: the listing it is a shard of)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.files import image_files
from shiftaudit.server.engine.labels import few, unknown_names
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.report import Report, assemble
from shiftaudit.server.engine.runners import EngineOptions

from .fanout import run_sharded
from .remote import DataPath, Upload, read_text
from .source import Source


@dataclass(frozen=True)
class AuditRequest:
    """One audit, as a command line asks for it."""

    model: Path  # a local file; with a server, its path under the server's model root or sha256:DIGEST
    source: Source
    options: AuditOptions = AuditOptions()
    preprocessing: Mapping[str, Any] | None = None  # overrides of the model's (`Preprocessing` fields)
    labels: Path | None = None
    engine: EngineOptions = EngineOptions()


def run_audit(request: AuditRequest, progress: Callable[[Progress], None] | None = None) -> dict:
    """The report of ``request``, wherever its source runs it."""
    source = request.source
    source.check()
    if source.ray:
        from .api import audit_on_ray

        return audit_on_ray(request.model, source.images, request.options, ray=source.ray,
                            preprocessing=request.preprocessing, labels=request.labels, engine_options=request.engine,
                            progress=progress)
    if not source.servers:
        from .api import audit

        return audit(request.model, source.images, request.options, preprocessing=request.preprocessing,
                     labels=request.labels, engine_options=request.engine, shard=source.shard, progress=progress)
    labels = read_text(request.labels, "labels") if request.labels else ""
    if len(source.servers) > 1:
        return run_sharded(source.servers, source.connection, request.model.as_posix(), source.images,
                           request.options, preprocessing=request.preprocessing, labels_csv=labels, progress=progress)
    return _on_server(request, labels, progress)


def _on_server(request: AuditRequest, labels: str, progress: Callable[[Progress], None] | None) -> dict:
    """One server's audit of the images (uploaded: all, or this client's shard of them) or of a path under
    its data root."""
    source = request.source
    files = image_files(source.images) if source.images else None
    selected = source.shard.select(files) if source.shard else None
    if source.shard and not selected:
        raise InputError(f"shard {source.shard.index}/{source.shard.count} holds none of the {len(files)} images: a "
                         "server cannot audit nothing; write this empty part in process (without --server)")
    images = DataPath(source.data_path) if source.data_path else Upload(source.images, selected)
    with source.connection.connect(source.servers[0]) as client:
        report = client.run(request.model.as_posix(), request.options, images=images,
                            preprocessing=request.preprocessing, labels_csv=labels, timeout=source.connection.timeout,
                            progress=progress)
    if not source.shard:
        return report
    part = Report.from_json(report)  # the server saw this shard's names only: a label of another shard's image
    names = [name for name, _ in files]  # is not unknown
    return assemble(part.made, part.result(), shard={**source.shard.to_json(), "images_listed": len(files)},
                    labels=part.labels and {**part.labels, "unknown_names": few(unknown_names(labels, names))}).to_json()
