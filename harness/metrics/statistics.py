"""What the seeds can and cannot tell apart: intervals, tied ranks and the
uncertainty of the overall ranking.  Pure functions of per-seed values (no
clock, no file system; the bootstrap is seeded), so the leaderboard stays a
function of the records.

- **Interval of a cell** (:func:`t_interval`): the 95% Student-t interval of
  the mean over seeds, mean ± t_{0.975, n−1} · s / √n with s the sample
  standard deviation (ddof 1); with one seed there is none.
- **Tied ranks** (:func:`tied_ranks`): inside a table, every pair of rows is
  compared on the seeds both ran — a seed fixes θ₀, the forget set and both
  references, so the comparison is paired — by a two-sided paired t-test
  (``scipy.stats.ttest_rel``), and the table's p-values are Holm-corrected
  (:func:`holm`) at α = 0.05.  A row's rank is 1 + the number of rows
  significantly better; rows the seeds cannot separate share a rank.
  Why not Wilcoxon's signed-rank test: with n paired seeds its smallest
  two-sided p-value is 2/2ⁿ (0.0625 for n = 5), so at α = 0.05 it can never
  separate two methods on 5 seeds, let alone after a multiplicity correction;
  the t-test can, at the price of assuming roughly normal per-seed
  differences.
- **Uncertainty of the overall ranking** (:func:`bootstrap_mean_rank`): the
  mean over tables of each row's tied rank, and a 95% percentile interval
  from a seeded bootstrap over the tables (each replicate draws the tables
  with replacement).  The seeds' noise is already in the tied ranks; the
  seeds are not resampled as well, because a resample repeats seeds, and
  repeated pairs would make the paired test behind each tied rank
  overconfident.
"""
from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 0
TEST_NAME = "two-sided paired t-test over seeds (scipy.stats.ttest_rel), Holm-corrected across the table's pairs"


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width) of the Student-t interval of the mean of ``values``
    (NaNs ignored); the half-width is NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan")
    t = stats.t.ppf(0.5 + confidence / 2, len(x) - 1)
    return mean, float(t * x.std(ddof=1) / np.sqrt(len(x)))


def paired_p_value(a, b) -> float:
    """Two-sided p-value of the paired t-test of ``a`` against ``b`` on the
    positions where both are finite.  Fewer than two pairs: 1 (nothing can
    be told apart).  Identical differences, where the t statistic is
    undefined or infinite: 1 if they are all zero, else 0 (every seed
    agrees on the sign and size)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    d = a[both] - b[both]
    if len(d) < 2:
        return 1.0
    if np.allclose(d, d[0], rtol=1e-12, atol=1e-12):
        return 1.0 if abs(d[0]) <= 1e-12 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_rel(a[both], b[both]).pvalue)


def holm(p_values, alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise
    level ``alpha`` (the sorted p_(k) is compared with alpha / (m − k + 1),
    stopping at the first that fails)."""
    p = np.asarray(p_values, dtype=float)
    reject = np.zeros(len(p), dtype=bool)
    for k, i in enumerate(np.argsort(p, kind="stable")):
        if not p[i] <= alpha / (len(p) - k):
            break
        reject[i] = True
    return reject


def tied_ranks(values: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Ranks of the columns of ``values`` (seeds × rows, lower is better, NaN:
    no value for that seed): 1 + the number of rows whose mean is lower and
    whose paired difference the Holm-corrected test finds significant.  A row
    with no value at all gets NaN."""
    x = np.asarray(values, dtype=float)
    n_rows = x.shape[1]
    present = [j for j in range(n_rows) if np.isfinite(x[:, j]).any()]
    means = np.array([np.nanmean(x[:, j]) if j in present else np.nan for j in range(n_rows)])
    pairs = list(combinations(present, 2))
    rejected = holm([paired_p_value(x[:, i], x[:, j]) for i, j in pairs], alpha) if pairs else []
    better = np.zeros(n_rows)
    for (i, j), significant in zip(pairs, rejected):
        if significant:
            better[j if means[i] < means[j] else i] += 1
    return np.where(np.isnan(means), np.nan, 1 + better)


def bootstrap_mean_rank(ranks, replicates: int = BOOTSTRAP_REPLICATES, seed: int = BOOTSTRAP_SEED,
                        confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean rank of each row over the tables and its percentile interval.

    ``ranks``: tables × rows, each table's (tied) ranks, NaN where a row did
    not run.  Returns (mean rank, lower, upper): the mean over the tables a
    row ran in, and the ``confidence`` percentile interval of that mean over
    ``replicates`` replicates that draw the tables with replacement (a
    replicate without any of a row's tables is left out for that row).
    Seeded: the same ranks give the same interval."""
    r = np.asarray(ranks, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)    # rows absent from every drawn table
        point = np.nanmean(r, axis=0)
        chosen = np.random.default_rng(seed).integers(0, r.shape[0], size=(replicates, r.shape[0]))
        mean = np.nanmean(r[chosen], axis=1)                # replicates × rows
        tail = (1 - confidence) / 2 * 100
        lower, upper = np.nanpercentile(mean, [tail, 100 - tail], axis=0)
    return point, lower, upper
