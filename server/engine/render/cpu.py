"""The CPU renderer: the kernels' NumPy/OpenCV reference (`shiftaudit.kernels.reference`) applied to
each placement's tables. Frames are rendered in pixel space (float32, RGB, 0..255), black outside the
destination or inpainted where a placement asks for it, then normalised into the engine's layout and
dtype. The GPU kernels do the same arithmetic on the same tables."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby

import numpy as np

from shiftaudit.kernels import reference
from shiftaudit.kernels.tables import Normalisation

from ..geometry import Placement, frame_tables
from . import Frame, HostBatch


def placed_blocks(src: np.ndarray, placements: Sequence[Placement]
                  ) -> Iterator[tuple[tuple, np.ndarray, tuple[int, int]]]:
    """Per placement of one source image: a key naming its block, the block (pixel space, float32 RGB)
    and where the block's top-left lies on the canvas, (y, x); black elsewhere. Placements that differ
    by whole-pixel moves share one resampling, so one block and key (a translate pair costs one resize);
    an inpainted frame is its own whole canvas, at (0, 0)."""
    blocks: dict[tuple, np.ndarray] = {}
    for i, p in enumerate(placements):
        frame = frame_tables(p)
        key = p.resample_key()
        if key not in blocks:
            blocks[key] = reference.resample(src, frame.rows, frame.cols)
        if frame.inpaint:
            yield ("inpainted", i), reference.canvas(blocks[key], frame), (0, 0)
        else:
            yield key, blocks[key], (frame.rows.start, frame.cols.start)


def render_frames(src: np.ndarray, placements: Sequence[Placement]) -> list[np.ndarray]:
    """Pixel-space canvases (H, W, 3) float32 of the placements of one source image."""
    return [reference.paste(block, at, p.canvas)
            for (_, block, at), p in zip(placed_blocks(src, placements), placements)]


class CpuRenderer:
    name = device = "cpu"

    def render(self, frames: Sequence[Frame], norm: Normalisation, layout: str, dtype: np.dtype) -> HostBatch:
        """One batch; consecutive frames of one image share their resamples, and frames showing one block
        (a pair's two places, a crop's two windows) its normalisation: each frame is placed straight
        into its slot of the batch, and no canvas is made for a frame on black."""
        nchw = layout == "NCHW"
        out = reference.empty_batch(len(frames), frames[0][1].canvas, nchw, dtype)
        i = 0
        for _, group in groupby(frames, key=lambda f: id(f[0])):
            group = list(group)
            normalised: dict[tuple, np.ndarray] = {}
            for key, block, at in placed_blocks(group[0][0].pixels, [p for _, p in group]):
                if key not in normalised:
                    normalised[key] = reference.normalise_block(block, norm, nchw)
                reference.place(out[i], normalised[key], at, norm, nchw)
                i += 1
        return HostBatch(out)
