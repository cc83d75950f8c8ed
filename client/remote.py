"""The Python client of the AuditService, for pipelines and for ``audit-client --server``: one method a
call, every `grpc.RpcError` turned into a `RemoteError`. How to reach a server is an option group of its
own (`connection.Connection`), which a command's help reads without gRPC."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from shiftaudit.server.engine.files import image_files
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.wire import options_to_proto, preprocessing_to_proto
from shiftaudit.v1 import audit_service_pb2 as pb
from shiftaudit.v1 import audit_service_pb2_grpc as pb_grpc

from .connection import RemoteError

CHUNK = 1 << 20
log = logging.getLogger("shiftaudit.client")
MAX_RECEIVE = 256 << 20  # matches the server's send limit: reports with many per-image records


def _model_ref(model: str) -> pb.ModelRef:
    """``sha256:<hex>`` names a model by digest, anything else is a path under the model root."""
    return pb.ModelRef(digest=model[7:]) if model.startswith("sha256:") else pb.ModelRef(path=model)


@dataclass(frozen=True)
class Upload:
    """Images sent from this machine: every image below ``directory`` (or the file itself), or only
    ``files`` of it, named as `files.image_files` names them."""

    directory: Path
    files: list[tuple[str, Path]] | None = None


@dataclass(frozen=True)
class DataPath:
    """Images under the server's data root."""

    path: str


@dataclass(frozen=True)
class Dataset:
    """Images an earlier `AuditClient.upload` sent (its dataset id)."""

    dataset_id: str


Images = Path | Upload | DataPath | Dataset  # a Path is an Upload of that directory

class AuditClient:
    def __init__(self, target: str, *, token: str | None = None, tls_ca: Path | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        self.target = target
        options = [("grpc.max_receive_message_length", MAX_RECEIVE)]
        if tls_ca or tls_cert:
            creds = grpc.ssl_channel_credentials(
                root_certificates=tls_ca.read_bytes() if tls_ca else None,
                private_key=tls_key.read_bytes() if tls_key else None,
                certificate_chain=tls_cert.read_bytes() if tls_cert else None)
            self.channel = grpc.secure_channel(target, creds, options)
        else:
            self.channel = grpc.insecure_channel(target, options)
        self.stub = pb_grpc.AuditServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request, timeout: float | None = None):
        try:
            return method(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as e:
            raise RemoteError(e.code(), e.details()) from None

    def server_info(self) -> pb.GetServerInfoResponse:
        return self._call(self.stub.GetServerInfo, pb.GetServerInfoRequest())

    def models(self) -> list[pb.ModelInfo]:
        return list(self._call(self.stub.ListModels, pb.ListModelsRequest()).models)

    def load_model(self, model: str) -> pb.ModelInfo:
        return self._call(self.stub.LoadModel, pb.LoadModelRequest(model=_model_ref(model))).model

    def unload_model(self, model: str) -> bool:
        return self._call(self.stub.UnloadModel, pb.UnloadModelRequest(model=_model_ref(model))).unloaded

    def model_metadata(self, model: str) -> pb.GetModelMetadataResponse:
        return self._call(self.stub.GetModelMetadata, pb.GetModelMetadataRequest(model=_model_ref(model)))

    def upload(self, images: Path, files: list[tuple[str, Path]] | None = None) -> str:
        """Stream every image below the directory ``images`` (or the file itself; or just ``files``, as
        `files.image_files` names them), each under its name; returns the dataset id."""
        def chunks() -> Iterator[pb.UploadImagesRequest]:
            for name, path in image_files(images) if files is None else files:
                with path.open("rb") as f:
                    data = f.read(CHUNK)
                    yield pb.UploadImagesRequest(file_name=name, data=data)  # names the file, even if empty
                    while data := f.read(CHUNK):
                        yield pb.UploadImagesRequest(file_name=name, data=data)

        return self._call(self.stub.UploadImages, chunks()).dataset_id

    def run(self, model: str, options: AuditOptions | None = None, *, images: Images,
            preprocessing: Mapping[str, Any] | None = None, labels_csv: str = "", timeout: float | None = None,
            progress: Callable[[Progress], None] | None = None,
            on_accepted: Callable[[str, int], None] | None = None, resume: Mapping[str, Any] | None = None) -> dict:
        """Run an audit on the server and return its report. ``images``: a local directory (`Upload`ed), a
        `DataPath` under the server's data root, or a `Dataset` uploaded before; ``preprocessing`` overrides
        the model's (`Preprocessing` fields); ``labels_csv``: image,label lines; ``on_accepted`` is told the
        audit's id and its place in the server's queue. `cancel` (from another thread) ends the audit with
        a partial report, returned here (its ``interrupted`` names the images left), which ``resume`` (with
        the same arguments) continues. The report's ``audit`` names the audit's id."""
        request = pb.RunAuditRequest(model=_model_ref(model), options=options_to_proto(options or AuditOptions()),
                                     preprocessing=preprocessing_to_proto(preprocessing or {}), labels_csv=labels_csv,
                                     resume_json=json.dumps(resume, allow_nan=False) if resume is not None else "",
                                     partial_report=True)
        if isinstance(images, DataPath):
            request.data_path = images.path
        else:
            request.dataset_id = images.dataset_id if isinstance(images, Dataset) else self.upload(
                *((images.directory, images.files) if isinstance(images, Upload) else (images, None)))
        try:
            for event in self.stub.RunAudit(request, metadata=self.metadata, timeout=timeout):
                kind = event.WhichOneof("event")
                if kind == "accepted" and on_accepted:
                    on_accepted(event.accepted.audit_id, event.accepted.queue_position)
                elif kind == "progress" and progress:
                    p = event.progress
                    progress(Progress(p.images_done, p.images_total or None, p.frames, p.elapsed_seconds,
                                      frames_total=p.frames_total or None))
                elif kind == "report":
                    if event.report.not_stored:  # printed on stderr by logging's last resort, or the app's handler
                        log.warning("warning: the server could not store audit %s's report (%s): it retries while "
                                    "it runs, but keep this copy", event.report.audit_id, event.report.not_stored)
                    return json.loads(event.report.report_json)
        except grpc.RpcError as e:
            raise RemoteError(e.code(), e.details()) from None
        raise RemoteError(grpc.StatusCode.UNKNOWN, "the server closed the audit stream without a report")

    def get(self, audit_id: str) -> pb.Audit:
        return self._call(self.stub.GetAudit, pb.GetAuditRequest(audit_id=audit_id)).audit

    def list(self, page_size: int = 100) -> list[pb.Audit]:
        return list(self._call(self.stub.ListAudits, pb.ListAuditsRequest(page_size=page_size)).audits)

    def cancel(self, audit_id: str) -> pb.Audit:
        return self._call(self.stub.CancelAudit, pb.CancelAuditRequest(audit_id=audit_id)).audit

    def delete(self, audit_id: str) -> None:
        """Remove a finished audit and its report from the server."""
        self._call(self.stub.DeleteAudit, pb.DeleteAuditRequest(audit_id=audit_id))

    def datasets(self) -> list[pb.Dataset]:
        return list(self._call(self.stub.ListDatasets, pb.ListDatasetsRequest()).datasets)

    def delete_dataset(self, dataset_id: str) -> None:
        self._call(self.stub.DeleteDataset, pb.DeleteDatasetRequest(dataset_id=dataset_id))
