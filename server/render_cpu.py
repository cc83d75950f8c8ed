"""The CPU renderer: applies the geometry tables to a uint8 source and writes the model's input.

Frames are rendered in pixel space (float32, RGB, 0..255) on a canvas that is black outside the
destination, inpainted where a placement asks for it, then normalised into the engine's layout and
dtype. The GPU kernels do the same arithmetic on the same tables.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .geometry import AxisTable, Placement, tables
from .inpaint import inpaint
from .preprocessing import Normalisation


def resample(src: np.ndarray, rows: AxisTable, cols: AxisTable) -> np.ndarray:
    """The destination block (len(rows), len(cols), C) as float32: columns first, then rows, taps
    summed in order (the order the kernels use)."""
    r0 = int(rows.index.min())
    r1 = int(rows.index.max()) + 1
    band = src[r0:r1]
    tmp = np.zeros((band.shape[0], cols.index.shape[0], src.shape[2]), np.float32)
    for k in range(cols.index.shape[1]):
        tmp += band[:, cols.index[:, k]] * cols.weight[None, :, k, None]
    out = np.zeros((rows.index.shape[0], tmp.shape[1], src.shape[2]), np.float32)
    for k in range(rows.index.shape[1]):
        out += tmp[rows.index[:, k] - r0] * rows.weight[:, k, None, None]
    return out


def _clip(start: int, n: int, limit: int) -> tuple[slice, slice]:
    """Slices (canvas, block) of a block of n rows starting at canvas row ``start``."""
    lo, hi = max(start, 0), min(start + n, limit)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    return slice(lo, hi), slice(lo - start, hi - start)


def paste(block: np.ndarray, rows: AxisTable, cols: AxisTable, canvas_hw: tuple[int, int]
          ) -> tuple[np.ndarray, np.ndarray]:
    """The canvas (H, W, C) with the block pasted on black, and the mask of fully covered pixels."""
    h, w = canvas_hw
    canvas = np.zeros((h, w, block.shape[2]), np.float32)
    coverage = np.zeros((h, w), np.float32)
    cy, by = _clip(rows.start, block.shape[0], h)
    cx, bx = _clip(cols.start, block.shape[1], w)
    canvas[cy, cx] = block[by, bx]
    coverage[cy, cx] = np.outer(rows.coverage[by], cols.coverage[bx])
    return canvas, coverage >= 1 - 1e-6


def render_frames(src: np.ndarray, placements: Sequence[Placement]) -> list[np.ndarray]:
    """Pixel-space canvases (H, W, 3) float32 for the placements of one source image. Placements that
    differ by whole-pixel moves share one resampling (a translate pair costs one resize)."""
    blocks: dict[tuple, np.ndarray] = {}
    out = []
    for p in placements:
        rows, cols = tables(p)
        key = p.resample_key()
        if key not in blocks:
            blocks[key] = resample(src, rows, cols)
        canvas, known = paste(blocks[key], rows, cols, p.canvas)
        if p.fill == "inpaint":
            canvas = inpaint(canvas, known)
        out.append(canvas)
    return out


def to_model_input(canvases: np.ndarray, norm: Normalisation, layout: str, dtype: np.dtype) -> np.ndarray:
    """(N, H, W, 3) RGB pixel-space canvases -> the engine's input: channel order, per-channel
    scale/bias (computed once on the host), NCHW or NHWC, float32 or float16."""
    x = canvases[..., ::-1] if norm.channel_order == "BGR" else canvases
    x = x * norm.scale + norm.bias
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=dtype)
