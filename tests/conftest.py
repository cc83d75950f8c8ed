"""Fixtures every test group uses, and the rule that tests marked gpu run only where our kernels can
run on a GPU. Shared helpers live in the importable package ``tests.support``."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL
from tests.support.models import cnn, feature_map
from tests.support.server_process import ServerProcess


@pytest.fixture
def example_images(tmp_path: Path) -> Path:
    """A private copy of the example photographs, so a test may add bad files beside them."""
    d = tmp_path / "images"
    shutil.copytree(EXAMPLE_IMAGES, d)
    return d


@pytest.fixture
def zero_mean_sidecar():
    """Preprocessing under which black pixels are exactly 0 (what the invariance oracle needs)."""
    def write(model: Path) -> Path:
        model.with_suffix(".json").write_text('{"mean": [0, 0, 0], "std": [1, 1, 1], "pixel_range": 1}')
        return model
    return write


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """A model root (the example model with its sidecar, a small CNN, a feature map, a symlink out) and a
    data root (photographs, a corrupt file, a symlink out)."""
    base = tmp_path_factory.mktemp("roots")
    models, data = base / "models", base / "data"
    models.mkdir()
    (models / "sub").mkdir()
    shutil.copy(EXAMPLE_MODEL, models / "lite0.onnx")
    shutil.copy(EXAMPLE_MODEL.with_suffix(".json"), models / "lite0.json")
    shutil.copy(EXAMPLE_MODEL.parent / "imagenet_classes.txt", models)
    cnn(models / "sub" / "small.onnx", hw=64, stride=2)
    feature_map(models / "fmap.onnx")
    outside = cnn(base / "outside.onnx", hw=64)
    (models / "link.onnx").symlink_to(outside)
    shutil.copytree(EXAMPLE_IMAGES, data / "photos")
    (data / "mixed").mkdir()
    shutil.copy(EXAMPLE_IMAGES / "coffee_cup.jpg", data / "mixed")
    (data / "mixed" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (data / "linked").mkdir()
    shutil.copy(EXAMPLE_IMAGES / "coffee_cup.jpg", data / "linked")
    shutil.copy(EXAMPLE_IMAGES / "cat_chelsea.jpg", base / "secret.jpg")
    (data / "linked" / "escape.jpg").symlink_to(base / "secret.jpg")
    return models, data


@pytest.fixture(scope="module")
def server(roots, tmp_path_factory):
    """A real audit-server on loopback over those roots: two audits at once, one queued."""
    models, data = roots
    srv = ServerProcess(models, tmp_path_factory.mktemp("state"), "--data-root", str(data),
                        "--max-concurrent-audits", "2", "--max-queued-audits", "1").start()
    yield srv
    srv.stop()


def pytest_collection_modifyitems(config, items):
    from shiftaudit.server.engine.render import gpu_renderer

    render, why = gpu_renderer() if any("gpu" in item.keywords for item in items) else (True, "")
    if render is None:
        skip = pytest.mark.skip(reason=f"no usable GPU: {why}")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
