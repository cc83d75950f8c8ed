"""The paper's sensitivity measures as mergeable counts and sums (DESIGN.md §1).

- P(top-1 change): the fraction of compared frame pairs whose top-1 class differs (for sequences,
  consecutive frames: ImageNet-P's flip probability).
- MAC, mean absolute change: the mean of |p_A[c*] - p_B[c*]|, c* the first frame's top class.

Both with 95 % intervals that take the image as the unit (`intervals.py`): the pairs of one image are
not independent. Everything is kept as counts and sums, the image-clustered ones included (each image's
pairs n, changes d and sum of |Δp| s enter as n², d², dn, s², sn), so statistics of shards (batches,
processes, servers) merge into the statistics of the whole. Sums are integers in units of 2^-52 (every
|change| lies in [0, 1]), so a merge is exact in any order: shards give the very bits of one audit of
everything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import intervals

RECORD_DECIMALS = 6  # a record's probabilities (the paper's curves), rounded: what compare and merge replay
UNIT = 2.0**52  # fixed point of the sums; a unit adds at most 256 values < 2^52 each: no int64 overflow
CONFIDENCE_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def wilson(k: int, n: int) -> dict:
    """Proportion k/n with its Wilson score 95 % interval (sound near 0 and 1, unlike the normal one)."""
    if n == 0:
        return {"value": None, "ci95": [0.0, 1.0]}
    p = k / n
    z2 = intervals.Z * intervals.Z
    den = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / den
    half = intervals.Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends where rounding would miss them
    hi = 1.0 if k == n else min(1.0, centre + half)
    return {"value": p, "ci95": [lo, hi]}


CLUSTERED = ("images", "pairs_sq", "changes_sq", "changes_pairs", "abs_sum_sq", "abs_sum_pairs", "most_pairs")


@dataclass
class Tally:
    """Compared frame pairs of one stratum: their sums, and the sums over the images they come from."""

    pairs: int = 0
    changes: int = 0
    abs_sum: int = 0  # in units of 2^-52
    abs_squares: int = 0
    images: int = 0  # images with a pair in this stratum (0 in a report made before clustering: not known)
    pairs_sq: int = 0  # Σ n_i²
    changes_sq: int = 0  # Σ d_i²
    changes_pairs: int = 0  # Σ d_i n_i
    abs_sum_sq: int = 0  # Σ s_i², in units of 2^-104
    abs_sum_pairs: int = 0  # Σ s_i n_i, in units of 2^-52
    most_pairs: int = 0  # the most pairs one image has here (1: every pair from another image)

    def add(self, changes: np.ndarray, diffs: np.ndarray) -> None:
        """A unit's pairs, within one image (`add_image` folds the image in)."""
        self.pairs += len(changes)
        self.changes += int(changes.sum())
        self.abs_sum += int(np.rint(diffs * UNIT).astype(np.int64).sum())
        self.abs_squares += int(np.rint(diffs * diffs * UNIT).astype(np.int64).sum())

    def add_image(self, image: Tally) -> None:
        """One image's pairs (``image`` holds only them) as one cluster."""
        n, d, s = image.pairs, image.changes, image.abs_sum
        if n:
            self.merge(Tally(n, d, s, image.abs_squares, 1, n * n, d * d, d * n, s * s, s * n, n))

    def merge(self, other: Tally) -> None:
        """The pairs of other images (a shard's, a part's)."""
        for name in ("pairs", "changes", "abs_sum", "abs_squares", *CLUSTERED[:-1]):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.most_pairs = max(self.most_pairs, other.most_pairs)

    def clustered(self) -> Tally:
        """These sums with their images known: a tally of a report made before clustering counts each
        pair as an image of its own (the intervals it always had, as near as exact ones are)."""
        if self.images or not self.pairs:
            return self
        return Tally(self.pairs, self.changes, self.abs_sum, self.abs_squares, self.pairs, self.pairs, self.changes,
                     self.changes, self.abs_squares * int(UNIT), self.abs_sum, 1)

    def p_top1_change(self) -> dict:
        t = self.clustered()
        return intervals.proportion(t.pairs, t.changes, t.images, t.changes_sq, t.changes_pairs, t.pairs_sq,
                                    t.most_pairs)

    def summary(self) -> dict:
        t = self.clustered()
        return {"pairs": self.pairs, "p_top1_change": self.p_top1_change(),
                "mac": intervals.mean(t.abs_sum, t.pairs, t.images, t.abs_sum_sq, t.abs_sum_pairs, t.pairs_sq, UNIT)}

    def to_json(self) -> list[int]:
        return [self.pairs, self.changes, self.abs_sum, self.abs_squares, *(getattr(self, n) for n in CLUSTERED)]

    @classmethod
    def from_json(cls, values: list[int]) -> Tally:
        """Eleven numbers, or the four of a report made before clustering."""
        return cls(*(int(v) for v in values))


@dataclass(frozen=True)
class UnitScore:
    """What a unit's frames said: each frame's top-1 class and the probability of the first frame's top class
    (`score.score_unit` makes it from probabilities; a merge replays it from a report's records)."""

    top1: np.ndarray  # (T,) top-1 class of each frame
    p_star: np.ndarray  # (T,) probability of the first frame's top class in each frame

    @property
    def changes(self) -> np.ndarray:
        """(T-1,) whether the top-1 class changed between consecutive frames."""
        return self.top1[1:] != self.top1[:-1]

    @property
    def abs_diffs(self) -> np.ndarray:
        """(T-1,) |p_t[c*] - p_t+1[c*]| between consecutive frames."""
        return np.abs(np.diff(self.p_star))


def confidence_bin(p: float) -> int:
    return min(int(np.searchsorted(CONFIDENCE_EDGES, p, side="right")) - 1, len(CONFIDENCE_EDGES) - 2)


@dataclass
class ProtocolStats:
    """All statistics of one protocol; every field is a count, a sum or a dict of tallies."""

    kind: str  # pair | sequence
    overall: Tally = field(default_factory=Tally)
    strata: dict[str, Tally] = field(default_factory=dict)
    units: int = 0
    units_changed: int = 0  # units whose top-1 class is not the same in every frame
    labelled: int = 0  # units with a label
    first_correct: int = 0
    frames_labelled: int = 0
    frames_correct: int = 0

    def _stratum(self, key: str) -> Tally:
        return self.strata.setdefault(key, Tally())

    def add(self, score: UnitScore, size: int | None = None, label: int | None = None) -> None:
        changes, diffs = score.changes, score.abs_diffs
        self.overall.add(changes, diffs)
        self.units += 1
        self.units_changed += bool((score.top1 != score.top1[0]).any())
        self._stratum(f"confidence:{confidence_bin(float(score.p_star[0]))}").add(changes, diffs)
        if size is not None:
            self._stratum(f"size:{size}").add(changes, diffs)
        if label is not None:
            correct = score.top1 == label
            self.labelled += 1
            self.first_correct += bool(correct[0])
            self.frames_labelled += len(correct)
            self.frames_correct += int(correct.sum())
            self._stratum("first_frame:" + ("correct" if correct[0] else "wrong")).add(changes, diffs)

    _COUNTS = ("units", "units_changed", "labelled", "first_correct", "frames_labelled", "frames_correct")

    def to_json(self) -> dict:
        """Everything a merge needs (the report's ``tallies``)."""
        return {"kind": self.kind, "overall": self.overall.to_json(),
                "strata": {k: t.to_json() for k, t in sorted(self.strata.items())},
                **{name: getattr(self, name) for name in self._COUNTS}}

    @classmethod
    def from_json(cls, data: dict) -> ProtocolStats:
        return cls(data["kind"], Tally.from_json(data["overall"]),
                   {k: Tally.from_json(v) for k, v in data["strata"].items()},
                   **{name: int(data[name]) for name in cls._COUNTS})

    def add_image(self, image: ProtocolStats) -> None:
        """One finished image's statistics (it holds only its own units) as one cluster of every stratum."""
        self.overall.add_image(image.overall)
        for key, tally in image.strata.items():
            self._stratum(key).add_image(tally)
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + getattr(image, name))

    def as_image(self) -> ProtocolStats:
        """This (one image's) statistics folded as one cluster: the part a merge takes for the image."""
        folded = ProtocolStats(self.kind)
        folded.add_image(self)
        return folded

    def merge(self, other: ProtocolStats) -> None:
        self.overall.merge(other.overall)
        for key, tally in other.strata.items():
            self._stratum(key).merge(tally)
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> dict:
        out = {"kind": self.kind, **self.overall.summary()}
        p = out["p_top1_change"]
        out["consistency"] = {"value": None if p["value"] is None else 1 - p["value"],
                              "ci95": [1 - p["ci95"][1], 1 - p["ci95"][0]]}
        if self.kind == "sequence":
            out["sequences"] = self.units
            out["p_any_change"] = wilson(self.units_changed, self.units)
        out["by_confidence"] = [
            {"confidence": [CONFIDENCE_EDGES[i], CONFIDENCE_EDGES[i + 1]],
             **self.strata.get(f"confidence:{i}", Tally()).summary()}
            for i in range(len(CONFIDENCE_EDGES) - 1)]
        sizes = sorted(int(k.split(":")[1]) for k in self.strata if k.startswith("size:"))
        if sizes:
            out["by_size"] = [{"size": s, **self.strata[f"size:{s}"].summary()} for s in sizes]
        if self.labelled:
            out["accuracy"] = {"first_frame": wilson(self.first_correct, self.labelled),
                               "all_frames": wilson(self.frames_correct, self.frames_labelled)}
            out["by_first_frame"] = {k: self.strata.get(f"first_frame:{k}", Tally()).summary()
                                     for k in ("correct", "wrong")}
        return out
