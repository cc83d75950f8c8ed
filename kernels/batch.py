"""Host side of a render launch: the batch's frames as plain parameter tables (CV-CUDA style).

The tables of every frame are concatenated into one array of taps (render.cu's ``Tap``: where it
reads, in pixels, and its weight), and each frame becomes one row of int64 fields (render.cu's F_*
enum) naming its source's address, its tables and where its block starts. Sources are RGBX
(``rgbx``): one aligned 32-bit load a pixel.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tables import FrameTables

FRAME_FIELDS = 9


@dataclass(frozen=True)
class PackedBatch:
    taps: np.ndarray  # (taps, 2) int32: where, and the float32 weight's bits; every frame's rows then columns
    frames: np.ndarray  # (n, FRAME_FIELDS) int64
    canvas: tuple[int, int]
    inpaint: np.ndarray  # (n,) bool: frames whose canvas is inpainted


def rgbx(pixels: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as the kernels read it: (H, W, 4), the fourth byte unused."""
    out = np.zeros((*pixels.shape[:2], 4), np.uint8)
    out[..., :3] = pixels
    return out


def pack(frames: Sequence[FrameTables], widths: Sequence[int], addresses: Sequence[int]) -> PackedBatch:
    """``frames[i]`` draws from an RGBX source ``widths[i]`` pixels wide at ``addresses[i]``. Tables
    that frames share (the same arrays: a shift pair differs only in where its block starts) are
    packed once; the audit packs every batch on the host while the GPU renders the last one."""
    canvases = {f.canvas for f in frames}
    if len(canvases) != 1:
        raise ValueError(f"one batch, one canvas size; got {sorted(canvases)}")
    rows_of = np.zeros((len(frames), FRAME_FIELDS), np.int64)
    packed: dict[tuple[int, int, int], int] = {}  # (index array, weight array, step) -> first tap
    where: list[np.ndarray] = []
    weight: list[np.ndarray] = []
    size = 0
    for f, (frame, width, address) in enumerate(zip(frames, widths, addresses)):
        fields = [address]
        for t, step in ((frame.rows, width), (frame.cols, 1)):
            key = (id(t.index), id(t.weight), step)  # the frames keep the arrays alive: ids stay unique
            if key not in packed:
                packed[key] = size
                where.append(t.index.ravel() * np.int32(step))
                weight.append(t.weight.ravel())
                size += t.index.size
            fields += [packed[key], *t.index.shape]
        rows_of[f] = (*fields, frame.rows.start, frame.cols.start)
    taps = np.empty((size, 2), np.int32)
    taps[:, 0] = np.concatenate(where)
    taps[:, 1] = np.concatenate(weight).astype(np.float32, copy=False).view(np.int32)
    return PackedBatch(taps, rows_of, frames[0].canvas, np.array([f.inpaint for f in frames]))
