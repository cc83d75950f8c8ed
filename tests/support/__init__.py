"""What the test groups share: the example model and photographs, image files written on the fly,
small ONNX models (`models`), a real audit-server process (`server_process`), engine files
(`engines`)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
EXAMPLE_IMAGES = ROOT / "examples" / "images"


def write_image(path: Path, pixels: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(buf.tobytes())
    return path
