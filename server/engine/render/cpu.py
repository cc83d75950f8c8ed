"""The CPU renderer: our kernels' host build (`shiftaudit.kernels.renderer.HostRenderer`: the GPU's source,
compiled once per machine, so the GPU's bits), or where no compiler ever built it, the kernels' NumPy/OpenCV
reference (`shiftaudit.kernels.reference`) applied to each placement's tables: frames rendered in pixel
space (float32, RGB, 0..255), black outside the destination or inpainted where a placement asks for it,
then normalised into the engine's layout and dtype. Both give the same bits, inpainted frames aside (the
reference filters in OpenCV's order: within 1e-3 levels). The report names the one that rendered."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import groupby

import numpy as np

from shiftaudit.kernels import KernelBuildError, host_library, reference
from shiftaudit.kernels.launch import RENDERING
from shiftaudit.kernels.renderer import HostRenderer
from shiftaudit.kernels.tables import Normalisation

from ..geometry import Placement
from ..taps import frame_tables
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


@lru_cache(maxsize=1)
def unbuilt() -> str | None:
    """Why the kernels' host build cannot render in this process, or None when it can (looked up, or
    compiled, once)."""
    try:
        for name in RENDERING:  # the kernel files a render launches
            host_library(name)
    except (KernelBuildError, OSError) as e:
        return str(e)
    return None


class CpuRenderer:
    """Renders on the CPU with the kernels' host build where it exists, else with the NumPy reference."""

    device = "cpu"

    def __init__(self) -> None:
        why = unbuilt()
        self.host = HostRenderer() if why is None else None
        self.name = "cpu (compiled kernels)" if why is None else f"cpu (NumPy; no compiled kernels: {why})"

    def render(self, frames: Sequence[Frame], norm: Normalisation, layout: str, dtype: np.dtype) -> HostBatch:
        if self.host is None:
            return reference_batch(frames, norm, layout, dtype)
        return HostBatch(self.host.render([(image.digest, image.pixels) for image, _ in frames],
                                          [frame_tables(p) for _, p in frames], norm, layout, dtype))


def reference_batch(frames: Sequence[Frame], norm: Normalisation, layout: str, dtype: np.dtype) -> HostBatch:
    """One batch with the NumPy reference; consecutive frames of one image share their resamples, and frames
    showing one block (a pair's two places, a crop's two windows) its normalisation: each frame is placed
    straight into its slot of the batch, and no canvas is made for a frame on black."""
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
