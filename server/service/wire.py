"""Audit options <-> their API messages; both sides use this so a remote audit is configured exactly
like an in-process one."""
from __future__ import annotations

from shiftaudit.v1 import audit_service_pb2 as pb

_SCALARS = ("size", "pairs_per_image", "seed", "filter", "sweep_pixels", "sweep_step")


def options_to_proto(plan: dict, protocols: tuple[str, ...] | None, batch: int | None,
                     strict: bool) -> pb.AuditOptions:
    msg = pb.AuditOptions(protocols=list(protocols or ()), strict=strict)
    for key in _SCALARS:
        if plan.get(key) is not None:
            setattr(msg, key, plan[key])
    if plan.get("shift") is not None:
        msg.shift_x, msg.shift_y = plan["shift"]
    if plan.get("canvas") is not None:
        msg.canvas_height, msg.canvas_width = plan["canvas"]
    if plan.get("size_sweep") is not None:
        msg.size_sweep_min, msg.size_sweep_max, msg.size_sweep_step = plan["size_sweep"]
    if batch is not None:
        msg.batch = batch
    return msg


def options_from_proto(msg: pb.AuditOptions) -> tuple[dict, tuple[str, ...] | None, int | None, bool]:
    """(plan fields, protocols, batch, strict); a pair of fields counts only when both are set."""
    plan = {k: getattr(msg, k) for k in _SCALARS if msg.HasField(k)}
    pairs = {"shift": ("shift_x", "shift_y"), "canvas": ("canvas_height", "canvas_width"),
             "size_sweep": ("size_sweep_min", "size_sweep_max", "size_sweep_step")}
    for key, fields in pairs.items():
        present = [msg.HasField(f) for f in fields]
        if any(present) and not all(present):
            raise ValueError(f"{key} needs all of {', '.join(fields)}")
        if all(present):
            plan[key] = tuple(getattr(msg, f) for f in fields)
    batch = msg.batch if msg.HasField("batch") else None
    return plan, tuple(msg.protocols) or None, batch, msg.strict


# Preprocessing override (load_preprocessing's keyword) -> its field in the API message
_PRE_FIELDS = {"pixel_range": "pixel_range", "channel_order": "channel_order", "output": "output_kind"}


def preprocessing_to_proto(overrides: dict) -> pb.Preprocessing:
    msg = pb.Preprocessing()
    for key in ("mean", "std"):
        if overrides.get(key) is not None:
            getattr(msg, key).extend(overrides[key])
    for key, field in _PRE_FIELDS.items():
        if overrides.get(key) is not None:
            setattr(msg, field, overrides[key])
    return msg


def preprocessing_from_proto(msg: pb.Preprocessing) -> dict:
    out: dict = {}
    for key in ("mean", "std"):
        values = getattr(msg, key)
        if values:
            out[key] = tuple(values)
    for key, field in _PRE_FIELDS.items():
        if msg.HasField(field):
            out[key] = getattr(msg, field)
    return out
