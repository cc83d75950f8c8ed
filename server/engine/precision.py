"""Precision targets (`AuditOptions.target_halfwidth`): when an interval is narrow enough, and how many
pairs per image reach it with the fewest frames (`AuditOptions.choose_pairs`).

Pairs of one image are alike: with an intra-image correlation ρ, c pairs of an image weigh as c / (1 +
(c - 1) ρ) independent ones (the design effect). Frames grow with the pairs, so for ρ > 0 one pair per
image reaches a half-width with the fewest frames, as long as there are images enough; more pairs per
image pay only when the images would run out first, and cannot narrow the interval below what the
images' own spread allows. The choice is made once, after a pilot of `PILOT_IMAGES` images (the first in
content-hash order, each with at least two pairs so that ρ can be measured), from the P(top-1 change)
and ρ measured there, and the report says what was chosen and why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .intervals import exact, t_quantile
from .metrics import ProtocolStats, Tally

PILOT_IMAGES = 10
PILOT_PAIRS = 2  # at least, so that the pilot measures how alike an image's pairs are
CANDIDATES = np.arange(1, 65)  # the pairs per image the choice weighs
MOST_IMAGES = 10**7  # beyond this many images a target counts as out of reach


def halfwidth(estimate: dict) -> float | None:
    """The wider side of an estimate's interval (they are asymmetric near 0 and 1); None when nothing was
    measured."""
    if estimate["value"] is None:
        return None
    return max(estimate["value"] - estimate["ci95"][0], estimate["ci95"][1] - estimate["value"])


def correlation(tally: Tally) -> float | None:
    """The intra-image correlation of the pairs' changes, from the design effect of the tally's clustered
    sums: (deff - 1) / (c - 1), c = Σn²/Σn the pairs of an image (weighted as the variance weighs them),
    in [0, 1]; 0 when every image has one pair. None with no change (or only changes): nothing says how
    alike the pairs are, and the interval counts each image as one trial (`intervals.effective_size`)."""
    n, d, k = tally.pairs, tally.changes, tally.images
    if not 0 < d < n:
        return None
    p, size = d / n, tally.pairs_sq / n
    if k < 2 or size <= 1:
        return 0.0
    residual = tally.changes_sq - 2 * p * tally.changes_pairs + p * p * tally.pairs_sq
    deff = residual * k / (k - 1) / (n * p * (1 - p))
    return float(min(1.0, max(0.0, (deff - 1) / (size - 1))))


def projected_halfwidth(p: float, rho: float | None, pairs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The half-width of P(top-1 change)'s interval (as `intervals.proportion` computes it) for ``images``
    images of ``pairs`` pairs each, if the rate ``p`` and correlation ``rho`` held; elementwise."""
    n = pairs * images
    if rho is None:  # nothing seen: each image one trial, whatever its pairs
        size = images.astype(np.float64)
    else:
        deff = 1 + (pairs - 1) * rho
        shrink = np.where(pairs > 1, (t_quantile(np.maximum(n - 1, 1)) / t_quantile(np.maximum(images - 1, 1))) ** 2,
                          1.0)
        size = np.minimum(n / deff * shrink, n)
    lower, upper = exact(p * size, size)
    return np.maximum(p - lower, upper - p)


def images_needed(p: float, rho: float | None, pairs: np.ndarray, target: float) -> np.ndarray:
    """The fewest images of ``pairs`` pairs each whose projected half-width is within ``target``
    (`MOST_IMAGES` + 1 when none is); elementwise over ``pairs``, by bisection (the half-width falls with
    the images)."""
    lo, hi = np.ones_like(pairs), np.full_like(pairs, MOST_IMAGES + 1)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        within = projected_halfwidth(p, rho, pairs, mid) <= target
        hi, lo = np.where(within, mid, hi), np.where(within, lo, mid)
    return np.where(projected_halfwidth(p, rho, pairs, lo) <= target, lo, hi)


@dataclass(frozen=True)
class Choice:
    """The pairs per image chosen after the pilot, and why."""

    pairs: int
    pilot_images: int  # images the pilot audited (the first in content-hash order, skips left out)
    pilot_pairs: int
    images_needed: int | None  # projected, at the pairs chosen (None: out of reach)
    frames_needed: int | None
    deciding: str | None  # the protocol that needs the most images
    protocols: dict[str, dict]  # per protocol: the pilot's p and correlation, the images it needs
    reason: str

    def to_json(self) -> dict:
        return {"pairs": self.pairs, "pilot_images": self.pilot_images, "pilot_pairs": self.pilot_pairs,
                "images_needed": self.images_needed, "frames_needed": self.frames_needed, "deciding": self.deciding,
                "protocols": self.protocols, "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict) -> Choice:
        return cls(**data)


def choose(stats: dict[str, ProtocolStats], pilot_images: int, pilot_pairs: int, pilot_frames: int,
           target: float, images_listed: int | None) -> Choice:
    """The pairs per image that reach ``target`` with the fewest frames within the images listed, projected
    from the pilot's statistics (``pilot_images`` images audited with ``pilot_pairs`` pairs each,
    ``pilot_frames`` frames). When no choice reaches it within them: the fewest pairs that come within 10 %
    of the fewest images any choice needs (beyond that, pairs of one image add next to nothing)."""
    needed = np.ones(len(CANDIDATES), np.int64)
    deciding = np.full(len(CANDIDATES), None, dtype=object)
    measured: dict[str, dict] = {}
    units = {name: s.overall.pairs / (s.overall.images * pilot_pairs) for name, s in stats.items() if s.overall.images}
    for name, per_unit in units.items():  # a unit's pairs: 1, or a sequence's steps
        t = stats[name].overall
        p, rho = t.changes / t.pairs, correlation(t)
        k = images_needed(p, rho, CANDIDATES * per_unit, target)
        deciding = np.where(k > needed, name, deciding)
        needed = np.maximum(needed, k)
        measured[name] = {"p_top1_change": p, "correlation": rho, "images_needed": k}
    frames = needed * CANDIDATES * pilot_frames / max(1, pilot_images * pilot_pairs)
    feasible = (needed <= (images_listed or MOST_IMAGES)) & (needed <= MOST_IMAGES)
    at = int(np.argmin(np.where(feasible, frames, np.inf))) if feasible.any() else \
        int(np.argmax(needed <= 1.1 * needed.min()))
    for m in measured.values():
        m["images_needed"] = int(k) if (k := m["images_needed"][at]) <= MOST_IMAGES else None
    known = needed[at] <= MOST_IMAGES
    choice = Choice(int(CANDIDATES[at]), pilot_images, pilot_pairs, int(needed[at]) if known else None,
                    math.ceil(frames[at]) if known else None, deciding[at], measured, "")
    reason = _reason(choice, int(needed[0]), math.ceil(frames[0]), bool(feasible[at]), target, images_listed)
    return Choice(**{**choice.to_json(), "reason": reason})


def _reason(c: Choice, one: int, one_frames: int, reachable: bool, target: float, listed: int | None) -> str:
    """The choice in a sentence a person acts on (``one``, ``one_frames``: what one pair per image needs)."""
    head = f"{c.pairs} pair{'s' if c.pairs > 1 else ''} per image, chosen after {c.pilot_images} pilot images at {c.pilot_pairs}"
    if c.deciding is None:
        return f"{head}: no protocol was measured in the pilot"
    m = c.protocols[c.deciding]
    said = (f"{c.deciding} decides: P(top-1 change) {m['p_top1_change']:.3f}, "
            + ("no change seen, so more pairs of an image cannot narrow its interval" if m["correlation"] is None
               else f"intra-image correlation {m['correlation']:.2f}"))
    if not reachable:
        best = f"about {c.images_needed} images would, at {c.pairs} per image" if c.images_needed else \
            "no number of images would"
        return (f"{head}: the {listed} images listed cannot reach +-{target:g} at any pairs per image ({said}); "
                f"{best}, and more pairs per image hardly help")
    if c.pairs == 1:
        return (f"{head}: more pairs of one image cost more frames than new images ({said}); about "
                f"{c.images_needed} images, {c.frames_needed} frames reach +-{target:g}")
    return (f"{head}: 1 pair per image would need about {one} images and {listed} are listed ({said}); about "
            f"{c.images_needed} images, {c.frames_needed} frames at {c.pairs} reach +-{target:g} ({one_frames} at 1 "
            "pair, were there images enough)")
