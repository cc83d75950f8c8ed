"""The image-clustered 95 % intervals (`intervals.py`): the quantiles against closed forms, the
exact binomial when every pair comes from its own image, and, by simulation against known truth, the
coverage of the intervals when the pairs of one image are alike (an intra-image correlation), next to the
coverage of the pair-based intervals they replace. Seeds are fixed: the same draws every run."""
from __future__ import annotations

import math

import numpy as np
import pytest

from shiftaudit.server.engine import intervals
from shiftaudit.server.engine.compare import clustered, flip_increase
from shiftaudit.server.engine.metrics import UNIT, Tally, wilson

SIMS = 4000  # per cell: the coverage of a 95 % interval is then measured within about ±0.007


def test_student_t_quantiles_against_closed_forms():
    assert intervals.t_quantile(1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-12)  # Cauchy: 12.7062
    p = 0.975  # two degrees of freedom: t = (2p - 1) sqrt(2 / (4p(1 - p)))
    assert intervals.t_quantile(2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-12)
    assert intervals.t_quantile(4) == pytest.approx(2.776445105, abs=1e-9)  # tables
    assert intervals.t_quantile(float("inf")) == pytest.approx(intervals.Z, rel=1e-15)
    assert list(intervals.t_quantile(np.array([1, 2]))) == [intervals.t_quantile(1), intervals.t_quantile(2)]


def test_clopper_pearson_against_closed_forms():
    n = np.array([1, 6, 50, 1000])
    lower, upper = intervals.exact(0, n)
    assert list(lower) == [0, 0, 0, 0] and upper == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-12)
    lower, upper = intervals.exact(n, n)
    assert lower == pytest.approx(0.025 ** (1 / n), rel=1e-10) and list(upper) == [1, 1, 1, 1]
    lower, _ = intervals.exact(1, n)
    assert lower == pytest.approx(1 - 0.975 ** (1 / n), rel=1e-9)


def _tally(per_image: list[tuple[int, int]]) -> Tally:
    """A stratum's tally from (pairs, changes) per image, as the audit folds them."""
    total = Tally()
    for n, d in per_image:
        one = Tally()
        one.add(np.arange(n) < d, np.zeros(n))
        total.add_image(one)
    return total


def test_one_pair_per_image_is_the_exact_binomial_interval():
    tally = _tally([(1, 1)] * 7 + [(1, 0)] * 43)
    lower, upper = intervals.exact(7, 50)
    estimate = tally.p_top1_change()
    assert estimate["value"] == 0.14 and estimate["ci95"] == pytest.approx([float(lower), float(upper)], rel=1e-12)


def test_alike_pairs_count_as_fewer_images():
    """Ten images of ten pairs, five that always change and five that never do: the pairs are as alike as
    they can be, the design effect is n/k, and the interval is at least as wide as that of five changes in
    ten single trials (shrunk further for nine degrees of freedom), not of 50 in 100 independent pairs."""
    tally = _tally([(10, 10)] * 5 + [(10, 0)] * 5)
    lo, hi = tally.p_top1_change()["ci95"]
    single_lo, single_hi = (float(v) for v in intervals.exact(5, 10))
    pairs_lo, pairs_hi = wilson(50, 100)["ci95"]
    assert lo < single_lo and hi > single_hi and hi - lo > 2 * (pairs_hi - pairs_lo)
    # no change at all: nothing says how alike the pairs are, so each image is one trial
    assert _tally([(10, 0)] * 10).p_top1_change()["ci95"] == pytest.approx([0.0, 1 - 0.025 ** (1 / 10)])


def test_a_report_made_before_clustering_reads_as_one_image_per_pair():
    """A v1 tally (four numbers) has no images: each pair counts as its own, the exact binomial interval."""
    old = Tally.from_json([40, 8, 3 * int(UNIT), int(UNIT)])
    assert old.p_top1_change()["ci95"] == pytest.approx([float(v) for v in intervals.exact(8, 40)])
    assert old.summary()["mac"]["value"] == pytest.approx(3 / 40)


def _images(rng: np.random.Generator, mean: float, icc: float, shape: tuple[int, int]) -> np.ndarray:
    """Each image's own rate around ``mean``, with intra-image correlation ``icc`` (a beta whose variance is
    icc · mean · (1 - mean)); all alike when icc is 0."""
    if icc == 0:
        return np.full(shape, mean)
    spread = 1 / icc - 1
    return rng.beta(mean * spread, (1 - mean) * spread, size=shape)


def _proportion_coverage(rng: np.random.Generator, p: float, icc: float, m: int, k: int) -> tuple[float, float]:
    """The coverage of P(top-1 change)'s clustered interval, and of the Wilson interval over pairs, in SIMS
    audits of k images of m pairs each."""
    d = rng.binomial(m, _images(rng, p, icc, (SIMS, k)))
    n, changes = m * k, d.sum(1)
    full = np.full(SIMS, 1)
    est = intervals.proportion(n * full, changes, k * full, (d * d).sum(1), changes * m, m * m * k * full, m * full)
    lo, hi = est["ci95"]
    pairs = np.array([wilson(int(c), n)["ci95"] for c in changes])
    return float(np.mean((lo <= p) & (p <= hi))), float(np.mean((pairs[:, 0] <= p) & (p <= pairs[:, 1])))


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_p_top1_change_covers_its_truth_when_the_pairs_of_an_image_are_alike(p):
    """Coverage over a grid of intra-image correlations (0 to 0.15, as measured on photographs), pairs per
    image (1 to 20) and images (10 to 200): at least 0.93 in every cell and 0.955 on average, where the
    Wilson interval over pairs it replaces falls to about 0.66; and not wastefully wide (at most 0.99) once the correlation is there to be
    measured and ten changes are expected (exact intervals on fewer changes over-cover, as they must)."""
    rng = np.random.default_rng(20261203 + int(p * 10))
    worst_pairs = 1.0
    cells = []
    for icc in (0.0, 0.05, 0.15):
        for m in (1, 5, 20):
            if m == 1 and icc:
                continue  # one pair per image: nothing to correlate
            for k in (10, 50, 200):
                covered, pairs = _proportion_coverage(rng, p, icc, m, k)
                cells.append(covered)
                assert covered >= 0.93, (p, icc, m, k, covered)
                if icc and p * m * k >= 10:
                    assert covered <= 0.99, (p, icc, m, k, covered)
                worst_pairs = min(worst_pairs, pairs)
    assert np.mean(cells) >= 0.955
    assert worst_pairs < 0.75  # what intervals over pairs did: the test can tell


def _mac_coverage(rng: np.random.Generator, mac: float, spread: float | None, m: int, k: int) -> tuple[float, float]:
    """The coverage of MAC's clustered interval and of the normal interval over pairs. Each |Δp| is drawn
    from a beta of mean the image's own MAC and of concentration 18.6 (fitted to the example model's |Δp|,
    Beta(0.79, 17.9): right-skewed); the image's MAC from Beta(mac · spread, (1 - mac) · spread)."""
    means = rng.beta(mac * spread, (1 - mac) * spread, size=(SIMS, k)) if spread else np.full((SIMS, k), mac)
    values = rng.beta(np.repeat(means[..., None] * 18.6, m, 2), np.repeat((1 - means[..., None]) * 18.6, m, 2))
    s, n = values.sum(2), m * k
    est = intervals.mean(s.sum(1), n, k, (s * s).sum(1), s.sum(1) * m, m * m * k)
    lo, hi = est["ci95"]
    flat = values.reshape(SIMS, -1)
    half = intervals.Z * flat.std(1, ddof=1) / math.sqrt(n)
    centre = flat.mean(1)
    return (float(np.mean((lo <= mac) & (mac <= hi))),
            float(np.mean((centre - half <= mac) & (mac <= centre + half))))


@pytest.mark.parametrize("mac", [0.05, 0.1])
def test_mac_covers_its_truth_when_images_differ(mac):
    """Images as alike as each other (spread None), or differing (intra-image correlation about 0.1 and
    0.33): at least 0.915 in every cell (0.935 from 50 images on), 0.943 on average, and not above 0.99
    where they differ; the normal interval
    over pairs falls to 0.5. (At 10 images the coverage is 0.92 to 0.95: the skew of |Δp| is still felt in
    the mean of so few.)"""
    rng = np.random.default_rng(1203 + int(mac * 100))
    worst_pairs, cells = 1.0, []
    for spread in (None, 170.0, 40.0):
        for m in (1, 5, 20):
            if m == 1 and spread:
                continue
            for k in (10, 50, 200):
                covered, pairs = _mac_coverage(rng, mac, spread, m, k)
                assert covered >= (0.915 if k < 50 else 0.935), (mac, spread, m, k, covered)
                assert spread is None or covered <= 0.99, (mac, spread, m, k, covered)
                cells.append(covered)
                worst_pairs = min(worst_pairs, pairs)
    assert np.mean(cells) >= 0.943
    assert worst_pairs < 0.6


def test_the_paired_increase_covers_its_truth_with_few_discordant_pairs():
    """B repeats A's outcome on a share s of the pairs and flips on its own otherwise, so the true increase
    is (1 - s)(P_B - P_A), often a few thousandths. Where no pair is discordant the plain clustered interval
    is [0, 0] and covers as little as a tenth of the time; `flip_increase` at least 0.93 in every cell, and
    not above 0.99 where the correlation is real and ten discordant pairs are expected."""
    rng = np.random.default_rng(77)
    sims, worst, worst_plain = 1000, 1.0, 1.0
    for pa, more, share, icc in [(0.05, 0.05, 0.9, 0.15), (0.05, 0.05, 0.5, 0.0), (0.2, 0.05, 0.9, 0.0),
                                 (0.05, 0.0, 0.9, 0.15), (0.2, 0.0, 0.5, 0.15)]:
        truth = (1 - share) * more
        for m, k in [(1, 6), (4, 6), (20, 6), (1, 20), (4, 20), (4, 100)]:
            a_rate, b_rate = _images(rng, pa, icc, (sims, k)), _images(rng, pa + more, icc, (sims, k))
            a = rng.random((sims, k, m)) < a_rate[..., None]
            b = np.where(rng.random((sims, k, m)) < share, a, rng.random((sims, k, m)) < b_rate[..., None])
            per_image, discordant = (b.astype(int) - a).sum(2), (a != b).sum((1, 2))
            hits = plain = 0
            for run in range(sims):
                sums = [(int(d), m) for d in per_image[run]]
                lo, hi = flip_increase(sums, int(discordant[run]))["ci95"]
                hits += lo <= truth <= hi
                lo, hi = clustered(sums)["ci95"]
                plain += lo <= truth <= hi
            assert hits / sims >= 0.93, (pa, more, share, icc, m, k, hits / sims)
            if icc and discordant.mean() >= 10:
                assert hits / sims <= 0.99, (pa, more, share, icc, m, k, hits / sims)
            worst, worst_plain = min(worst, hits / sims), min(worst_plain, plain / sims)
    assert worst_plain < 0.5
