"""Stored audits and datasets as the API describes them (`pb.Audit`, `pb.Dataset`)."""
from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from shiftaudit.v1 import audit_service_pb2 as pb

from .store import AuditRow, DatasetRow

_STATE = {"queued": pb.AUDIT_STATE_QUEUED, "running": pb.AUDIT_STATE_RUNNING,
          "succeeded": pb.AUDIT_STATE_SUCCEEDED, "failed": pb.AUDIT_STATE_FAILED,
          "cancelled": pb.AUDIT_STATE_CANCELLED, "interrupted": pb.AUDIT_STATE_INTERRUPTED}


def timestamp(t: float | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def dataset_message(row: DatasetRow) -> pb.Dataset:
    return pb.Dataset(dataset_id=row.dataset_id, files=row.files, bytes=row.bytes,
                      created_at=timestamp(row.created_at), used_at=timestamp(row.used_at))


def audit_message(row: AuditRow) -> pb.Audit:
    """A stored audit as the API describes it."""
    return pb.Audit(audit_id=row.audit_id, state=_STATE[row.state], model_path=row.model_path,
                    created_at=timestamp(row.created_at), finished_at=timestamp(row.finished_at),
                    error=row.error, report_json=row.report_json or "", images=row.images,
                    images_left=row.images_left, summary_json=row.summary_json)
