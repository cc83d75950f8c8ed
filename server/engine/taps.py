"""The per-axis resampling tables of a placement, which every renderer consumes.

`tables` turns a placement (`geometry`) into one table per axis: for each canvas row (or column) the
source indices and weights to sum. This is the single source of truth for the geometry (DESIGN.md §2):
the CPU renderer and the CUDA kernels only gather and multiply (``shiftaudit.kernels`` takes the
tables, never a placement), so they agree by construction.

Conventions follow OpenCV's `cv2.resize` (pixel centres at +0.5), so that a placement rendered here
equals `cv2.resize` of the source window pasted on the canvas:

- ``area``: when both axes shrink (or keep) size, each destination pixel is the box average of the
  source pixels it covers (INTER_AREA); otherwise OpenCV's INTER_AREA upscaling weights.
- ``bilinear``: INTER_LINEAR (no antialiasing, replicated border).
- ``nearest``: centre sampling as INTER_NEAREST_EXACT (which may pick the neighbour at exact ties).

A fractional destination origin is a sub-pixel shift; the integer part of the origin never resamples:
moving a placement by whole pixels only moves its tables (`AxisTable.start`).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from shiftaudit.kernels.tables import AxisTable, FrameTables

from .geometry import Placement


def frame_tables(p: Placement) -> FrameTables:
    """What a renderer needs of a placement: its tables on its canvas, and whether it is inpainted."""
    rows, cols = tables(p)
    return FrameTables(rows, cols, p.canvas, p.fill == "inpaint")


def tables(p: Placement) -> tuple[AxisTable, AxisTable]:
    """The (rows, columns) tables of a placement."""
    sx, sy, sw, sh = p.src
    dx, dy, dw, dh = p.dst
    if sw <= 0 or sh <= 0 or dw <= 0 or dh <= 0:
        raise ValueError(f"empty placement {p}")
    box = p.filter == "area" and sw >= dw and sh >= dh
    return _axis(sy, sh, dy, dh, p.filter, box), _axis(sx, sw, dx, dw, p.filter, box)


def _axis(s0: int, length: int, d0: float, size: int, filt: str, box: bool) -> AxisTable:
    whole = math.floor(d0)
    first, index, weight = _window_axis(s0, length, size, d0 - whole, filt, box)
    return AxisTable(whole + first, index, weight)


@lru_cache(maxsize=4096)
def _window_axis(s0: int, length: int, size: int, frac: float, filt: str, box: bool
                 ) -> tuple[int, np.ndarray, np.ndarray]:
    """`_local_axis` with absolute source indices. Cached, so frames that differ by whole-pixel shifts
    share their arrays (read-only), and the kernels' batch packs them once."""
    first, index, weight = _local_axis(length, size, frac, filt, box)
    index = index + s0
    index.setflags(write=False)
    weight.setflags(write=False)
    return first, index, weight


@lru_cache(maxsize=4096)
def _local_axis(length: int, size: int, frac: float, filt: str, box: bool
                ) -> tuple[int, np.ndarray, np.ndarray]:
    """Taps for a window of ``length`` source pixels drawn at ``size`` pixels, origin at ``frac`` in
    [0, 1). Returns (first row, index, weight) relative to the window and the origin's whole pixel."""
    if box:
        return _box_taps(length, size, frac, length / size)
    scale = 1.0 / (size / length)  # as OpenCV computes it: floor() of exact multiples depends on it
    n = size + (frac > 0)
    u = np.arange(n, dtype=np.float64) - frac  # left edge of each pixel, destination coordinates
    inside = (u + 0.5 >= 0) & (u + 0.5 < size)
    first = int(np.argmax(inside))
    u = u[inside]
    if filt == "nearest":  # centre sampling; OpenCV's fixed point may pick the neighbour at exact ties
        idx = np.clip(np.floor((u + 0.5) * (length / size)), 0, length - 1).astype(np.int64)
        return first, idx[:, None].astype(np.int32), np.ones((len(u), 1), np.float32)
    if filt == "bilinear":
        x = (u + 0.5) * scale - 0.5
        left = np.floor(x)
        fx = x - left
    else:  # area, enlarging: OpenCV's INTER_AREA weights for scale < 1
        left = np.floor(u * scale)
        # OpenCV rounds this to float32 before its floor; so do we, to agree at exact multiples
        fx = ((u + 1) - (left + 1) * (size / length)).astype(np.float32).astype(np.float64)
        fx = np.where(fx <= 0, 0.0, fx - np.floor(fx))
    fx = np.where(left < 0, 0.0, fx)
    left = np.maximum(left, 0)
    fx = np.where(left >= length - 1, 0.0, fx)
    left = np.minimum(left, length - 1).astype(np.int64)
    idx = np.stack([left, np.minimum(left + 1, length - 1)], axis=1)
    w = np.stack([1.0 - fx, fx], axis=1)
    return first, idx.astype(np.int32), w.astype(np.float32)


def _box_taps(length: int, size: int, frac: float, scale: float) -> tuple[int, np.ndarray, np.ndarray]:
    """Box filter: each destination pixel averages the source interval under it, weighted by overlap;
    a pixel only partly covered by the destination (sub-pixel origin) gets weights summing below 1."""
    n = size + (frac > 0)
    a = np.clip(np.arange(n, dtype=np.float64) - frac, 0, size) * scale  # source interval per pixel
    b = np.clip(np.arange(1, n + 1, dtype=np.float64) - frac, 0, size) * scale
    taps = int(math.ceil(scale)) + 1
    j = np.floor(a)[:, None] + np.arange(taps)[None, :]
    overlap = np.clip(np.minimum(j + 1, b[:, None]) - np.maximum(j, a[:, None]), 0, None)
    w = overlap / scale
    w[w < 1e-9] = 0.0
    idx = np.clip(j, 0, length - 1)
    return 0, idx.astype(np.int32), w.astype(np.float32)
