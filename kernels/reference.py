"""What each kernel computes, in NumPy and OpenCV: the CPU renderer runs these, and the kernels are
checked against them (`check.py`). Same float32 operations in the same order as the kernels, so the
gathers and the normalisation agree bit for bit; inpainting and softmax sum in another order.

- `resample` + `paste` (`canvas`): the `render` kernel (per-axis taps, black outside the block);
- `known_mask` + `inpaint`: `render_canvas` and the `inpaint_pass` iterations (normalised convolution
  with a binomial kernel, the paper's inpainting: known pixels kept, the border grows inwards by the
  kernel's radius per pass);
- `normalise` (`normalise_block` + `place`): the per-channel scale/bias into the engine's layout and dtype
  (`render`, `normalise`);
- `softmax`: the `score` kernels' probabilities.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .tables import AxisTable, FrameTables, Normalisation

BINOMIAL5 = np.array([1, 4, 6, 4, 1], np.float32) / 16


def resample(src: np.ndarray, rows: AxisTable, cols: AxisTable) -> np.ndarray:
    """The destination block (len(rows), len(cols), C) as float32: columns first, then rows, taps
    summed in order (the order the kernels use), each a float32 multiply then add."""
    r0, r1 = int(rows.index.min()), int(rows.index.max()) + 1
    c0, c1 = int(cols.index.min()), int(cols.index.max()) + 1
    # Column pass on a (W, H, C) copy of the band the taps touch: each tap then gathers whole
    # contiguous rows (NumPy's fast path) instead of scattered pixels. OpenCV's blocked transpose
    # is an order of magnitude faster than NumPy's on 3-channel images.
    band = cv2.transpose(src[r0:r1, c0:c1]).reshape(c1 - c0, r1 - r0, src.shape[2])
    cidx = cols.index - c0
    tmp = np.zeros((cidx.shape[0], r1 - r0, src.shape[2]), np.float32)
    prod = np.empty_like(tmp)
    for k in range(cidx.shape[1]):
        np.multiply(band[cidx[:, k]], cols.weight[:, k, None, None], out=prod)
        tmp += prod
    tmp = cv2.transpose(tmp).reshape(r1 - r0, cidx.shape[0], src.shape[2])
    out = np.zeros((rows.index.shape[0], cidx.shape[0], src.shape[2]), np.float32)
    prod = np.empty_like(out)
    for k in range(rows.index.shape[1]):
        np.multiply(tmp[rows.index[:, k] - r0], rows.weight[:, k, None, None], out=prod)
        out += prod
    return out


def _clip(start: int, n: int, limit: int) -> tuple[slice, slice]:
    """Slices (canvas, block) of a block of n rows starting at canvas row ``start``."""
    lo, hi = max(start, 0), min(start + n, limit)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    return slice(lo, hi), slice(lo - start, hi - start)


def paste(block: np.ndarray, at: tuple[int, int], canvas_hw: tuple[int, int]) -> np.ndarray:
    """The canvas (H, W, C) with the block pasted on black, its top-left at canvas pixel ``at`` = (y, x)."""
    h, w = canvas_hw
    canvas = np.zeros((h, w, block.shape[2]), np.float32)
    cy, by = _clip(at[0], block.shape[0], h)
    cx, bx = _clip(at[1], block.shape[1], w)
    canvas[cy, cx] = block[by, bx]
    return canvas


def known_mask(rows: AxisTable, cols: AxisTable, canvas_hw: tuple[int, int]) -> np.ndarray:
    """The canvas pixels the destination covers fully: what inpainting keeps."""
    h, w = canvas_hw
    coverage = np.zeros((h, w), np.float32)
    cy, by = _clip(rows.start, rows.index.shape[0], h)
    cx, bx = _clip(cols.start, cols.index.shape[0], w)
    coverage[cy, cx] = np.outer(rows.coverage[by], cols.coverage[bx])
    return coverage >= 1 - 1e-6


def canvas(block: np.ndarray, frame: FrameTables) -> np.ndarray:
    """A frame's pixel-space canvas from its resampled block: pasted on black, inpainted if it asks."""
    out = paste(block, (frame.rows.start, frame.cols.start), frame.canvas)
    if frame.inpaint:
        out = inpaint(out, known_mask(frame.rows, frame.cols, frame.canvas))
    return out


def passes_needed(canvas_hw: tuple[int, int], kernel: np.ndarray = BINOMIAL5) -> int:
    """Enough passes to reach every canvas pixel from any single known pixel."""
    return math.ceil(max(canvas_hw) / (len(kernel) // 2)) + 1


def inpaint(canvas: np.ndarray, known: np.ndarray, kernel: np.ndarray = BINOMIAL5) -> np.ndarray:
    """(H, W, C) float32 canvas with the pixels outside ``known`` filled: Jacobi passes, each giving every
    unknown pixel with a known neighbour the kernel-weighted mean of its known neighbours, until every
    pixel is known."""
    rect = rectangle(known)
    return _inpaint_rectangle(canvas, rect, kernel) if rect else _inpaint_mask(canvas, known, kernel)


def rectangle(known: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) when the known pixels are exactly one rectangle (an embedded image), else None; an
    error when there is none (nothing to inpaint from)."""
    if not known.any():
        raise ValueError("nothing to inpaint from: no known pixel on the canvas")
    rows, cols = np.flatnonzero(known.any(axis=1)), np.flatnonzero(known.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return (y0, y1, x0, x1) if (y1 - y0) * (x1 - x0) == np.count_nonzero(known) else None


def _inpaint_rectangle(canvas: np.ndarray, rect: tuple[int, int, int, int], kernel: np.ndarray) -> np.ndarray:
    """`inpaint` of a rectangle of known pixels. A pass fills exactly the ring of width r (the kernel's
    radius) around the rectangle, which stays a rectangle; so each pass filters only its four strips (and
    r pixels around them) instead of the canvas: the same sums, ten times less work. Values and weights
    are filtered together as four channels; the canvas carries a margin of r zeros (the filter's border)."""
    h, w, c = canvas.shape
    r = len(kernel) // 2
    y0, y1, x0, x1 = rect
    work = np.zeros((h + 2 * r, w + 2 * r, c + 1), np.float32)
    work[r + y0:r + y1, r + x0:r + x1, :c] = canvas[y0:y1, x0:x1]
    work[r + y0:r + y1, r + x0:r + x1, c] = 1
    while (y0, y1, x0, x1) != (0, h, 0, w):
        ny0, ny1, nx0, nx1 = max(0, y0 - r), min(h, y1 + r), max(0, x0 - r), min(w, x1 + r)
        filled = []
        for a, b, p, q in ((ny0, y0, nx0, nx1), (y1, ny1, nx0, nx1), (y0, y1, nx0, x0), (y0, y1, x1, nx1)):
            if a < b and p < q:
                around = work[a:b + 2 * r, p:q + 2 * r]  # the strip and r pixels around it
                sums = cv2.sepFilter2D(around, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)[r:-r, r:-r]
                # values and weight over the weight: the values, and a weight of exactly 1 (w / w)
                filled.append((a, b, p, q, np.divide(sums, sums[..., c:], out=sums)))
        for a, b, p, q, values in filled:  # written once all are read: a Jacobi pass
            work[r + a:r + b, r + p:r + q] = values
        y0, y1, x0, x1 = ny0, ny1, nx0, nx1
    filled = work[r:r + h, r:r + w]
    # the values without the weights: OpenCV's copy of three channels of four is 10x NumPy's strided one
    return cv2.cvtColor(filled, cv2.COLOR_BGRA2BGR) if c == 3 else np.ascontiguousarray(filled[..., :c])


def _inpaint_mask(canvas: np.ndarray, known: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`inpaint` of any set of known pixels, filtering the whole canvas each pass."""
    known = known.copy()
    values = np.where(known[..., None], canvas, 0).astype(np.float32)
    for _ in range(passes_needed(known.shape, kernel)):
        if known.all():
            break
        weight = known.astype(np.float32)
        num = cv2.sepFilter2D(values, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT).reshape(values.shape)
        den = cv2.sepFilter2D(weight, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
        new = ~known & (den > 1e-6)
        values[new] = num[new] / den[new][:, None]
        known |= new
    return values


def normalise(canvases: Sequence[np.ndarray], norm: Normalisation, layout: str, dtype: np.dtype) -> np.ndarray:
    """RGB pixel-space canvases (H, W, 3) -> the engine's input batch: channel order, per-channel
    scale/bias, NCHW or NHWC, float32 or float16."""
    nchw = layout == "NCHW"
    out = empty_batch(len(canvases), canvases[0].shape[:2], nchw, dtype)
    for i, frame in enumerate(canvases):
        place(out[i], normalise_block(frame, norm, nchw), (0, 0), norm, nchw)
    return out


def empty_batch(n: int, canvas_hw: tuple[int, int], nchw: bool, dtype: np.dtype) -> np.ndarray:
    """The engine's input batch of ``n`` RGB frames, uninitialised: (n, 3, H, W) or (n, H, W, 3)."""
    h, w = canvas_hw
    return np.empty((n, 3, h, w) if nchw else (n, h, w, 3), dtype)


def normalise_block(block: np.ndarray, norm: Normalisation, nchw: bool) -> np.ndarray:
    """Pixel-space RGB (h, w, 3) -> ``value * scale + bias`` per channel in the engine's channel order,
    float32, (3, h, w) or (h, w, 3). Planes are split off by OpenCV first, so the arithmetic runs on
    contiguous memory: a strided HWC->CHW read costs 1.5x more on an idle core, and more while the
    engine competes for the caches."""
    if not nchw:
        out = np.multiply(block[..., ::-1] if norm.bgr else block, norm.scale)
        out += norm.bias
        return out
    planes = cv2.split(np.ascontiguousarray(block))
    out = np.empty((3, *block.shape[:2]), np.float32)
    for k, plane in enumerate(planes[::-1] if norm.bgr else planes):
        np.multiply(plane, norm.scale[k], out=out[k])
        out[k] += norm.bias[k]
    return out


def place(out: np.ndarray, block: np.ndarray, at: tuple[int, int], norm: Normalisation, nchw: bool) -> None:
    """One frame of the engine's input, ``out`` ((3, H, W) or (H, W, 3), float32 or float16): a normalised
    block (`normalise_block`) with its top-left at canvas pixel ``at`` = (y, x), clipped to the canvas,
    and black around it: ``0 * scale + bias`` as for any zero pixel. So frames that show one resampled
    block at several places (a translate pair, a crop's two windows) normalise it once."""
    h, w = out.shape[1:] if nchw else out.shape[:2]
    bh, bw = block.shape[1:] if nchw else block.shape[:2]
    cy, by = _clip(at[0], bh, h)
    cx, bx = _clip(at[1], bw, w)
    if (cy.stop - cy.start, cx.stop - cx.start) != (h, w):
        black = np.float32(0) * norm.scale + norm.bias
        out[...] = black[:, None, None] if nchw else black
    if nchw:
        out[:, cy, cx] = block[:, by, bx]
    else:
        out[cy, cx] = block[by, bx]


def softmax(out: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, max-subtracted."""
    out = out.astype(np.float64)
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
