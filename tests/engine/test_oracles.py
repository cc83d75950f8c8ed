"""Known answers (DESIGN.md §5): a stride-1 CNN with global average pooling and no biases cannot see
an integer translation of an image embedded on a black canvas; the same CNN with stride 2 can."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from shiftaudit.client import AuditOptions, audit
from tests.support import EXAMPLE_IMAGES, write_image
from tests.support.models import cnn


def _bordered_images(directory: Path, n: int = 12, size: int = 40, border: int = 8) -> Path:
    """Random-content images inside a black frame: the frame keeps the content k/2 pixels per layer
    away from the canvas border wherever the protocol places the image."""
    directory.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[border:-border, border:-border] = rng.integers(0, 256, (size - 2 * border, size - 2 * border, 3))
        write_image(directory / f"{i:02d}.png", img)
    return directory


def _run(model: Path, images: Path, size: int, protocols=("embed-black",)) -> dict:
    return audit(model, images, AuditOptions(size=size, pairs_per_image=4, seed=3, protocols=protocols))


def test_stride1_3x3_cnn_is_invariant_under_embed_black(tmp_path, zero_mean_sidecar):
    model = zero_mean_sidecar(cnn(tmp_path / "s1.onnx", stride=1, kernel=3, hw=64))
    report = _run(model, _bordered_images(tmp_path / "img"), size=40)
    r = report["protocols"]["embed-black"]
    assert r["pairs"] == 48
    assert r["p_top1_change"]["value"] == 0
    assert r["mac"]["value"] < 1e-5  # zero up to float summation order in the pooling


def test_stride1_1x1_cnn_is_invariant_on_real_photographs(tmp_path, zero_mean_sidecar):
    model = zero_mean_sidecar(cnn(tmp_path / "k1.onnx", stride=1, kernel=1, hw=224))
    r = _run(model, EXAMPLE_IMAGES, size=100, protocols=("embed-black", "translate-sweep"))["protocols"]
    for name in ("embed-black", "translate-sweep"):
        assert r[name]["p_top1_change"]["value"] == 0 and r[name]["mac"]["value"] < 1e-5


def test_the_same_cnn_with_stride_2_is_not_invariant(tmp_path, zero_mean_sidecar):
    model = zero_mean_sidecar(cnn(tmp_path / "s2.onnx", stride=2, kernel=3, hw=64))
    r = _run(model, _bordered_images(tmp_path / "img"), size=40)["protocols"]["embed-black"]
    assert r["mac"]["value"] > 1e-3
    assert r["mac"]["ci95"][0] > 0


def test_paper_table2_blur_subsample_relu_breaks_shiftability():
    """Table 2, with the paper's numbers: blurring a delta with bin5 and subsampling by 2 keeps the
    global sum under a one-sample shift (shiftable); the thresholding ReLU (bias 5) after it does not."""
    bin5 = np.array([1, 4, 6, 4, 1])
    s1, s2 = np.eye(7, dtype=int)[3], np.eye(7, dtype=int)[2]
    b1, b2 = np.convolve(s1, bin5, "same"), np.convolve(s2, bin5, "same")
    assert list(b1) == [0, 1, 4, 6, 4, 1, 0] and list(b2) == [1, 4, 6, 4, 1, 0, 0]
    d1, d2 = b1[0::2], b2[0::2]
    assert list(d1) == [0, 4, 4, 0] and list(d2) == [1, 6, 1, 0]
    assert (s1.sum(), b1.sum(), d1.sum()) == (s2.sum(), b2.sum(), d2.sum()) == (1, 16, 8)
    relu1, relu2 = d1 * (d1 > 5), d2 * (d2 > 5)
    assert list(relu1) == [0, 0, 0, 0] and list(relu2) == [0, 6, 0, 0]
    assert (relu1.sum(), relu2.sum()) == (0, 6)
