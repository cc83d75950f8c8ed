"""A report checked against itself before it is merged: a part of a sharded audit is a file anyone can
edit, and a merge that trusted its tallies would publish whatever they say (a change count 1 -> 0 turns a
failing gate into a pass). Its statistics are replayed from its own per-image records and must agree:
counts exactly, the fixed-point sums of |Δp| within what the records' rounding (6 decimals) allows; every
count within its bounds; every protocol of its options present; its frames those of its records; no image
twice. What is wrong is refused (`MergeError`), naming the part and the first inconsistency found."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from .metrics import CONFIDENCE_EDGES, RECORD_DECIMALS, UNIT, ProtocolStats, Tally, UnitScore
from .protocols import REGISTRY
from .result import SCHEMA, MergeError

if TYPE_CHECKING:
    from .report import Report

ROUNDING = 3e-6  # per pair: |Δp| (and its square) from p rounded to 6 decimals, in the records


def check_part(where: str, report: Report) -> None:
    """``report`` agrees with itself, or MergeError naming ``where`` and what is wrong."""
    if report.schema != SCHEMA:
        raise MergeError(f"{where}: a {report.schema} report, made before the tallies knew their images: audit the "
                         f"part again to merge it ({SCHEMA})")
    protocols = list(report.config["protocols"])
    if sorted(report.tallies) != sorted(protocols):
        missing, extra = sorted(set(protocols) - set(report.tallies)), sorted(set(report.tallies) - set(protocols))
        raise MergeError(f"{where}: its tallies are not its options' protocols (missing: {', '.join(missing) or '-'}; "
                         f"extra: {', '.join(extra) or '-'})")
    _check_records(where, report.images, protocols)
    frames = sum(len(u["placements"]) for r in report.images for u in r["units"])
    if report.frames != frames:
        raise MergeError(f"{where}: it says {report.frames} frames, its records hold {frames}")
    _check_labels(where, report)
    replayed = replay(report.images, {p: t["kind"] for p, t in report.tallies.items()}, _sized(report.tallies))
    for protocol in protocols:
        _compare(f"{where}, {protocol}", ProtocolStats.from_json(report.tallies[protocol]), replayed[protocol],
                 _ambiguous(report.images, protocol))


def check_disjoint(parts: Iterable[tuple[str, Report]]) -> None:
    """No image in two parts (it would count twice)."""
    seen: dict[str, str] = {}
    for where, report in parts:
        for record in report.images:
            if record["image"] in seen:
                raise MergeError(f"{where}: image {record['image']} is also in {seen[record['image']]}: it would count "
                                 "twice")
            seen[record["image"]] = where


def _check_records(where: str, records: list[dict], protocols: list[str]) -> None:
    names = set()
    for record in records:
        if record["image"] in names:
            raise MergeError(f"{where}: image {record['image']} is recorded twice")
        names.add(record["image"])
        units = set()
        for u in record["units"]:
            key = (u["protocol"], u["index"])
            n = len(u["placements"])
            if u["protocol"] not in protocols or key in units:
                raise MergeError(f"{where}: {record['image']} has a {u['protocol']} unit {u['index']} "
                                 + ("twice" if key in units else "of a protocol its options do not name"))
            if n < 2 or len(u["top1"]) != n or len(u["p_top1"]) != n or not all(0 <= p <= 1 for p in u["p_top1"]):
                raise MergeError(f"{where}: {record['image']}'s {u['protocol']} unit {u['index']} is not a unit of "
                                 f"{n} frames with their classes and probabilities")
            if u["changes"] != sum(a != b for a, b in zip(u["top1"], u["top1"][1:])):
                raise MergeError(f"{where}: {record['image']}'s {u['protocol']} unit {u['index']} counts "
                                 f"{u['changes']} changes, its classes {u['top1']}")
            units.add(key)


def _check_labels(where: str, report: Report) -> None:
    """The labels' counts cover the part's images, audited or skipped, each once."""
    if report.labels is None:
        return
    names = {r["image"] for r in report.images} | {s["image"] for s in report.skipped}
    counted = report.labels["labelled_images"] + report.labels["unlabelled_images"]["count"]
    if counted != len(names) or report.labels["labelled_images"] < sum(r["label"] is not None for r in report.images):
        raise MergeError(f"{where}: its labels count {counted} images, {report.labels['labelled_images']} labelled; "
                         f"it holds {len(names)}, {sum(r['label'] is not None for r in report.images)} labelled")


def _sized(tallies: dict) -> set[str]:
    """The protocols stratified by the embedded size (a protocol this version lacks: as its tallies say)."""
    return {p for p, t in tallies.items()
            if (REGISTRY[p].by_size if p in REGISTRY else any(k.startswith("size:") for k in t["strata"]))}


def replay(records: list[dict], kinds: dict[str, str], sized: set[str]) -> dict[str, ProtocolStats]:
    """The statistics of ``records`` as the audit would sum them (each image one cluster), from their
    rounded probabilities."""
    stats = {p: ProtocolStats(kind) for p, kind in kinds.items()}
    for record in records:
        image = {p: ProtocolStats(kind) for p, kind in kinds.items()}
        for u in record["units"]:
            score = UnitScore(np.array(u["top1"]), np.array(u["p_top1"], dtype=np.float64))
            image[u["protocol"]].add(score, size=u.get("size") if u["protocol"] in sized else None,
                                     label=record["label"])
        for protocol, own in image.items():
            stats[protocol].add_image(own)
    return stats


def _ambiguous(records: list[dict], protocol: str) -> set[int]:
    """The confidence bins whose edge a unit's first probability lies on, within the records' rounding:
    the audit may have put it on either side."""
    bins = set()
    for record in records:
        for u in record["units"]:
            if u["protocol"] == protocol:
                for i, edge in enumerate(CONFIDENCE_EDGES[1:-1], 1):
                    if abs(u["p_top1"][0] - edge) <= 10.0 ** -RECORD_DECIMALS:
                        bins |= {i - 1, i}
    return bins


def _compare(where: str, claimed: ProtocolStats, replayed: ProtocolStats, ambiguous: set[int]) -> None:
    for name in ProtocolStats._COUNTS:
        if getattr(claimed, name) != getattr(replayed, name):
            raise MergeError(f"{where}: its tallies count {getattr(claimed, name)} {name}, its records "
                             f"{getattr(replayed, name)}")
    _tally(where, "all pairs", claimed.overall, replayed.overall)
    for key in sorted(set(claimed.strata) | set(replayed.strata)):
        if key.startswith("confidence:") and int(key.split(":")[1]) in ambiguous:
            continue
        _tally(where, key, claimed.strata.get(key, Tally()), replayed.strata.get(key, Tally()))


def _tally(where: str, what: str, claimed: Tally, replayed: Tally) -> None:
    """Counts equal, sums within the rounding, every value within its bounds."""
    if not 0 <= claimed.changes <= claimed.pairs or not 0 <= claimed.abs_squares <= claimed.abs_sum <= \
            claimed.pairs * UNIT:
        raise MergeError(f"{where}, {what}: its tallies are out of bounds ({claimed.to_json()}: 0 <= changes <= pairs "
                         "and 0 <= sum of squares <= sum of |Δp| <= pairs)")
    if (claimed.pairs, claimed.changes) != (replayed.pairs, replayed.changes):
        raise MergeError(f"{where}, {what}: its tallies count {claimed.pairs} pairs and {claimed.changes} changes, its "
                         f"records {replayed.pairs} and {replayed.changes}")
    counts = ("images", "pairs_sq", "changes_sq", "changes_pairs", "most_pairs")
    if [getattr(claimed, n) for n in counts] != [getattr(replayed, n) for n in counts]:
        raise MergeError(f"{where}, {what}: its tallies' sums over images are not its records' "
                         f"({[getattr(claimed, n) for n in counts]} against {[getattr(replayed, n) for n in counts]})")
    error = ROUNDING * UNIT  # of one |Δp|; of an image's sum s, n times that; of s², 2 s n error + (n error)²
    slack = error * max(1, claimed.pairs)
    if abs(claimed.abs_sum - replayed.abs_sum) > slack or abs(claimed.abs_squares - replayed.abs_squares) > slack \
            or abs(claimed.abs_sum_pairs - replayed.abs_sum_pairs) > error * max(1, claimed.pairs_sq) \
            or abs(claimed.abs_sum_sq - replayed.abs_sum_sq) > max(1, claimed.pairs_sq) * (2 * UNIT + error) * error:
        raise MergeError(f"{where}, {what}: its tallies' sum of |Δp| ({claimed.abs_sum / UNIT:.6f}) is not its records' "
                         f"({replayed.abs_sum / UNIT:.6f}), or not as they fall into images")
