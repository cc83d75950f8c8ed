"""Protocols: the paper's definitions, and draws that depend only on seed, protocol and image."""
from __future__ import annotations

import numpy as np
import pytest

from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.protocols import PROTOCOLS, TooSmall, plan, size_sweep_sizes
from shiftaudit.server.engine.runners.base import InputSpec

DIGESTS = ["%064x" % (i * 7919 + 1) for i in range(40)]


def _inside(p) -> bool:
    x, y, w, h = p.dst
    H, W = p.canvas
    return x >= 0 and y >= 0 and x + w <= W and y + h <= H


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_same_seed_and_image_give_the_same_units_whatever_else_was_planned(protocol):
    cfg = AuditOptions(canvas=(224, 224), pairs_per_image=3)
    first = {d: plan(protocol, (500, 375), d, cfg) for d in DIGESTS}
    again = {d: plan(protocol, (500, 375), d, cfg) for d in reversed(DIGESTS)}
    assert first == again
    reseeded = AuditOptions(canvas=(224, 224), pairs_per_image=3, seed=1)
    other_seed = {d: plan(protocol, (500, 375), d, reseeded) for d in DIGESTS}
    assert first != other_seed


@pytest.mark.parametrize("protocol", ["embed-black", "embed-inpaint", "scale", "translate-sweep", "scale-sweep",
                                      "size-sweep"])
def test_embedded_frames_stay_on_the_canvas_and_have_short_side_s(protocol):
    cfg = AuditOptions(canvas=(224, 224), pairs_per_image=4, size_sweep=(60, 0, 40))
    for d in DIGESTS:
        for unit in plan(protocol, (640, 427), d, cfg):
            assert all(_inside(f) for f in unit.frames)
            a = unit.frames[0]
            assert min(a.dst[2:]) == (unit.param if protocol == "size-sweep" else cfg.size)
            assert a.fill == ("inpaint" if protocol == "embed-inpaint" else "black")


def test_embed_origins_are_spread_over_the_canvas():
    xs = {plan("embed-black", (500, 375), d, AuditOptions(canvas=(224, 224)))[0].frames[0].dst[0] for d in DIGESTS}
    assert len(xs) > 20 and min(xs) < 30 and max(xs) > 60


def test_crop_windows_follow_the_inception_distribution():
    cfg = AuditOptions(canvas=(224, 224), pairs_per_image=5)
    for d in DIGESTS:
        for unit in plan("crop", (500, 375), d, cfg):
            a, b = unit.frames
            x, y, w, h = a.src
            assert 0 <= x and 0 <= y and x + w <= 500 and y + h <= 375
            assert 0.08 * 0.95 <= w * h / (500 * 375) <= 1.0
            assert 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
            assert a.dst == (0, 0, 225, 225) and b.dst == (-1, -1, 225, 225) and a.src == b.src


@pytest.mark.parametrize("wh", [(113, 38), (38, 113), (900, 60)])
def test_crop_windows_of_very_wide_or_tall_images_stay_inside(wh):
    for d in DIGESTS:
        for unit in plan("crop", wh, d, AuditOptions(canvas=(224, 224), pairs_per_image=3)):
            x, y, w, h = unit.frames[0].src
            assert 0 <= x and 0 <= y and x + w <= wh[0] and y + h <= wh[1]
            assert 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05


def test_null_frames_are_identical():
    for unit in plan("null", (500, 375), DIGESTS[0], AuditOptions(canvas=(224, 224), pairs_per_image=2)):
        assert unit.frames[0] == unit.frames[1]


def test_shift_direction_is_configurable():
    (u,) = plan("embed-black", (500, 375), DIGESTS[0], AuditOptions(canvas=(224, 224), shift=(-2, 0)))
    assert u.frames[1].dst[0] - u.frames[0].dst[0] == -2 and u.frames[1].dst[1] == u.frames[0].dst[1]
    (c,) = plan("crop", (500, 375), DIGESTS[0], AuditOptions(canvas=(224, 224), shift=(0, -1)))
    assert c.frames[0].dst[:2] == (0, -1) and c.frames[1].dst[:2] == (0, 0)


def test_size_sweep_covers_60_to_the_largest_size_that_fits():
    cfg = AuditOptions(canvas=(224, 224))
    assert size_sweep_sizes(cfg)[0] == 60 and size_sweep_sizes(cfg)[-1] <= 223
    units = plan("size-sweep", (600, 600), DIGESTS[0], cfg)
    assert [u.param for u in units] == size_sweep_sizes(cfg)
    assert [u.param for u in plan("size-sweep", (300, 150), DIGESTS[0], cfg)] == list(range(60, 112, 8))


def test_images_smaller_than_the_embedded_size_are_refused_not_upscaled():
    with pytest.raises(TooSmall, match="smaller than the embedded size 100"):
        plan("embed-black", (120, 80), DIGESTS[0], AuditOptions(canvas=(224, 224)))
    assert plan("crop", (120, 80), DIGESTS[0], AuditOptions(canvas=(224, 224)))  # a crop may enlarge


def test_a_panorama_is_shrunk_to_fit_the_canvas():
    (u,) = plan("embed-black", (1200, 300), DIGESTS[0], AuditOptions(canvas=(224, 224)))
    assert all(_inside(f) for f in u.frames) and u.frames[0].dst[2] == 223


@pytest.mark.parametrize("bad", [dict(size=300), dict(shift=(0, 0)), dict(pairs_per_image=0),
                                 dict(pairs_per_image=10**6), dict(sweep_step=0), dict(sweep_step=3),
                                 dict(sweep_pixels=8, sweep_step=1e-5), dict(size_sweep=(2, 0, 8))])
def test_bad_plan_parameters_are_refused(bad):
    dynamic = InputSpec("x", "NCHW", None, None, np.dtype(np.float32), None)
    with pytest.raises(ValueError):
        AuditOptions(canvas=(224, 224), **bad).resolved(dynamic)
