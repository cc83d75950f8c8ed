"""Kernels against the NumPy/OpenCV reference (server/render_cpu.py, server/score.py) on random
inputs; the same checks run on the host build (CI) and on the GPU (tests marked gpu).

Gathers and normalisation are exact: both sides do the same float32 operations in the same order.
Inpainting sums its window in another order than OpenCV's separable filter: tolerance 1e-3 pixel
levels. Softmax is float32 on the device, float64 on the host: tolerance 1e-5.
"""
from __future__ import annotations

import hashlib

import numpy as np

from shiftaudit.server.engine.images import SourceImage
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.protocols import PROTOCOLS, PlanConfig, TooSmall, plan
from shiftaudit.server.engine.render.cpu import render_batch
from shiftaudit.server.engine.score import probabilities

from .launch import I, P
from .renderer import KernelRenderer

INPAINT_TOLERANCE = 1e-3  # pixel levels (0..255)
SCORE_TOLERANCE = 1e-5


def _frames(rng: np.random.Generator, filt: str, canvas: tuple[int, int]):
    """(source image, placement) of every protocol's frames for a few random images."""
    frames = []
    cfg = PlanConfig(canvas=canvas, size=24, sweep_pixels=2, sweep_step=0.5, pairs_per_image=2, filter=filt,
                     size_sweep=(16, 40, 12))
    for _ in range(3):
        h, w = (int(v) for v in rng.integers(30, 120, 2))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image = SourceImage(f"random-{h}x{w}", hashlib.sha256(pixels.tobytes()).hexdigest(), pixels)
        for protocol in PROTOCOLS:
            try:
                units = plan(protocol, image.size, image.digest, cfg)
            except TooSmall:
                continue
            frames += [(image, p) for u in units for p in u.frames]
    return frames


def check_render(memory, seed: int = 0) -> str:
    """Every protocol, filter, layout, dtype and channel order; raises AssertionError on a mismatch."""
    rng = np.random.default_rng(seed)
    renderer = KernelRenderer(memory, poison=True)
    count = inpainted = 0
    for filt in ("auto", "area", "bilinear", "nearest"):
        canvas = (int(rng.integers(40, 72)), int(rng.integers(40, 72)))
        frames = _frames(rng, filt, canvas)
        fill = np.array([p.fill == "inpaint" for _, p in frames])
        for pre in (Preprocessing(), Preprocessing(mean=(127, 120, 110), std=(128, 60, 70), pixel_range=255,
                                                   channel_order="BGR")):
            norm = pre.normalisation()
            for layout in ("NCHW", "NHWC"):
                for dtype in (np.dtype(np.float32), np.dtype(np.float16)):
                    want = render_batch(frames, norm, layout, dtype)
                    got = renderer(frames, norm, layout, dtype)
                    where = f"filter {filt}, {layout} {dtype.name} {pre.channel_order}"
                    exact = ~fill
                    assert np.array_equal(got[exact], want[exact], equal_nan=False), \
                        f"render differs from render_cpu ({where}): max |diff| " \
                        f"{np.nanmax(np.abs(got[exact].astype(np.float64) - want[exact]))}"
                    if fill.any():
                        levels = np.abs(got[fill].astype(np.float64) - want[fill]) / np.abs(norm.scale).min()
                        tol = INPAINT_TOLERANCE + (0.5 if dtype == np.float16 else 0)  # half: its own rounding
                        assert np.nanmax(levels) <= tol and not np.isnan(levels).any(), \
                            f"inpainted frames differ by {np.nanmax(levels):.2e} levels ({where})"
        count += len(frames)
        inpainted += int(fill.sum())
    return f"{count} frames exact ({inpainted} inpainted within {INPAINT_TOLERANCE} levels)"


def check_half(memory) -> str:
    """float32 -> float16 in the kernels (compat.h) against NumPy, special values included."""
    values = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8,
                       1e-10, np.inf, -np.inf, 0.1, 1 / 3, 1024.5, 2049.0, 3.0e-5], np.float32)
    values = np.concatenate([values, np.random.default_rng(1).normal(0, 300, 4000).astype(np.float32)])
    canvas = np.repeat(values, 3).astype(np.float32)  # (n pixels, 3): one frame of 1 x n
    n = len(values)
    out = memory.empty(n * 3 * 2)
    src, slots = memory.upload(canvas), memory.upload(np.zeros(1, np.int32))
    from .launch import norm_args

    memory.launch("normalise", [(P, memory.address(src)), (P, memory.address(slots)), (I, 1), (I, 1), (I, n),
                                *norm_args(np.ones(3), np.zeros(3), False, False, True), (P, memory.address(out))],
                  n, 1)
    got = np.empty(n * 3, np.float16)
    memory.download(out, got)
    with np.errstate(over="ignore"):  # the normalisation's x * 1 + 0 first (it turns -0 into +0)
        want = (np.repeat(values, 3) * np.float32(1) + np.float32(0)).astype(np.float16)
    assert np.array_equal(got.view(np.uint16), want.view(np.uint16)), "float16 rounding differs from NumPy"
    return f"{n} values round to float16 as NumPy does"


def check_score(memory, seed: int = 0) -> str:
    """Top-1 and p[c*] against server/score.py, for logits and for probabilities."""
    rng = np.random.default_rng(seed)
    n, classes = 37, 1000
    logits = rng.normal(0, 4, (n, classes)).astype(np.float32)
    first = np.repeat(np.arange(0, n, 3), 3)[:n]  # units of three frames
    cls = (-first - 1).astype(np.int32)
    cls[:2] = [5, 7]  # these frames' units started in an earlier batch
    for kind, out in (("logits", logits), ("probabilities", probabilities(logits, "logits").astype(np.float32))):
        buf = memory.upload(out)
        top1, rowmax, denom, p_star = (memory.empty(n * 4) for _ in range(4))
        c = memory.upload(cls)
        memory.launch("score_rows", [(P, memory.address(buf)), (I, n), (I, classes), (I, kind == "logits"),
                                     (P, memory.address(top1)), (P, memory.address(rowmax)),
                                     (P, memory.address(denom))], n)
        memory.launch("score_pstar", [(P, memory.address(buf)), (I, n), (I, classes), (I, kind == "logits"),
                                      (P, memory.address(c)), (P, memory.address(top1)), (P, memory.address(rowmax)),
                                      (P, memory.address(denom)), (P, memory.address(p_star))], n)
        got_top1, got_p = np.empty(n, np.int32), np.empty(n, np.float32)
        memory.download(top1, got_top1)
        memory.download(p_star, got_p)
        probs = probabilities(out, kind)
        assert np.array_equal(got_top1, probs.argmax(axis=1)), f"top-1 differs ({kind})"
        cstar = np.where(cls >= 0, cls, probs.argmax(axis=1)[np.maximum(-cls - 1, 0)])
        want = probs[np.arange(n), cstar]
        assert np.allclose(got_p, want, rtol=SCORE_TOLERANCE, atol=1e-9), f"p[c*] differs ({kind})"
    return f"{n} rows of {classes} classes: top-1 exact, p[c*] within {SCORE_TOLERANCE}"
