"""What the test groups share: the example model and photographs, image files written on the fly,
small ONNX models (`models`), a real audit-server process (`server_process`), engine files
(`engines`)."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import jsonschema
import numpy as np

from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.report import json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
EXAMPLE_IMAGES = ROOT / "examples" / "images"
# Remote audits (AuditClient.run's options): a long one (24,000 frames, long even on a GPU) and a quick one.
SLOW = dict(options=AuditOptions(pairs_per_image=2000, protocols=("embed-black",)))
QUICK = dict(options=AuditOptions(size=40, protocols=("crop", "embed-black")))


def write_image(path: Path, pixels: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_report(report: dict, schema: str = "report") -> None:
    """The report (or a comparison: ``schema="compare"``; a layer profile: ``"layers"``) follows the shipped
    JSON Schema (every error listed, with where it is)."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in _validator(schema).iter_errors(report)]
    assert not errors, "\n".join(errors)
