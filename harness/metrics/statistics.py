"""What the seeds can and cannot tell apart: intervals, tied ranks and the
uncertainty of the overall ranking.  Pure functions of per-seed values (no
clock, no file system; the bootstrap is seeded), so the leaderboard stays a
function of the records.

The design in full: docs/design-notes.md#metricsstatistics.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 0
TEST_NAME = ("one-sided paired t-test over seeds of each method against the table's best mean (scipy.stats.ttest_rel), "
             "Holm-corrected over the k − 1 comparisons and applied again below each group")
POWER = 0.8


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


def paired_p_value(a, b, alternative: str = "two-sided") -> float:
    """p-value of the paired t-test of ``a`` against ``b`` on the positions
    where both are finite (``alternative`` "greater": is ``a`` larger?).
    Fewer than two pairs: 1 (nothing can be told apart).  Identical
    differences, where the t statistic is undefined or infinite: 1 if they
    are all zero (or, one-sided, point the other way), else 0 (every seed
    agrees on the sign and size)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    d = a[both] - b[both]
    if len(d) < 2:
        return 1.0
    if np.allclose(d, d[0], rtol=1e-12, atol=1e-12):
        if abs(d[0]) <= 1e-12 or (alternative == "greater" and d[0] < 0):
            return 1.0
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_rel(a[both], b[both], alternative=alternative).pvalue)


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


def _present(x: np.ndarray) -> tuple[list[int], np.ndarray]:
    n_rows = x.shape[1]
    present = [j for j in range(n_rows) if np.isfinite(x[:, j]).any()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.array([np.nanmean(x[:, j]) if j in present else np.nan for j in range(n_rows)])
    return present, means


def control_ranks(values, alpha: float = ALPHA) -> np.ndarray:
    """Ranks of the columns of ``values`` (seeds × rows, lower is better, NaN:
    no value for that seed) by comparison with a control, recursively: the
    best mean is the control, the rows Holm's procedure over the one-sided
    paired tests cannot find worse join its group, and the rest are ranked
    the same way below it.  Rank = 1 + the rows in better groups; a row with
    no value at all gets NaN."""
    x = np.asarray(values, dtype=float)
    present, means = _present(x)
    remaining = sorted(present, key=lambda j: (means[j], j))
    ranks = np.full(x.shape[1], np.nan)
    placed = 0
    while remaining:
        control, others = remaining[0], remaining[1:]
        worse = holm([paired_p_value(x[:, j], x[:, control], "greater") for j in others], alpha) \
            if others else np.zeros(0, dtype=bool)
        group = [control] + [j for j, w in zip(others, worse) if not w]
        ranks[group] = 1 + placed
        placed += len(group)
        remaining = [j for j in remaining if j not in group]
    return ranks


def detectable_difference(values, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest difference from the best mean that the table's first
    comparison (one-sided paired t-test at α/(k − 1)) detects with ``power``,
    at the median standard deviation of the paired differences with the
    control; NaN with fewer than two rows or seeds, or no spread."""
    from scipy.optimize import brentq

    x = np.asarray(values, dtype=float)
    present, means = _present(x)
    if len(present) < 2:
        return float("nan")
    control = min(present, key=lambda j: (means[j], j))
    spreads, pairs = [], []
    for j in present:
        if j == control:
            continue
        both = np.isfinite(x[:, j]) & np.isfinite(x[:, control])
        if both.sum() >= 2:
            spreads.append(float(np.std(x[both, j] - x[both, control], ddof=1)))
            pairs.append(int(both.sum()))
    if not spreads or not np.median(spreads) > 0:
        return float("nan")
    n, s = int(np.median(pairs)), float(np.median(spreads))
    crit = stats.t.ppf(1 - alpha / (len(present) - 1), n - 1)
    noncentrality = brentq(lambda nc: stats.nct.sf(crit, n - 1, nc) - power, 0.0, 1e3)
    return noncentrality * s / np.sqrt(n)


def friedman(blocks: np.ndarray, names: list[str], alpha: float = ALPHA) -> dict:
    """The Friedman test over ``blocks`` (blocks × methods, lower is better,
    every method in every block) and Conover's Holm-adjusted post-hoc test:
    {"statistic", "p", "mean_ranks" (Series by name), "posthoc" (p-value
    DataFrame), "blocks"}."""
    import pandas as pd
    import scikit_posthocs as sp

    x = np.asarray(blocks, dtype=float)
    ranks = stats.rankdata(x, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stat, p = stats.friedmanchisquare(*x.T)
        posthoc = sp.posthoc_conover_friedman(x, p_adjust="holm")
    posthoc.index = posthoc.columns = names
    return {"statistic": float(stat), "p": float(p), "blocks": x.shape[0],
            "mean_ranks": pd.Series(ranks.mean(axis=0), index=names), "posthoc": posthoc.astype(float)}


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
