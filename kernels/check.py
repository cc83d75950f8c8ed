"""The kernels against their reference (`reference.py`) on random tables: random sources, tap counts,
weights (rows that cover their pixel fully, and partial edge rows), blocks that start off the canvas
or run past it, frames that share their tables, every layout, dtype and channel order. The same checks
run on the host build (here, CI) and on the GPU (``--device``; tests marked gpu).

Gathers and normalisation are exact: both sides do the same float32 operations in the same order.
Inpainting sums its window in another order than OpenCV's separable filter: tolerance 1e-3 pixel
levels. Softmax is float32 on the device, float64 on the host: tolerance 1e-5.
"""
from __future__ import annotations

import hashlib

import numpy as np

from . import ops, reference
from .memory import Memory
from .renderer import HostRenderer, KernelRenderer, Source
from .tables import AxisTable, FrameTables, Normalisation

INPAINT_TOLERANCE = 1e-3  # pixel levels (0..255)
SCORE_TOLERANCE = 1e-5


def random_axis(rng: np.random.Generator, length: int, canvas: int) -> AxisTable:
    """Taps over a source axis of ``length`` pixels for a block that may overhang the canvas: most rows
    cover their pixel fully (weights summing to 1), the first and last only partly, like an edge pixel
    of a sub-pixel placement."""
    n = int(rng.integers(canvas // 2, canvas + 6))
    k = int(rng.integers(1, 5))
    index = rng.integers(0, length, (n, k)).astype(np.int32)
    weight = rng.random((n, k)).astype(np.float32) + np.float32(0.05)
    weight /= weight.sum(axis=1, keepdims=True)
    weight[[0, -1]] *= np.float32(0.5)
    return AxisTable(int(rng.integers(-3, canvas // 3)), index, weight)


def random_frames(rng: np.random.Generator, canvas: tuple[int, int]) -> tuple[list[Source], list[FrameTables]]:
    """Frames of a few random sources; each source's second frame reuses the first's tables moved by a
    pixel (as a shift pair does), a third is inpainted, and a fourth inpainted from known pixels that are
    no rectangle (a row of its block only partly covered)."""
    sources, frames = [], []
    for _ in range(4):
        h, w = (int(v) for v in rng.integers(20, 90, 2))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        rows, cols = random_axis(rng, h, canvas[0]), random_axis(rng, w, canvas[1])
        moved = FrameTables(AxisTable(rows.start + 1, rows.index, rows.weight),
                            AxisTable(cols.start + 1, cols.index, cols.weight), canvas)
        holed = rows.weight.copy()
        holed[len(holed) // 2] *= np.float32(0.5)
        for frame in (FrameTables(rows, cols, canvas), moved, FrameTables(rows, cols, canvas, inpaint=True),
                      FrameTables(AxisTable(rows.start, rows.index, holed), cols, canvas, inpaint=True)):
            sources.append((hashlib.sha256(pixels).hexdigest(), pixels))  # the renderer's cache key
            frames.append(frame)
    return sources, frames


def render_reference(sources: list[Source], frames: list[FrameTables], norm: Normalisation, layout: str,
                     dtype: np.dtype) -> np.ndarray:
    canvases = [reference.canvas(reference.resample(pixels, f.rows, f.cols), f)
                for (_, pixels), f in zip(sources, frames)]
    return reference.normalise(canvases, norm, layout, dtype)


def check_render(memory: Memory, seed: int = 0) -> str:
    """Every layout, dtype and channel order; raises AssertionError on a mismatch. The kernels on ``memory``
    against the reference, and the CPU renderer (the kernels' host build, `HostRenderer`) against both:
    bit for bit with the kernels, inpainted frames included."""
    rng = np.random.default_rng(seed)
    renderer = KernelRenderer(memory, poison=True)
    cpu = HostRenderer()
    count = inpainted = 0
    for _ in range(3):
        canvas = (int(rng.integers(24, 72)), int(rng.integers(24, 72)))
        sources, frames = random_frames(rng, canvas)
        fill = np.array([f.inpaint for f in frames])
        for order in ("RGB", "BGR"):
            scale = rng.uniform(0.004, 0.02, 3) * rng.choice([-1, 1], 3)  # as 1/(255 std) ... 1/std
            norm = Normalisation(scale.astype(np.float32), rng.uniform(-2.5, 2.5, 3).astype(np.float32), order)
            for layout in ("NCHW", "NHWC"):
                for dtype in (np.dtype(np.float32), np.dtype(np.float16)):
                    want = render_reference(sources, frames, norm, layout, dtype)
                    got = renderer.render(sources, frames, norm, layout, dtype).to_host()
                    where = f"{layout} {dtype.name} {order}"
                    host = cpu.render(sources, frames, norm, layout, dtype)
                    assert np.array_equal(host.view(np.uint8), got.view(np.uint8)), \
                        f"the CPU renderer differs from the kernels ({where}): frames " \
                        f"{sorted(set(np.nonzero(host != got)[0].tolist()))}"
                    exact = ~fill
                    assert np.array_equal(got[exact], want[exact], equal_nan=False), \
                        f"render differs from the reference ({where}): max |diff| " \
                        f"{np.nanmax(np.abs(got[exact].astype(np.float64) - want[exact]))}"
                    levels = np.abs(got[fill].astype(np.float64) - want[fill]) / np.abs(norm.scale).min()
                    tol = INPAINT_TOLERANCE + (0.5 if dtype == np.float16 else 0)  # half: its own rounding
                    assert np.nanmax(levels) <= tol and not np.isnan(levels).any(), \
                        f"inpainted frames differ by {np.nanmax(levels):.2e} levels ({where})"
        count += len(frames)
        inpainted += int(fill.sum())
    return (f"{count} frames exact ({inpainted} inpainted within {INPAINT_TOLERANCE} levels); the CPU renderer "
            "the same bits")


def check_half(memory: Memory) -> str:
    """float32 -> float16 in the kernels (compat.h) against NumPy, special values included."""
    values = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8,
                       1e-10, np.inf, -np.inf, 0.1, 1 / 3, 1024.5, 2049.0, 3.0e-5], np.float32)
    values = np.concatenate([values, np.random.default_rng(1).normal(0, 300, 4000).astype(np.float32)])
    canvas = np.repeat(values, 3).astype(np.float32)  # (n pixels, 3): one frame of 1 x n
    n = len(values)
    out = memory.empty(n * 3 * 2)
    src, slots = memory.upload(canvas), memory.upload(np.zeros(1, np.int32))
    identity = Normalisation(np.ones(3, np.float32), np.zeros(3, np.float32), "RGB")
    ops.normalise(memory.launch, memory.address(src), memory.address(slots), 1, (1, n), identity, False, True,
                  memory.address(out))
    got = np.empty(n * 3, np.float16)
    memory.download(out, got)
    with np.errstate(over="ignore"):  # the normalisation's x * 1 + 0 first (it turns -0 into +0)
        want = (np.repeat(values, 3) * np.float32(1) + np.float32(0)).astype(np.float16)
    assert np.array_equal(got.view(np.uint16), want.view(np.uint16)), "float16 rounding differs from NumPy"
    return f"{n} values round to float16 as NumPy does"


def check_score(memory: Memory, seed: int = 0) -> str:
    """Top-1 and p[c*] against the reference softmax, for logits and for probabilities."""
    rng = np.random.default_rng(seed)
    n, classes = 37, 1000
    logits = rng.normal(0, 4, (n, classes)).astype(np.float32)
    first = np.repeat(np.arange(0, n, 3), 3)[:n]  # units of three frames
    cls = (-first - 1).astype(np.int32)
    cls[:2] = [5, 7]  # these frames' units started in an earlier batch
    for kind, out in (("logits", logits), ("probabilities", reference.softmax(logits).astype(np.float32))):
        buf = memory.upload(out)
        top1, rowmax, denom, p_star = (memory.empty(n * 4) for _ in range(4))
        c = memory.upload(cls)
        a = memory.address
        ops.score(memory.launch, a(buf), n, classes, kind == "logits", a(c), a(top1), a(rowmax), a(denom), a(p_star))
        got_top1, got_p = np.empty(n, np.int32), np.empty(n, np.float32)
        memory.download(top1, got_top1)
        memory.download(p_star, got_p)
        probs = reference.softmax(out) if kind == "logits" else out.astype(np.float64)
        assert np.array_equal(got_top1, probs.argmax(axis=1)), f"top-1 differs ({kind})"
        cstar = np.where(cls >= 0, cls, probs.argmax(axis=1)[np.maximum(-cls - 1, 0)])
        want = probs[np.arange(n), cstar]
        assert np.allclose(got_p, want, rtol=SCORE_TOLERANCE, atol=1e-9), f"p[c*] differs ({kind})"
    return f"{n} rows of {classes} classes: top-1 exact, p[c*] within {SCORE_TOLERANCE}"
