"""What the kernels take (CV-CUDA style: per-sample parameters as host-computed tables): the per-axis
tap tables of a frame, where its block lands on the canvas, and the per-channel normalisation. Who
computes them (the audit's geometry) is not the kernels' concern: they gather and multiply."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only types: the option groups import these, and a --help needs no NumPy
    import numpy as np


@dataclass(frozen=True)
class AxisTable:
    """Taps of one axis: canvas position ``start + i`` is ``sum_k weight[i, k] * source[index[i, k]]``.
    Unused taps have weight 0 and a valid index. Rows may run past the canvas; renderers clip them."""

    start: int
    index: np.ndarray  # (n, K) int32, absolute source coordinates
    weight: np.ndarray  # (n, K) float32

    @property
    def coverage(self) -> np.ndarray:
        """Fraction of each destination pixel covered by the source (1 inside, <1 on a sub-pixel edge)."""
        return self.weight.sum(axis=1)


@dataclass(frozen=True)
class FrameTables:
    """One frame: its (rows, columns) tables on a canvas of ``canvas`` = (height, width), black outside
    the block, or inpainted from it when ``inpaint``."""

    rows: AxisTable
    cols: AxisTable
    canvas: tuple[int, int]
    inpaint: bool = False


@dataclass(frozen=True)
class Normalisation:
    """Per-channel ``scale``/``bias`` so that model_input = pixel_0_255 * scale + bias, in the model's
    ``channel_order`` (RGB or BGR; sources are RGB)."""

    scale: np.ndarray
    bias: np.ndarray
    channel_order: str

    @property
    def bgr(self) -> bool:
        return self.channel_order == "BGR"
