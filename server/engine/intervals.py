"""95 % intervals with the image as the unit of sampling (DESIGN.md §1): the pairs of one image are not
independent (a design effect of 3-4 was measured at 20 pairs per image), so an interval over pairs is
too narrow. Both take the image-clustered sums a `metrics.Tally` keeps, so they merge exactly.

- P(top-1 change), a proportion: Korn and Graubard's (1998) exact interval on the effective sample size.
  The design effect is the cluster-robust variance of the ratio (with its k/(k-1) correction) over the
  binomial one, at least 1. The effective sample size n/deff is reduced further for the few degrees of
  freedom of k images, by (t(n-1) / t(k-1))². The Clopper-Pearson interval is then taken at that size,
  its count real. One pair per image is a binomial sample: the exact binomial interval. With no change
  (or only changes) the variance says nothing of the correlation, so each image counts as one trial.
- MAC, a mean of |Δp| in [0, 1]: the cluster-robust standard error of the ratio with Student's t on k-1
  degrees of freedom, on the log scale (multiplicative, so it is wider above: |Δp| is right-skewed).

The quantiles (Student's t, the beta's) are SciPy's (`scipy.special`, Cephes and Boost): hand-written ones
were either slow (a bisection on the incomplete beta took 90 ms an interval) or lost digits for large
counts. SciPy is imported at the first interval, not with this module: `audit-client --help` and its
usage errors stay as quick as they were. docs/decisions.md has the simulation study behind the choices.
"""
from __future__ import annotations

import numpy as np

LEVEL = 0.95
TAIL = (1 - LEVEL) / 2
Z = 1.959963984540054  # the normal's upper TAIL quantile


def t_quantile(df):  # noqa: ANN001, ANN201 (a number or an array)
    """Student's t's upper `TAIL` quantile on ``df`` degrees of freedom (the normal's for infinite df),
    elementwise."""
    from scipy.special import stdtrit  # noqa: PLC0415 (at the first interval: see the module's docstring)
    return stdtrit(df, 1 - TAIL)


def exact(x, n) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Clopper and Pearson's interval for ``x`` successes in ``n`` trials, both may be real (an effective
    sample)."""
    from scipy.special import betaincinv  # noqa: PLC0415
    x, n = (np.asarray(v, np.float64) for v in np.broadcast_arrays(x, n))
    with np.errstate(invalid="ignore"):
        lower = np.where(x <= 0, 0.0, betaincinv(np.maximum(x, 1e-12), n - x + 1, TAIL))
        upper = np.where(x >= n, 1.0, betaincinv(x + 1, np.maximum(n - x, 1e-12), 1 - TAIL))
    return lower, upper


def _t_ratio(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(t(n-1) / t(k-1))², Korn and Graubard's shrinking of an effective size for k clusters' few degrees
    of freedom."""
    return (t_quantile(np.maximum(n - 1, 1)) / t_quantile(np.maximum(k - 1, 1))) ** 2


def effective_size(pairs, changes, images, changes_sq, changes_pairs, pairs_sq, most_pairs):  # noqa: ANN001, ANN201
    """Korn and Graubard's effective sample size of a proportion of ``changes`` in ``pairs`` drawn from
    ``images`` (with the clustered sums Σd², Σdn, Σn² and the most pairs of one image); elementwise.

    With no change, or only changes, the clustered variance is 0 and says nothing of how alike an image's
    pairs are: each image then counts as one trial, the most they can be worth (no estimated variance, so
    no shrinking for its degrees of freedom either)."""
    n, d, k = (np.asarray(v, np.float64) for v in (pairs, changes, images))
    p = np.where(n > 0, d / np.maximum(n, 1), 0.0)
    residual = np.asarray(changes_sq, np.float64) - 2 * p * np.asarray(changes_pairs, np.float64) \
        + p * p * np.asarray(pairs_sq, np.float64)
    binomial = n * p * (1 - p)
    estimated = (binomial > 0) & (k > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        deff = np.where(estimated, residual * k / (k - 1) / binomial, n / np.maximum(k, 1))
    size = n / np.maximum(1.0, deff)
    shrunk = estimated & (np.asarray(most_pairs) > 1)
    size = np.where(shrunk, size * _t_ratio(n, k), size)
    return np.where(np.asarray(most_pairs) <= 1, n, np.minimum(size, n))  # one pair per image: independent


def proportion(pairs, changes, images, changes_sq, changes_pairs, pairs_sq, most_pairs) -> dict:  # noqa: ANN001
    """P(top-1 change) with its image-clustered 95 % interval (elementwise on arrays: the simulation
    tests' many audits at once)."""
    size = effective_size(pairs, changes, images, changes_sq, changes_pairs, pairs_sq, most_pairs)
    n, d = np.asarray(pairs, np.float64), np.asarray(changes, np.float64)
    p = np.where(n > 0, d / np.maximum(n, 1), 0.0)
    lower, upper = exact(p * size, np.where(n > 0, size, 1.0))
    lower, upper = np.where(n > 0, lower, 0.0), np.where(n > 0, upper, 1.0)
    if np.ndim(p) == 0:
        return {"value": float(p) if pairs else None, "ci95": [float(lower), float(upper)]}
    return {"value": p, "ci95": [lower, upper]}


def ratio_se(total, pairs, images, total_sq, total_pairs, pairs_sq, unit: float = 1.0):  # noqa: ANN001, ANN201
    """The ratio estimate Σs/Σn over images (``total`` = Σs over ``pairs`` = Σn from ``images``, with Σs²,
    Σsn and Σn²) and its cluster-robust standard error, k/(k-1) · Σ(s_i - m n_i)² / (Σn)², elementwise.
    Given Python integers (sums in fixed point, s in units of 1/``unit``, s² of 1/unit²) the residual
    n²Σs² - 2SnΣsn + S²Σn² is exact, whatever the cancellation; float arrays (the simulations) as they
    come."""
    residual = pairs * pairs * total_sq - 2 * total * pairs * total_pairs + total * total * pairs_sq
    n, k = np.asarray(pairs, np.float64), np.asarray(images, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(n > 0, np.asarray(total, np.float64) / unit / np.maximum(n, 1), 0.0)
        var = np.maximum(0.0, np.asarray(residual, np.float64)) / (unit * unit) / np.maximum(n, 1) ** 4
        se = np.sqrt(k / np.maximum(k - 1, 1) * var)
    return m, se


def mean(total, pairs, images, total_sq, total_pairs, pairs_sq, unit: float = 1.0) -> dict:  # noqa: ANN001
    """The mean of values in [0, 1] (as `ratio_se` takes them) with its image-clustered 95 % interval,
    multiplicative on the log scale; elementwise. One image gives no interval ([0, 1]); a mean of 0 gives
    [0, 0] (nothing moved)."""
    mu, se = ratio_se(total, pairs, images, total_sq, total_pairs, pairs_sq, unit)
    n, k = np.asarray(pairs, np.float64), np.asarray(images, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t_quantile(np.maximum(k - 1, 1))
        spread = np.exp(np.where(mu > 0, t * se / np.where(mu > 0, mu, 1), 0.0))
    known = (n > 0) & (k >= 2)
    lower = np.where(known, mu / spread, 0.0)
    upper = np.where(known, np.where(mu > 0, np.minimum(1.0, mu * spread), 0.0), 1.0)
    if np.ndim(mu) == 0:
        return {"value": float(mu) if pairs else None, "ci95": [float(lower), float(upper)]}
    return {"value": mu, "ci95": [lower, upper]}
