"""The CPU renderer against OpenCV, and the exactness of the translations it renders."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from shiftaudit.kernels.reference import normalise, resample
from shiftaudit.server.engine.geometry import Placement, resolve_filter
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.protocols import plan
from shiftaudit.server.engine.render.cpu import render_frames
from shiftaudit.server.engine.taps import tables

CV2 = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR}
# float32 sums of up to ~40 taps of values below 256: differences are rounding, far below 1e-3
TOLERANCE = 1e-3


def _sizes(rng, n):
    for _ in range(n):
        yield tuple(int(v) for v in rng.integers(3, 260, 4))


@pytest.mark.parametrize("filt", ["area", "bilinear"])
def test_resample_matches_cv2_resize_on_float_input(filt):
    rng = np.random.default_rng(1)
    for sh, sw, dh, dw in _sizes(rng, 150):  # shrinking, enlarging and mixed axes
        src = (rng.random((sh, sw, 3)) * 255).astype(np.float32)
        rows, cols = tables(Placement((0, 0, sw, sh), (0, 0, dw, dh), (dh, dw), filt))
        ours = resample(src, rows, cols)
        ref = cv2.resize(src, (dw, dh), interpolation=CV2[filt])
        np.testing.assert_allclose(ours, ref, atol=TOLERANCE, err_msg=f"{filt} {sw}x{sh} -> {dw}x{dh}")


def test_nearest_picks_the_pixel_cv2_nearest_exact_picks_up_to_ties():
    """Each output samples the source pixel under its centre; OpenCV's fixed point may round an exact
    tie the other way, so: never more than one pixel off, and equal almost everywhere."""
    rng = np.random.default_rng(2)
    same = total = 0
    for sh, sw, dh, dw in _sizes(rng, 150):
        coords = np.broadcast_to(np.arange(sw, dtype=np.float32)[None, :, None], (sh, sw, 3)).copy()
        rows, cols = tables(Placement((0, 0, sw, sh), (0, 0, dw, dh), (dh, dw), "nearest"))
        ours = resample(coords, rows, cols)[..., 0]
        ref = cv2.resize(coords, (dw, dh), interpolation=cv2.INTER_NEAREST_EXACT)[..., 0]
        assert np.abs(ours - ref).max() <= 1
        same += (ours == ref).sum()
        total += ours.size
    assert same / total > 0.99


def test_window_of_the_source_equals_resize_of_the_crop():
    rng = np.random.default_rng(3)
    src = (rng.random((120, 150, 3)) * 255).astype(np.float32)
    p = Placement((17, 9, 80, 70), (0, 0, 50, 45), (45, 50), "area")
    ours = resample(src, *tables(p))
    ref = cv2.resize(src[9:79, 17:97], (50, 45), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(ours, ref, atol=TOLERANCE)


def _photo(rng, h=300, w=400):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("protocol", ["embed-black", "crop", "translate-sweep"])
@pytest.mark.parametrize("filt", ["auto", "area", "bilinear", "nearest"])
def test_translated_frames_are_the_same_pixels_moved_by_exactly_the_shift(protocol, filt):
    rng = np.random.default_rng(4)
    src = _photo(rng)
    cfg = AuditOptions(canvas=(96, 112), size=40, shift=(1, 1), filter=filt, sweep_pixels=3, pairs_per_image=3)
    for unit in plan(protocol, (400, 300), "ab" * 32, cfg):
        frames = render_frames(src, unit.frames)
        for k in range(1, len(frames)):
            a, b = frames[k - 1], frames[k]
            if protocol == "crop":  # window moves by +1: content moves up-left
                np.testing.assert_array_equal(b[:-1, :-1], a[1:, 1:])
            else:  # destination moves by +1: content moves down-right, black around it
                np.testing.assert_array_equal(b[1:, 1:], a[:-1, :-1])
                assert not b[0].any() and not b[:, 0].any()


def test_half_pixel_sweep_steps_land_back_on_whole_pixel_frames():
    rng = np.random.default_rng(5)
    src = _photo(rng)
    cfg = AuditOptions(canvas=(96, 96), size=40, shift=(1, 0), sweep_pixels=2, sweep_step=0.5)
    (unit,) = plan("translate-sweep", (400, 300), "cd" * 32, cfg)
    assert [f.dst[0] - unit.frames[0].dst[0] for f in unit.frames] == [0, 0.5, 1, 1.5, 2]
    f = render_frames(src, unit.frames)
    np.testing.assert_array_equal(f[2][:, 1:], f[0][:, :-1])
    np.testing.assert_array_equal(f[3][:, 1:], f[1][:, :-1])
    half = f[1]
    assert not np.array_equal(half, f[0]) and not np.array_equal(half, f[2])
    # area coverage: the image's total mass is conserved by a sub-pixel move
    assert half.sum() == pytest.approx(f[0].sum(), rel=1e-5)


def test_scale_pair_keeps_the_top_left_corner_and_grows_by_one_pixel():
    cfg = AuditOptions(canvas=(224, 224), size=100)
    (unit,) = plan("scale", (400, 300), "ef" * 32, cfg)
    a, b = unit.frames
    assert a.dst[:2] == b.dst[:2]
    assert (a.dst[2], a.dst[3]) == (133, 100) and (b.dst[2], b.dst[3]) == (135, 101)


def test_model_input_layouts_dtypes_and_normalisation():
    rng = np.random.default_rng(6)
    canvases = (rng.random((2, 5, 7, 3)) * 255).astype(np.float32)
    pre = Preprocessing(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), pixel_range=1, channel_order="BGR")
    x = normalise(canvases, pre.normalisation(), "NCHW", np.dtype(np.float16))
    assert x.shape == (2, 3, 5, 7) and x.dtype == np.float16
    bgr = canvases[..., ::-1] / 255
    expect = ((bgr - np.array(pre.mean)) / np.array(pre.std)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x.astype(np.float32), expect, atol=2e-3)
    y = normalise(canvases, Preprocessing().normalisation(), "NHWC", np.dtype(np.float32))
    assert y.shape == (2, 5, 7, 3) and y.dtype == np.float32


def test_auto_filter_is_area_when_shrinking_and_bilinear_when_enlarging():
    assert resolve_filter("auto", (400, 300), (133, 100)) == "area"
    assert resolve_filter("auto", (100, 80), (225, 225)) == "bilinear"
    with pytest.raises(ValueError, match="unknown filter"):
        resolve_filter("cubic", (1, 1), (1, 1))
