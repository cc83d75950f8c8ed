"""The paper's sensitivity measures as mergeable counts and sums (DESIGN.md §1).

- P(top-1 change): the fraction of compared frame pairs whose top-1 class differs (for sequences,
  consecutive frames: ImageNet-P's flip probability), with a Wilson 95 % interval.
- MAC, mean absolute change: the mean of |p_A[c*] - p_B[c*]|, c* the first frame's top class, with a
  normal 95 % interval clipped to [0, 1].

Everything is kept as counts and sums, so statistics of shards (batches, processes, servers) merge
into the statistics of the whole. Sums are integers in units of 2^-52 (every |change| lies in [0, 1]),
so a merge is exact in any order: shards give the very bits of one audit of everything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Z95 = 1.959963984540054
UNIT = 2.0**52  # fixed point of the sums; a unit adds at most 256 values < 2^52 each: no int64 overflow
CONFIDENCE_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def wilson(k: int, n: int) -> dict:
    """Proportion k/n with its Wilson score 95 % interval (sound near 0 and 1, unlike the normal one)."""
    if n == 0:
        return {"value": None, "ci95": [0.0, 1.0]}
    p = k / n
    z2 = Z95 * Z95
    den = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / den
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends where rounding would miss them
    hi = 1.0 if k == n else min(1.0, centre + half)
    return {"value": p, "ci95": [lo, hi]}


def mean_ci(total: float, squares: float, n: int) -> dict:
    """Mean of values in [0, 1] from their sum and sum of squares, normal 95 % interval."""
    if n == 0:
        return {"value": None, "ci95": [0.0, 1.0]}
    mean = total / n
    if n == 1:
        return {"value": mean, "ci95": [0.0, 1.0]}
    var = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = Z95 * math.sqrt(var / n)
    return {"value": mean, "ci95": [max(0.0, mean - half), min(1.0, mean + half)]}


@dataclass
class Tally:
    """Compared frame pairs of one stratum."""

    pairs: int = 0
    changes: int = 0
    abs_sum: int = 0  # in units of 2^-52
    abs_squares: int = 0

    def add(self, changes: np.ndarray, diffs: np.ndarray) -> None:
        self.pairs += len(changes)
        self.changes += int(changes.sum())
        self.abs_sum += int(np.rint(diffs * UNIT).astype(np.int64).sum())
        self.abs_squares += int(np.rint(diffs * diffs * UNIT).astype(np.int64).sum())

    def merge(self, other: Tally) -> None:
        self.pairs += other.pairs
        self.changes += other.changes
        self.abs_sum += other.abs_sum
        self.abs_squares += other.abs_squares

    def summary(self) -> dict:
        return {"pairs": self.pairs,
                "p_top1_change": wilson(self.changes, self.pairs),
                "mac": mean_ci(self.abs_sum / UNIT, self.abs_squares / UNIT, self.pairs)}

    def to_json(self) -> list[int]:
        return [self.pairs, self.changes, self.abs_sum, self.abs_squares]

    @classmethod
    def from_json(cls, values: list[int]) -> Tally:
        pairs, changes, abs_sum, abs_squares = (int(v) for v in values)
        return cls(pairs, changes, abs_sum, abs_squares)


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
