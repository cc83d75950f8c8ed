"""Options <-> API messages, derived from the option dataclasses' fields (each field's ``wire`` names its
proto fields), so a remote audit is configured exactly like an in-process one. The light client and the
service both use this module: it imports the generated messages and the option definitions only (not
the service: a client never loads it)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from shiftaudit.server.engine.options import AuditOptions, options_of
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.v1 import audit_service_pb2 as pb


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
