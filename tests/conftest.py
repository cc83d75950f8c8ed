from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
EXAMPLE_IMAGES = ROOT / "examples" / "images"


@pytest.fixture
def example_images(tmp_path: Path) -> Path:
    """A private copy of the example photographs, so a test may add bad files beside them."""
    d = tmp_path / "images"
    shutil.copytree(EXAMPLE_IMAGES, d)
    return d


def write_image(path: Path, pixels: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


@pytest.fixture
def zero_mean_sidecar():
    """Preprocessing under which black pixels are exactly 0 (what the invariance oracle needs)."""
    def write(model: Path) -> Path:
        model.with_suffix(".json").write_text('{"mean": [0, 0, 0], "std": [1, 1, 1], "pixel_range": 1}')
        return model
    return write


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu run only where our kernels can run on a GPU."""
    from shiftaudit.server.engine import gpu_renderer

    render, why = gpu_renderer() if any("gpu" in item.keywords for item in items) else (True, "")
    if render is None:
        skip = pytest.mark.skip(reason=f"no usable GPU: {why}")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
