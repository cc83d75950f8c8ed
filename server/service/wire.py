"""Python values <-> API messages. Options are derived from the option dataclasses' fields (each
field's ``wire`` names its proto fields), so a remote audit is configured exactly like an in-process
one; stored audits become `pb.Audit`. The client and the server both use this module; it imports the
generated messages, the option definitions and the store's row type only."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from shiftaudit.server.engine.options import AuditOptions, options_of
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.v1 import audit_service_pb2 as pb

from .store import AuditRow, DatasetRow

_STATE = {"queued": pb.AUDIT_STATE_QUEUED, "running": pb.AUDIT_STATE_RUNNING,
          "succeeded": pb.AUDIT_STATE_SUCCEEDED, "failed": pb.AUDIT_STATE_FAILED,
          "cancelled": pb.AUDIT_STATE_CANCELLED, "interrupted": pb.AUDIT_STATE_INTERRUPTED}


def _to_proto(values: Mapping[str, Any], cls: type, msg: Message) -> Message:
    """Every option of ``cls`` that ``values`` sets (not None) into its proto fields."""
    for name, opt, _ in options_of(cls):
        value = values.get(name)
        if value is None:
            continue
        parts = opt.wire or (name,)
        descriptor = msg.DESCRIPTOR.fields_by_name
        if len(parts) == 1 and descriptor[parts[0]].is_repeated:
            getattr(msg, parts[0]).extend(value)
        else:
            for part, v in zip(parts, value if len(parts) > 1 else (value,)):
                setattr(msg, part, v)
    return msg


def _from_proto(msg: Message, cls: type) -> dict[str, Any]:
    """The options of ``cls`` that ``msg`` sets; a tuple option counts only when all its fields are set."""
    out: dict[str, Any] = {}
    descriptor = msg.DESCRIPTOR.fields_by_name
    for name, opt, _ in options_of(cls):
        parts = opt.wire or (name,)
        if len(parts) == 1 and descriptor[parts[0]].is_repeated:
            if values := tuple(getattr(msg, parts[0])):
                out[name] = values
            continue
        if not descriptor[parts[0]].has_presence:  # a plain bool: its default is unset
            out[name] = getattr(msg, parts[0])
            continue
        present = [msg.HasField(p) for p in parts]
        if any(present) and not all(present):
            raise ValueError(f"{name} needs all of {', '.join(parts)}")
        if all(present):
            values = tuple(getattr(msg, p) for p in parts)
            out[name] = values if len(parts) > 1 else values[0]
    return out


def options_to_proto(options: AuditOptions) -> pb.AuditOptions:
    return _to_proto({name: getattr(options, name) for name, _, _ in options_of(AuditOptions)}, AuditOptions,
                     pb.AuditOptions())


def options_from_proto(msg: pb.AuditOptions) -> AuditOptions:
    return AuditOptions(**_from_proto(msg, AuditOptions))


def preprocessing_to_proto(overrides: Mapping[str, Any]) -> pb.Preprocessing:
    """Overrides of the model's preprocessing (`Preprocessing` field -> value)."""
    return _to_proto(overrides, Preprocessing, pb.Preprocessing())


def preprocessing_from_proto(msg: pb.Preprocessing) -> dict[str, Any]:
    return _from_proto(msg, Preprocessing)


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
                    error=row.error, report_json=row.report_json or "")
