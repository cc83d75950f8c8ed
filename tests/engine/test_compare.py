"""Two engines on identical frames (`compare_reports`): the known answers. An engine against itself;
a model against a copy with a perturbed final layer, counted by hand; a stride-1 net against its strided
twin; a comparison of merged shards; and reports that cannot be compared."""
from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pytest

from shiftaudit.client import audit
from shiftaudit.server.engine.audit import Judge, run_audit, run_judged
from shiftaudit.server.engine.compare import CompareError, clustered, compare_reports, mcnemar_exact
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.render.cpu import CpuRenderer
from shiftaudit.server.engine.report import Report, merge_reports
from shiftaudit.server.engine.runners import InputSpec, open_runner
from tests.support import EXAMPLE_IMAGES, assert_valid_report
from tests.support.models import cnn, perturbed_head

OPTIONS = {"protocols": ("crop", "embed-black", "translate-sweep"), "size": 40, "pairs_per_image": 3,
           "sweep_pixels": 3}


def test_mcnemar_exact_matches_the_binomial_by_hand():
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32) and mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact(2, 20) == pytest.approx(2 * sum(math.comb(22, k) for k in range(3)) / 2**22)
    assert mcnemar_exact(10_000, 10_000) == 1.0 and mcnemar_exact(9_000, 11_000) < 1e-40  # large n, at once


def test_clustered_interval_is_the_interval_of_the_image_means():
    """With the same number of pairs per image the clustered variance is that of the k image means
    (s²/k), not of the pairs as if independent: several pairs of one image count as one draw; and the
    quantile is Student's t on k-1 = 4 degrees of freedom (2.776445105, from tables), not the normal's."""
    means = [0.1, 0.4, -0.2, 0.3, 0.0]
    est = clustered([(m * 8, 8) for m in means])
    k, mean = len(means), sum(means) / len(means)
    s2 = sum((m - mean) ** 2 for m in means) / (k - 1)
    assert est["value"] == pytest.approx(mean)
    assert est["ci95"] == pytest.approx([mean - 2.776445105 * math.sqrt(s2 / k),
                                        mean + 2.776445105 * math.sqrt(s2 / k)])
    assert clustered([(3, 8)])["ci95"] == [-1.0, 1.0]  # one image: no interval


@pytest.fixture(scope="module")
def pair_of_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    a = cnn(d / "a.onnx", hw=64, stride=2)
    b = perturbed_head(a, d / "b.onnx")
    return audit(a, EXAMPLE_IMAGES, OPTIONS), audit(b, EXAMPLE_IMAGES, OPTIONS)


def test_an_engine_against_itself(pair_of_models):
    """No pair is discordant: the increase is 0, and with nothing seen its interval is that of each image as
    one trial that could have gone either way, ± Clopper and Pearson's bound for none of k images,
    1 - 0.025^(1/k) (not [0, 0]: the clustered variance of no discordance says nothing)."""
    a, _ = pair_of_models
    c = compare_reports(a, a)
    assert_valid_report(c, "compare")
    bound = 1 - 0.025 ** (1 / len(a["images"]))
    for p in c["protocols"].values():
        assert p["flips"]["a_only"] == p["flips"]["b_only"] == 0 and p["mcnemar_p"] == 1.0
        assert p["agreement"]["frames"]["value"] == p["agreement"]["first_frames"]["value"] == 1.0
        assert p["p_top1_change_increase"]["value"] == 0.0
        assert p["p_top1_change_increase"]["ci95"] == pytest.approx([-bound, bound], abs=1e-9)
        assert p["mac_increase"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    assert c["disagreements"] == []


def test_a_perturbed_head_counted_by_hand(pair_of_models):
    a, b = pair_of_models
    c = compare_reports(a, b)
    assert_valid_report(c, "compare")
    units_b = {(r["sha256"], u["protocol"], u["index"]): u for r in b["images"] for u in r["units"]}
    for name, p in c["protocols"].items():
        cells = {"both": 0, "a_only": 0, "b_only": 0, "neither": 0}
        agree = frames = 0
        for r in a["images"]:
            for u in (u for u in r["units"] if u["protocol"] == name):
                v = units_b[(r["sha256"], name, u["index"])]
                for j in range(len(u["top1"]) - 1):
                    fa, fb = u["top1"][j] != u["top1"][j + 1], v["top1"][j] != v["top1"][j + 1]
                    cells["both" if fa and fb else "a_only" if fa else "b_only" if fb else "neither"] += 1
                agree += sum(x == y for x, y in zip(u["top1"], v["top1"]))
                frames += len(u["top1"])
        assert p["flips"] == cells
        assert p["mcnemar_p"] == mcnemar_exact(cells["a_only"], cells["b_only"])
        assert p["agreement"]["frames"]["value"] == agree / frames
        assert p["p_top1_change_increase"]["value"] == pytest.approx((cells["b_only"] - cells["a_only"]) / p["pairs"])
    assert any(p["agreement"]["frames"]["value"] < 1 for p in c["protocols"].values())  # they do disagree
    assert c["disagreements"]


def test_merged_shards_compare_exactly_as_one_audit(pair_of_models, tmp_path):
    a, b = pair_of_models
    halves = [tmp_path / "one", tmp_path / "two"]
    for i, f in enumerate(sorted(EXAMPLE_IMAGES.iterdir())):
        halves[i % 2].mkdir(exist_ok=True)
        shutil.copy(f, halves[i % 2])
    models = tmp_path / "a.onnx", tmp_path / "b.onnx"
    cnn(models[0], hw=64, stride=2)
    perturbed_head(models[0], models[1])
    order = {r["image"]: i for i, r in enumerate(a["images"])}
    merged = [merge_reports([(str(h), Report.from_json(audit(m, h, OPTIONS))) for h in halves], order, 1.0).to_json()
              for m in models]
    assert compare_reports(*merged) == compare_reports(a, b)


def test_a_strided_twin_is_significantly_more_sensitive(tmp_path, zero_mean_sidecar):
    """conv stride 1 then global pooling is invariant to shifts away from the border (black is 0); the
    same net with stride 2 is not. A thousand random classes make near-ties, where a small change of the
    features changes the top-1 class."""
    options = {"protocols": ("embed-black",), "size": 24, "pairs_per_image": 40}
    smooth = zero_mean_sidecar(cnn(tmp_path / "s1.onnx", hw=64, stride=1, classes=1000))
    strided = zero_mean_sidecar(cnn(tmp_path / "s2.onnx", hw=64, stride=2, classes=1000))
    p = compare_reports(audit(smooth, EXAMPLE_IMAGES, options), audit(strided, EXAMPLE_IMAGES, options))
    p = p["protocols"]["embed-black"]
    assert p["flips"]["a_only"] == 0 and p["flips"]["b_only"] >= 8
    assert p["mcnemar_p"] < 0.01 and p["p_top1_change_increase"]["ci95"][0] > 0


def test_reports_that_do_not_show_the_same_frames_are_refused(pair_of_models, tmp_path):
    a, b = pair_of_models
    other_size = {**b, "config": {**b["config"], "canvas": [96, 96]}}
    with pytest.raises(CompareError, match="inputs of different sizes .* cannot see identical frames"):
        compare_reports(a, other_size)
    with pytest.raises(CompareError, match=r"different options \(seed; e.g. seed 0 and 1\)"):
        compare_reports(a, {**b, "config": {**b["config"], "seed": 1}})
    with pytest.raises(CompareError, match="output 10 and 1001 classes: give a class map"):
        compare_reports(a, {**b, "model": {**b["model"], "outputs": 1001}})
    fewer = {**b, "images": b["images"][1:]}
    with pytest.raises(CompareError, match="audited different images"):
        compare_reports(a, fewer)
    assert compare_reports(a, {**b, "config": {**b["config"], "batch": 7}})  # the batch does not change frames


class CountingRenderer(CpuRenderer):
    """The CPU renderer, counting the batches it renders."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def render(self, *args, **kwargs):
        self.batches += 1
        return super().render(*args, **kwargs)


def test_two_engines_judged_together_see_each_batch_rendered_once(tmp_path):
    """run_judged: the same results as two audits, with one render per batch when the engines take the
    same input, and one per engine when their preprocessing differs."""
    a = cnn(tmp_path / "a.onnx", hw=64, stride=2)
    b = perturbed_head(a, tmp_path / "b.onnx")
    options = AuditOptions(**OPTIONS).resolved(InputSpec("input", "NCHW", 64, 64, np.dtype(np.float32), None))
    sources = image_sources(EXAMPLE_IMAGES)
    other = replace(Preprocessing(), mean=(0.5, 0.5, 0.5))
    for pre_b, renders_per_batch in ((Preprocessing(), 1), (other, 2)):
        with open_runner(a) as ra, open_runner(b) as rb:
            counting = CountingRenderer()
            together = run_judged([Judge(ra, Preprocessing()), Judge(rb, pre_b), Judge(ra, Preprocessing())], sources,
                                  options, renderer=counting)
            assert together[2].images == together[0].images  # a third engine mirrors as the second does
            together = together[:2]
            apart = [run_audit(r, sources, p, options) for r, p in ((ra, Preprocessing()), (rb, pre_b))]
        batches = -(-together[0].frames // options.batch)
        assert counting.batches == renders_per_batch * batches
        for t, s in zip(together, apart):
            assert (t.images, t.skipped, t.frames) == (s.images, s.skipped, s.frames)
            assert {k: v.to_json() for k, v in t.stats.items()} == {k: v.to_json() for k, v in s.stats.items()}
