"""The per-layer measures (paper §3; docs/layers.md), for one pair of activations each, and their sums.

For a tensor F of cumulative stride s (input pixels per cell) and frames A and B = A translated by δ:

- pooled invariance error ‖GAP F(B) − GAP F(A)‖ / ‖GAP F(A)‖ (GAP: each channel's mean). By the paper's
  Claim it is ~0 when F is shiftable: a global pool of a shiftable representation is invariant.
- shiftability error ‖F(B) − T_{δ/s} F(A)‖ / ‖T_{δ/s} F(A)‖ over the interior, T a band-limited
  (Fourier) translation by δ/s cells: how far F(B) is from what F's samples predict for the shift.
- equivariance error, for C = A translated by k·δ with k a whole multiple of the stride on both axes:
  ‖F(C) − T F(A)‖ / ‖T F(A)‖ over the interior, T a move by whole cells (exact for convolutions away
  from the border, whatever the aliasing).

The interior leaves out, on each side, the cells whose receptive field reaches past the canvas (the
zero padding's band, where F(B) is not a translate of F(A) even for a shiftable F), at most a quarter
of the side, and the cells the translation brings in from outside.

Every value is summed as an integer in units of 2^-32 (`Sums`), so shards merge to the very sums of one
run, in any order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..intervals import ratio_se, t_quantile

UNIT = 2**32
MEASURES = ("pooled_invariance", "shiftability", "equivariance")


@dataclass
class Sums:
    """One measure of one tensor over pairs: how many pairs gave a value, how many could not (no
    interior, or a reference of zero norm against a non-zero one), the sum and sum of squares; and over
    the images the pairs come from (each image's n pairs and sum s as n², s², sn), for intervals that take
    the image as the unit."""

    pairs: int = 0
    undefined: int = 0
    total: int = 0  # in units of 2^-32
    squares: int = 0
    images: int = 0  # 0 in a profile made before clustering: each pair then counts as an image
    pairs_sq: int = 0
    total_sq: int = 0  # in units of 2^-64
    total_pairs: int = 0  # in units of 2^-32

    def add(self, value: float | None) -> None:
        """A pair's value, within one image (`add_image` folds the image in)."""
        if value is None:
            self.undefined += 1
            return
        self.pairs += 1
        self.total += round(value * UNIT)
        self.squares += round(value * value * UNIT)

    def add_image(self, image: Sums) -> None:
        """One image's pairs (``image`` holds only them) as one cluster."""
        n, s = image.pairs, image.total
        self.merge(Sums(n, image.undefined, s, image.squares, 1 if n else 0, n * n, s * s, s * n))

    def merge(self, other: Sums) -> None:
        for name in ("pairs", "undefined", "total", "squares", "images", "pairs_sq", "total_sq", "total_pairs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> list[int]:
        return [self.pairs, self.undefined, self.total, self.squares, self.images, self.pairs_sq, self.total_sq,
                self.total_pairs]

    @classmethod
    def from_json(cls, values: list[int]) -> Sums:
        """Eight numbers, or the four of a profile made before clustering."""
        return cls(*(int(v) for v in values))

    def summary(self) -> dict:
        """The mean with an image-clustered 95 % interval, Student's t on images - 1 degrees of freedom (the
        lower end clipped at 0: the errors are norms; no upper end from one image)."""
        out: dict = {"value": None, "ci95": None, "pairs": self.pairs, "undefined": self.undefined}
        if self.pairs:
            k, n, s = (self.images, self.pairs_sq, self.total_sq) if self.images else \
                (self.pairs, self.pairs, self.squares * UNIT)  # before clustering: a pair an image
            mean, se = ratio_se(self.total, self.pairs, k, s, self.total_pairs if self.images else self.total, n, UNIT)
            half = float(t_quantile(k - 1) * se) if k > 1 else math.inf
            out["value"] = mean = float(mean)
            out["ci95"] = [max(0.0, mean - half), mean + half if math.isfinite(half) else None]
        return out


def pooled_error(a: np.ndarray, b: np.ndarray) -> float | None:
    """‖GAP(b) − GAP(a)‖ / ‖GAP(a)‖ for (channels, rows, columns) activations."""
    ga, gb = a.mean(axis=(1, 2), dtype=np.float64), b.mean(axis=(1, 2), dtype=np.float64)
    return _relative(gb - ga, ga)


def translate(f: np.ndarray, cells: tuple[float, float]) -> np.ndarray:
    """``f`` (channels, rows, columns) translated by ``cells`` (rows, columns; any real numbers) with
    band-limited interpolation: the tensor is mirrored to twice its size on both axes (so its periodic
    extension has no jump at the border, as a DCT-II assumes), phase-shifted in the Fourier domain and
    cropped back. A whole-cell move is then an exact move of the mirrored tensor."""
    _, h, w = f.shape
    ext = np.concatenate([f, f[:, ::-1]], axis=1)
    ext = np.concatenate([ext, ext[:, :, ::-1]], axis=2).astype(np.float64)
    ty, tx = cells
    phase = np.exp(-2j * np.pi * (np.fft.fftfreq(2 * h)[:, None] * ty + np.fft.rfftfreq(2 * w)[None, :] * tx))
    moved = np.fft.irfft2(np.fft.rfft2(ext) * phase, s=(2 * h, 2 * w))
    return moved[:, :h, :w]


def interior(size: tuple[int, int], field: int | None, stride: tuple[float, float],
             cells: tuple[float, float]) -> tuple[int, int]:
    """Cells left out on each side (rows, columns): the receptive field's half-width in cells (the band
    the zero padding reaches; at most a quarter of the side, all of it when the field is unknown), and
    the cells a translation by ``cells`` brings in."""
    band = []
    for n, s, t in zip(size, stride, cells):
        quarter = (n - 1) // 4
        reach = quarter if field is None else min(quarter, math.ceil((field - 1) / 2 / s))
        band.append(reach + math.ceil(abs(t) - 1e-9))
    return band[0], band[1]


def shift_error(reference: np.ndarray, moved: np.ndarray, band: tuple[int, int]) -> float | None:
    """‖moved − reference‖ / ‖reference‖ over the interior (``band`` cells left out on each side); None
    when nothing is left."""
    by, bx = band
    _, h, w = reference.shape
    if h <= 2 * by or w <= 2 * bx:
        return None
    inner = (slice(None), slice(by, h - by), slice(bx, w - bx))
    return _relative(moved[inner].astype(np.float64) - reference[inner], reference[inner])


def whole_move(f: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """``f`` moved by whole cells (rows, columns); what enters is zero, and lies in the left-out band."""
    out = np.zeros(f.shape, np.float64)
    dy, dx = cells
    _, h, w = f.shape
    out[:, max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        f[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    return out


def _relative(diff: np.ndarray, reference: np.ndarray) -> float | None:
    """‖diff‖ / ‖reference‖; 0 when both are zero, None when only the reference is."""
    num, den = float(np.linalg.norm(diff)), float(np.linalg.norm(reference))
    if den == 0:
        return 0.0 if num == 0 else None
    return num / den
