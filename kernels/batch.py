"""Host side of a render launch: the batch's frames as plain parameter tables (CV-CUDA style).

The geometry tables of every frame (server/geometry.py, the same the CPU renderer applies) are
concatenated into one index and one weight array, and each frame becomes one row of int64 fields
(render.cu's F_* enum) naming its source's address, its tables and where its block starts.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shiftaudit.server.geometry import Placement, tables

FRAME_FIELDS = 10


@dataclass(frozen=True)
class PackedBatch:
    index: np.ndarray  # int32, every frame's row then column taps
    weight: np.ndarray  # float32, likewise
    frames: np.ndarray  # (n, FRAME_FIELDS) int64
    canvas: tuple[int, int]
    inpaint: np.ndarray  # (n,) bool: frames whose canvas is inpainted


def pack(placements: Sequence[Placement], widths: Sequence[int], addresses: Sequence[int]) -> PackedBatch:
    """``placements[i]`` draws from an RGB uint8 source ``widths[i]`` pixels wide at ``addresses[i]``."""
    canvases = {p.canvas for p in placements}
    if len(canvases) != 1:
        raise ValueError(f"one batch, one canvas size; got {sorted(canvases)}")
    index: list[np.ndarray] = []
    weight: list[np.ndarray] = []
    size = 0
    frames = np.zeros((len(placements), FRAME_FIELDS), np.int64)
    for f, (p, width, address) in enumerate(zip(placements, widths, addresses)):
        rows, cols = tables(p)
        fields = [address, width]
        for t in (rows, cols):
            fields += [size, t.index.shape[0], t.index.shape[1]]
            index.append(t.index.ravel())
            weight.append(t.weight.ravel())
            size += t.index.size
        frames[f] = (*fields, rows.start, cols.start)
    return PackedBatch(np.concatenate(index).astype(np.int32), np.concatenate(weight).astype(np.float32), frames,
                       placements[0].canvas, np.array([p.fill == "inpaint" for p in placements]))
