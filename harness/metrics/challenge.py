"""The NeurIPS 2023 Machine Unlearning Challenge forgetting-quality score.

Implemented from the organisers' published definition (Triantafillou et al.,
"NeurIPS 2023 - Machine Unlearning", Kaggle 2023; technical report
https://unlearning-challenge.github.io/assets/data/Machine_Unlearning_Metric.pdf,
and the scoring code released with it), vectorised with sorted counts instead
of one boolean matrix per threshold.  Pure numpy; no model in sight.

The design in full: docs/design-notes.md#metricschallenge.
"""
from __future__ import annotations

import functools
import math

import numpy as np

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUCKET = 0.5
PEAKY_RATIO = 0.01      # a bank whose range is < 1% of the other's is "peaky"
WINDOW_BUFFER = 2.0     # double-threshold search margin, in confidence units


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y − log Σ_{j≠y} p_j`` per row of ``logits`` (the LiRA / challenge
    scaling), with the challenge code's arithmetic step for step, so that the
    values are bit-identical to it: the row maximum is subtracted and the
    exponential taken in the logits' own dtype (float32 for a network), the
    softmax normalised in float64, the wrong classes' probabilities summed (not
    1 − p_y, which loses confident rows) and 1e-45 added inside both logs."""
    z = np.array(logits, copy=True)
    z -= np.max(z, axis=1, keepdims=True)
    p = np.exp(z).astype(np.float64)
    p /= np.sum(p, axis=1, keepdims=True)
    rows, labels = np.arange(len(p)), np.asarray(labels)
    correct = p[rows, labels]
    p[rows, labels] = 0.0
    wrong = np.sum(p, axis=1)
    return np.log(correct + 1e-45) - np.log(wrong + 1e-45)


def _grid(lo: float, hi: float) -> np.ndarray:
    return np.linspace(lo, hi, int(math.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))


def _count_below(sorted_x: np.ndarray, t: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """How many of ``sorted_x`` are < t (or ≤ t), for every t."""
    return np.searchsorted(sorted_x, t, side="right" if inclusive else "left")


def single_threshold_errors(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positives, false negatives), as counts, of the rules
    'positive iff c ≥ t' over the threshold grid."""
    pos, neg = np.sort(pos), np.sort(neg)
    t = _grid(min(pos[0], neg[0]), max(pos[-1], neg[-1]))
    return len(neg) - _count_below(neg, t), _count_below(pos, t)


def double_threshold_errors(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positives, false negatives), as counts, of the rules 'peakier
    bank iff l ≤ c ≤ r' over the grid of (l, r) pairs.  The peakier bank
    (smaller range; on a tie, ``neg``) is the positive class of these rules."""
    if np.ptp(pos) >= np.ptp(neg):
        pos, neg = neg, pos
    pos, neg = np.sort(pos), np.sort(neg)
    width = pos[-1] - pos[0]
    right = _grid(pos[0] + width - WINDOW_BUFFER, pos[-1] + WINDOW_BUFFER)
    offsets = np.linspace(-WINDOW_BUFFER, WINDOW_BUFFER, int(math.ceil(2 * WINDOW_BUFFER * THRESHOLDS_PER_UNIT)))
    left = (right[:, None] - width + offsets[None, :]).ravel()

    def inside(x):  # per window: how many of x lie in [l, r]; a window with l > r holds none
        upto_right = np.repeat(_count_below(x, right, inclusive=True), len(offsets))
        return np.clip(upto_right - _count_below(x, left), 0, None)

    return inside(neg), len(pos) - inside(pos)


def rule_epsilons(fpr, fnr, delta: float = DELTA) -> np.ndarray:
    """ε of each decision rule from its (FPR, FNR): max(log(1 − δ − FPR) −
    log FNR, log(1 − δ − FNR) − log FPR) clipped below at 0; ∞ for a perfect
    separation (both 0); NaN (discarded) when exactly one is 0 or both
    terms are undefined."""
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = np.fmax(np.log(1.0 - delta - fpr) - np.log(fnr), np.log(1.0 - delta - fnr) - np.log(fpr))
    eps = np.clip(eps, 0.0, None)
    eps = np.where((fpr == 0) ^ (fnr == 0), np.nan, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def epsilon_from_rates(fpr, fnr, delta: float = DELTA) -> float:
    """The largest ε over a family of rules, capped at 50 (0 if every rule
    is discarded)."""
    eps = rule_epsilons(fpr, fnr, delta)
    eps = eps[~np.isnan(eps)]
    return float(min(eps.max(), EPSILON_CAP)) if len(eps) else 0.0


@functools.lru_cache(maxsize=16)
def _epsilon_table(n_pos: int, n_neg: int, delta: float) -> np.ndarray:
    """ε of a rule with fp false positives and fn false negatives, at [fp, fn]
    (−∞ for a discarded rule): every rule's (FPR, FNR) is one of these."""
    fp, fn = np.meshgrid(np.arange(n_neg + 1) / n_neg, np.arange(n_pos + 1) / n_pos, indexing="ij")
    table = rule_epsilons(fp, fn, delta)
    return np.where(np.isnan(table), -np.inf, np.minimum(table, EPSILON_CAP))


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA) -> float:
    """ε of one forget example from its confidences under the positive and
    negative banks (one value per model)."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if len(pos) != len(neg):
        raise ValueError(f"both banks need the same number of models, got {len(pos)} and {len(neg)}")
    spread_pos, spread_neg = np.ptp(pos), np.ptp(neg)
    largest, smallest = max(spread_pos, spread_neg), min(spread_pos, spread_neg)
    if largest == 0:                             # both banks constant
        return 0.0 if pos[0] == neg[0] else EPSILON_CAP
    if smallest / largest < PEAKY_RATIO:
        return EPSILON_CAP
    table = _epsilon_table(len(pos), len(neg), delta)
    best = max(table[errors].max() for errors in (double_threshold_errors(pos, neg), single_threshold_errors(pos, neg)))
    return float(max(best, 0.0))


def epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example ε from ``[N, |D_f|]`` confidence banks."""
    unlearned, retrained = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if unlearned.shape != retrained.shape or unlearned.ndim != 2:
        raise ValueError(f"confidence banks must both be [models, examples], "
                         f"got {unlearned.shape} and {retrained.shape}")
    retrain_positive = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    pos = np.where(retrain_positive, retrained, unlearned)
    neg = np.where(retrain_positive, unlearned, retrained)
    return np.array([example_epsilon(pos[:, i], neg[:, i], delta) for i in range(pos.shape[1])])


def max_resolvable_epsilon(num_models: int) -> float:
    """⌈ln(N − 1)⌉: ε at and above which an example scores 0 points."""
    if num_models < 3:
        raise ValueError(f"the forget score needs at least 3 models per bank, got {num_models}")
    return float(math.ceil(math.log(num_models - 1)))


def points(eps: np.ndarray, num_models: int) -> np.ndarray:
    """Bucketed points per example: 1 for ε < 0.5, halved per further 0.5,
    0 from ⌈ln(N − 1)⌉ on."""
    eps = np.asarray(eps, dtype=np.float64)
    bucket = np.floor(eps / BUCKET)
    n_buckets = int(round(max_resolvable_epsilon(num_models) / BUCKET))
    return np.where(bucket < n_buckets, 0.5 ** bucket, 0.0)


def forget_score(unlearned: np.ndarray, retrained: np.ndarray) -> float:
    """F: mean points over the forget set (1 = indistinguishable from retraining)."""
    return float(points(epsilons(unlearned, retrained), np.shape(unlearned)[0]).mean())


def final_score(forget: float, retain_acc_u: float, retain_acc_r: float, test_acc_u: float, test_acc_r: float) -> float:
    """The challenge's final score: F × (RA_u / RA_r) × (TA_u / TA_r)."""
    return forget * (retain_acc_u / retain_acc_r) * (test_acc_u / test_acc_r)
