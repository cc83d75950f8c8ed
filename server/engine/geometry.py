"""Placements: which rectangle of the source image lands where on the model's canvas, with which filter
(``area``, ``bilinear``, ``nearest``: OpenCV's conventions, `taps`) and fill. `taps` turns a placement
into the per-axis tables every renderer consumes. Light (no NumPy): the option groups name its filters,
and the command line's help is built from them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

FILTERS = ("area", "bilinear", "nearest")


@dataclass(frozen=True)
class Placement:
    """One frame: source window ``src`` (x, y, w, h; whole source pixels) drawn into the destination
    rectangle ``dst`` (x, y: canvas pixels, may be fractional or negative; w, h: whole pixels) of a
    canvas of ``canvas`` = (height, width). Canvas pixels the destination does not cover are filled
    by ``fill`` (``black``: zero in pixel space; ``inpaint``: normalised convolution)."""

    src: tuple[int, int, int, int]
    dst: tuple[float, float, int, int]
    canvas: tuple[int, int]
    filter: str = "area"
    fill: str = "black"

    def moved(self, dx: float, dy: float) -> Placement:
        x, y, w, h = self.dst
        return replace(self, dst=(x + dx, y + dy, w, h))

    def resized(self, w: int, h: int) -> Placement:
        return replace(self, dst=(self.dst[0], self.dst[1], w, h))

    def resample_key(self) -> tuple:
        """Everything that decides the resampled pixels; placements with equal keys differ only by a
        whole-pixel move, so a renderer may resample once and paste several times."""
        x, y, w, h = self.dst
        return (self.src, w, h, x - math.floor(x), y - math.floor(y), self.filter)


def resolve_filter(name: str, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> str:
    """``auto`` is area when any axis shrinks (antialiasing), bilinear when the window is enlarged."""
    if name == "auto":
        return "area" if dst_wh[0] < src_wh[0] or dst_wh[1] < src_wh[1] else "bilinear"
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of auto, {', '.join(FILTERS)}")
    return name
