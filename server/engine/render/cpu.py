"""The CPU renderer: the kernels' NumPy/OpenCV reference (`shiftaudit.kernels.reference`) applied to
each placement's tables. Frames are rendered in pixel space (float32, RGB, 0..255) on a canvas that is
black outside the destination, inpainted where a placement asks for it, then normalised into the
engine's layout and dtype. The GPU kernels do the same arithmetic on the same tables."""
from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import numpy as np

from shiftaudit.kernels import reference
from shiftaudit.kernels.tables import Normalisation

from ..geometry import Placement, frame_tables
from . import Frame, HostBatch


def render_frames(src: np.ndarray, placements: Sequence[Placement]) -> list[np.ndarray]:
    """Pixel-space canvases (H, W, 3) float32 for the placements of one source image. Placements that
    differ by whole-pixel moves share one resampling (a translate pair costs one resize)."""
    blocks: dict[tuple, np.ndarray] = {}
    out = []
    for p in placements:
        frame = frame_tables(p)
        key = p.resample_key()
        if key not in blocks:
            blocks[key] = reference.resample(src, frame.rows, frame.cols)
        out.append(reference.canvas(blocks[key], frame))
    return out


class CpuRenderer:
    name = device = "cpu"

    def render(self, frames: Sequence[Frame], norm: Normalisation, layout: str, dtype: np.dtype) -> HostBatch:
        """One batch; consecutive frames of one image share their resamples."""
        canvases = []
        for _, group in groupby(frames, key=lambda f: id(f[0])):
            group = list(group)
            canvases += render_frames(group[0][0].pixels, [p for _, p in group])
        return HostBatch(reference.normalise(canvases, norm, layout, dtype))
