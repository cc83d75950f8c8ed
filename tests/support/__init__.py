"""What the test groups share: the example model and photographs, image files written on the fly,
small ONNX models (`models`), a real audit-server process (`server_process`), engine files
(`engines`)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from shiftaudit.server.engine.options import AuditOptions

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
