"""Inpainted frames' guarantees, the metrics' formulas, and exact merging of shards."""
from __future__ import annotations

import json

import numpy as np
import pytest

from shiftaudit.server.engine.geometry import Placement
from shiftaudit.server.engine.metrics import ProtocolStats, Tally, wilson
from shiftaudit.server.engine.render.cpu import render_frames
from shiftaudit.server.engine.score import detect_output_kind, probabilities, score_unit


def test_inpainting_keeps_known_pixels_and_fills_every_other_with_a_weighted_average():
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    p = Placement((0, 0, 80, 60), (3, 150, 40, 30), (224, 224), "area", fill="inpaint")
    (frame,) = render_frames(src, [p])
    (black,) = render_frames(src, [Placement(p.src, p.dst, p.canvas, "area")])
    known = np.zeros((224, 224), bool)
    known[150:180, 3:43] = True
    np.testing.assert_array_equal(frame[known], black[known])
    outside = frame[~known]
    # every value is a convex combination of known values: inside their range, nothing left black
    for c in range(3):
        lo, hi = black[known][:, c].min(), black[known][:, c].max()
        assert lo - 1e-3 <= outside[:, c].min() and outside[:, c].max() <= hi + 1e-3
    assert (outside.sum(axis=1) > 0).all()


def test_wilson_interval_known_values():
    # k=0 of n=10: upper bound 0.2775 (standard tables)
    w = wilson(0, 10)
    assert w["value"] == 0 and w["ci95"][0] == 0 and w["ci95"][1] == pytest.approx(0.2775, abs=1e-4)
    w = wilson(5, 10)
    assert w["ci95"] == pytest.approx([0.2366, 0.7634], abs=1e-4)
    assert wilson(0, 0) == {"value": None, "ci95": [0.0, 1.0]}


def test_output_kind_detection_and_softmax():
    logits = np.array([[2.0, 1.0, -1.0], [0.0, 0.0, 5.0]])
    assert detect_output_kind(logits) == "logits"
    p = probabilities(logits, "logits")
    assert detect_output_kind(p) == "probabilities"
    np.testing.assert_allclose(p.sum(axis=1), 1)
    np.testing.assert_allclose(probabilities(p, "probabilities"), p)


def _random_scores(rng, n, frames):
    for _ in range(n):
        probs = rng.dirichlet(np.ones(5) * 0.5, size=frames)
        yield score_unit(probs), int(rng.integers(0, 5))


@pytest.mark.parametrize("frames,kind", [(2, "pair"), (6, "sequence")])
def test_merged_shards_equal_the_whole(frames, kind):
    rng = np.random.default_rng(1)
    units = list(_random_scores(rng, 300, frames))
    whole = ProtocolStats(kind)
    for s, label in units:
        whole.add(s, size=100 + label, label=label)
    shards = [ProtocolStats(kind) for _ in range(4)]
    for i, (s, label) in enumerate(units):
        shards[i * 7 % 4].add(s, size=100 + label, label=label)
    merged = ProtocolStats(kind)
    for shard in shards:
        merged.merge(shard)
    assert (merged.overall.pairs, merged.overall.changes) == (whole.overall.pairs, whole.overall.changes)
    assert merged.overall.pairs == 300 * (frames - 1)
    assert {k: (t.pairs, t.changes) for k, t in merged.strata.items()} == \
        {k: (t.pairs, t.changes) for k, t in whole.strata.items()}
    assert merged.summary() == whole.summary()  # fixed-point sums: the same bits in any order
    assert ProtocolStats.from_json(json.loads(json.dumps(merged.to_json()))).summary() == whole.summary()


def test_pair_tally_counts_changes_and_mac():
    t = Tally()
    for pa, pb in [([0.7, 0.3], [0.4, 0.6]), ([0.9, 0.1], [0.8, 0.2])]:
        s = score_unit(np.array([pa, pb]))
        t.add(s.changes, s.abs_diffs)
    assert (t.pairs, t.changes) == (2, 1)
    assert t.summary()["mac"]["value"] == pytest.approx((0.3 + 0.1) / 2)
