"""Two engines judged on identical frames: a comparison of two reports of the same audit (config, seed
and images), pair by pair (``shiftaudit.compare/v1``).

An image's placements depend only on the seed and the image's content, so two audits with the same
options see the very same frames, and every compared pair of one can be matched with the other's
(by image digest, protocol, unit index and placements). Per protocol:

- each engine's P(top-1 change) and MAC, as their reports give them;
- the 2×2 table of (A flips, B flips) over the matched pairs and McNemar's exact test on its discordant
  cells (two-sided binomial test of b against c);
- the paired differences B − A of P(top-1 change) and of MAC (per pair |Δp_B| − |Δp_A|), with 95 %
  intervals that treat each *image* as the unit of sampling: several pairs come from one image and are
  not independent, so the variance is the cluster-robust one of a ratio estimator over images,
  Var = k/(k−1) · Σ_i (d_i − δ n_i)² / (Σ_i n_i)², d_i and n_i the image's summed differences and pairs,
  and Student's t on k−1 degrees of freedom (a few images make a wide interval, as they should);
- cross-engine agreement: the fraction of identical frames (and of first frames) on which A and B give
  the same top-1 class, with Wilson intervals, and the frames they disagree on.

Everything is computed from the two reports' per-image records, so ``compare`` is two audits and this,
wherever the audits ran (in process, on a server, sharded: merged reports are exact).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from .errors import InputError
from .intervals import exact, ratio_se, t_quantile
from .metrics import RECORD_DECIMALS, wilson
from .report import READABLE, SCHEMA

COMPARE_SCHEMA = "shiftaudit.compare/v1"
SHOWN = 20  # disagreeing frames listed per comparison
MICRO = 10**RECORD_DECIMALS  # the records' probabilities as integers: the MAC differences sum exactly
_FREE = {"batch"}  # options that do not change the frames


class CompareError(InputError):
    """Two reports that do not show the same frames (or not the same classes)."""


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the binomial test of b discordant pairs one way against c the
    other (p = 1/2 under no difference), doubled, at most 1."""
    n = b + c
    if n == 0:
        return 1.0
    log_half = n * math.log(0.5)  # the terms in log space: exact big-integer sums grow cubically with n
    tail = math.fsum(math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half)
                     for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail)


def clustered(sums: list[tuple[int, int]], unit: float = 1.0) -> dict:
    """Ratio estimate Σd/Σn over clusters (``(d_i, n_i)``: an image's summed differences, integers in units
    of 1/``unit``, and its pairs) with a cluster-robust 95 % interval (`intervals.ratio_se`, exact in
    integers), Student's t on k-1 degrees of freedom (few images widen it); with fewer than two clusters,
    no interval: [-1, 1]."""
    d, n = [d for d, _ in sums], [n for _, n in sums]
    total, k = sum(n), len(sums)
    if total == 0:
        return {"value": None, "ci95": [-1.0, 1.0]}
    delta, se = ratio_se(sum(d), total, k, sum(x * x for x in d), sum(x * y for x, y in zip(d, n)),
                         sum(y * y for y in n), unit)
    if k < 2:
        return {"value": float(delta), "ci95": [-1.0, 1.0]}
    half = float(t_quantile(k - 1) * se)
    return {"value": float(delta), "ci95": [max(-1.0, delta - half), min(1.0, delta + half)]}


def flip_increase(sums: list[tuple[float, int]], discordant: int) -> dict:
    """The paired increase of P(top-1 change), `clustered`; but with no discordant pair the clustered
    variance is 0 and says nothing: each image then counts as one trial that could have gone either way,
    and the increase lies within Clopper and Pearson's bound for none of k (in the simulation study of
    docs/decisions.md the plain interval, [0, 0] there, covered as little as 8 % of the time)."""
    if discordant or not sums:
        return clustered(sums)
    bound = float(exact(0, len(sums))[1])
    return {"value": 0.0, "ci95": [-bound, bound]}


def _check(a: dict, b: dict, class_map: dict[int, int] | None) -> None:
    for name, r in (("A", a), ("B", b)):
        if r.get("schema") not in READABLE:
            raise CompareError(f"report {name} is not a {SCHEMA} report")
    ca, cb = a["config"], b["config"]
    if ca["canvas"] != cb["canvas"]:
        raise CompareError(f"the engines take inputs of different sizes ({ca['canvas'][0]}x{ca['canvas'][1]} and "
                           f"{cb['canvas'][0]}x{cb['canvas'][1]}): they cannot see identical frames")
    differ = [k for k in ca.keys() | cb.keys() if k not in _FREE and ca.get(k) != cb.get(k)]
    if differ:
        k = sorted(differ)[0]
        raise CompareError(f"the reports were made with different options ({', '.join(sorted(differ))}; e.g. {k} "
                           f"{ca.get(k)} and {cb.get(k)}): their frames differ")
    oa, ob = a["model"].get("outputs"), b["model"].get("outputs")
    if class_map is None and oa and ob and oa != ob:
        raise CompareError(f"the models output {oa} and {ob} classes: give a class map (A's index to B's) to "
                           "compare their top-1 classes")


class _Paired:
    """The paired statistics of two reports' matched units, per protocol: the 2x2 flip table, each image's
    summed differences (the clusters of the increases), agreement frame by frame, the first disagreements."""

    def __init__(self, same: Callable[[int], int]) -> None:
        self.same = same  # A's class as B numbers it
        self.acc: dict[str, dict] = defaultdict(lambda: {"cells": [0, 0, 0, 0], "flip": [], "mac": [],
                                                         "frames": [0, 0], "first": [0, 0]})
        self.disagreements: list[dict] = []

    def add_image(self, rec_a: dict, rec_b: dict) -> None:
        units_b = {(u["protocol"], u["index"]): u for u in rec_b["units"]}
        per_image: dict[str, list] = defaultdict(lambda: [0, 0, 0])  # flips B − A, MAC B − A (in MICRO), pairs
        for ua in rec_a["units"]:
            ub = units_b.get((ua["protocol"], ua["index"]))
            if ub is None or ub["placements"] != ua["placements"]:
                raise CompareError(f"{rec_a['image']}: {ua['protocol']} unit {ua['index']} has other frames in "
                                   "report B (not the same audit?)")
            self._pairs(ua, ub, per_image[ua["protocol"]])
            self._frames(rec_a["image"], ua, ub)
        for protocol, (flips, mac, pairs) in per_image.items():
            self.acc[protocol]["flip"].append((flips, pairs))
            self.acc[protocol]["mac"].append((mac, pairs))

    def _pairs(self, ua: dict, ub: dict, d: list) -> None:
        """A unit's pairs of consecutive frames: whether each engine flipped, and the image's differences."""
        cells = self.acc[ua["protocol"]]["cells"]
        for j in range(len(ua["top1"]) - 1):
            fa = ua["top1"][j] != ua["top1"][j + 1]
            fb = ub["top1"][j] != ub["top1"][j + 1]
            cells[2 * (not fa) + (not fb)] += 1  # both, A only, B only, neither
            d[0] += int(fb) - int(fa)
            a0, a1, b0, b1 = (round(u["p_top1"][i] * MICRO) for u in (ua, ub) for i in (j, j + 1))
            d[1] += abs(b1 - b0) - abs(a1 - a0)
            d[2] += 1

    def _frames(self, image: str, ua: dict, ub: dict) -> None:
        """A unit's frames: whether the engines agree on each."""
        s = self.acc[ua["protocol"]]
        for j, (ca, cb) in enumerate(zip(ua["top1"], ub["top1"])):
            agree = self.same(ca) == cb
            s["frames"][0] += agree
            s["frames"][1] += 1
            if j == 0:
                s["first"][0] += agree
                s["first"][1] += 1
            if not agree and len(self.disagreements) < SHOWN:
                self.disagreements.append({"image": image, "protocol": ua["protocol"], "index": ua["index"],
                                           "frame": j, "a": ca, "b": cb,
                                           **({"a_name": ua["top1_names"][j]} if "top1_names" in ua else {}),
                                           **({"b_name": ub["top1_names"][j]} if "top1_names" in ub else {})})

    def protocol(self, name: str, a: dict, b: dict) -> dict:
        s = self.acc[name]
        both, a_only, b_only, neither = s["cells"]
        return {"pairs": sum(s["cells"]),
                "a": {k: a["protocols"][name][k] for k in ("p_top1_change", "mac")},
                "b": {k: b["protocols"][name][k] for k in ("p_top1_change", "mac")},
                "flips": {"both": both, "a_only": a_only, "b_only": b_only, "neither": neither},
                "mcnemar_p": mcnemar_exact(a_only, b_only),
                "p_top1_change_increase": flip_increase(s["flip"], a_only + b_only), "mac_increase": clustered(s["mac"], MICRO),
                "agreement": {"frames": wilson(*s["frames"]), "first_frames": wilson(*s["first"])},
                "images": len(s["flip"])}


def compare_reports(a: dict, b: dict, class_map: dict[int, int] | None = None) -> dict:
    """The comparison of engine B against engine A (the baseline) on the frames both reports share,
    which must be all of them. ``class_map`` maps A's class indices to B's (classes it leaves out never
    agree)."""
    _check(a, b, class_map)
    records_b = {r["sha256"]: r for r in b["images"]}
    if {r["sha256"] for r in a["images"]} != set(records_b):
        only = sorted({r["image"] for r in a["images"] if r["sha256"] not in records_b}
                      | {r["image"] for r in b["images"] if r["sha256"] not in {x["sha256"] for x in a["images"]}})
        raise CompareError(f"the reports audited different images (e.g. {', '.join(only[:3])} in one only)")
    paired = _Paired((lambda c: c) if class_map is None else (lambda c: class_map.get(c, -1)))
    for rec_a in sorted(a["images"], key=lambda r: r["sha256"]):  # a fixed order: sums are the same bits however listed
        paired.add_image(rec_a, records_b[rec_a["sha256"]])
    return {"schema": COMPARE_SCHEMA,
            "a": {"model": a["model"], "tool": a["tool"], "device": a["device"]},
            "b": {"model": b["model"], "tool": b["tool"], "device": b["device"]},
            "config": a["config"], "class_map": None if class_map is None else {str(k): v for k, v in class_map.items()},
            "images": len(a["images"]), "protocols": {name: paired.protocol(name, a, b) for name in a["config"]["protocols"]},
            "disagreements": paired.disagreements}
